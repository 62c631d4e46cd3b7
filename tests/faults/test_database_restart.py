"""PostgreSQL stopped and started again under a running Keeper: requests in between get a JSON 503 with
Retry-After (never a 500, an HTML page or a hang), and the same gunicorn workers answer again after."""

import time

from tests.faults.conftest import Stack
from tests.live import Answer, LiveKeeper, wait_until

# The outage lasts until every request below was refused at least once (a process may answer from what
# it still knew for up to a second first), however many rounds that takes; this bounds it on any machine.
MAX_OUTAGE_SECONDS = 60.0
DATABASE_UNAVAILABLE = {"detail": "The database is unavailable; try again later.", "code": "database_unavailable"}


def requests(stack: Stack) -> list[tuple[str, str, dict, object]]:
    """Reads and writes that need the database in a view, in authentication, or in a middleware (limits)."""
    key = {"X-API-Key": stack.read_key}
    admin = {"X-API-Key": stack.admin_key}
    return [
        ("GET", "/healthcheck", {}, None),
        ("GET", "/regions", {}, None),
        ("GET", "/keys", key, None),
        ("GET", "/me", key, None),
        ("POST", "/keys", admin, {"name": "made-during-the-outage"}),
        ("PATCH", "/config", admin, {"rate_limit": 100000}),
    ]


def send(server: LiveKeeper, request: tuple[str, str, dict, object]) -> Answer:
    method, path, headers, body = request
    # A hang would fail here: every answer comes well within this.
    return server.request(method, path, headers=headers, body=body, timeout=15)


def test_requests_during_a_postgresql_restart_get_a_json_503_and_recover_without_a_gunicorn_restart(keeper: Stack):
    server = keeper.keeper
    workers = server.workers()
    for request in requests(keeper):
        if request[0] == "GET":
            assert send(server, request).status == 200

    logged_from = server.log_size()
    keeper.postgres.stop()
    answers: list[tuple[str, Answer]] = []
    every_request = {f"{method} {path}" for method, path, _, _ in requests(keeper)}
    try:
        stopped = time.monotonic()
        while {name for name, answer in answers if answer.status == 503} != every_request:
            assert time.monotonic() - stopped < MAX_OUTAGE_SECONDS, [(r, a.status) for r, a in answers[-12:]]
            for request in requests(keeper):
                answers.append((f"{request[0]} {request[1]}", send(server, request)))
    finally:
        keeper.postgres.start()

    refused = [answer for _, answer in answers if answer.status == 503]
    writes = [answer for name, answer in answers if not name.startswith("GET")]
    # What a process still knew (the catalog version, for up to a second) may be answered as before.
    assert {answer.status for _, answer in answers} <= {200, 503}, [(r, a.status, a.body[:200]) for r, a in answers]
    assert [answer.status for answer in writes] == [503] * len(writes)
    for answer in refused:
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == DATABASE_UNAVAILABLE
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["cache-control"] == "private, no-store"
    # Logged once a minute per process, not as a server error with a traceback per request. All of what
    # this test logged is read: a fast machine fits more requests, and so more log lines, into the outage.
    log = server.log_since(logged_from)
    assert "Database unavailable (OperationalError)" in log
    assert "Internal Server Error" not in log

    def recovered() -> bool:
        return all(send(server, request).status == 200 for request in requests(keeper) if request[0] == "GET")

    wait_until(recovered, timeout=20, what="Keeper answering again after PostgreSQL came back")
    assert server.workers() == workers
