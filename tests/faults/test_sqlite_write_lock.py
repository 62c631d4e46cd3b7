"""The embedded default (gunicorn, SQLite, memory limits) keeps answering while another connection holds
SQLite's write lock, as a catalog sync does for its whole transaction (issue 15, item 1).

A helper process holds the lock (BEGIN IMMEDIATE) far longer than any request may wait. Meanwhile keyed
requests with limits (a key with its own pool and a daily quota), a revoked key's refused use, anonymous
requests and /healthcheck are all answered, and by the same workers (none killed by gunicorn); a write the
caller asked for (POST /keys) is a quick JSON 503 with Retry-After, and a small quota admits no more than
it holds while its count waits. Once the lock is released, what the
requests deferred (usage and traffic counters, last_used_at, the quota's count, the audit of the refused
use) reaches the database exactly.
"""

import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.live import LiveKeeper, wait_until

# Far beyond any bound a request may wait; the test releases it as soon as the requests are answered.
LOCK_SECONDS = 60
QUOTA = 1000
KEYED_REQUESTS = 12
# A quota of 10 credits, left whole when the lock is taken: each of the 2 workers may admit 5 of them.
TIGHT_QUOTA = 10
TIGHT_REQUESTS = 6

HOLD_LOCK = """
import sqlite3, sys, threading
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
released = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), released.set()), daemon=True).start()
released.wait(float(sys.argv[2]))
connection.execute("ROLLBACK")
print("released", flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveKeeper, Path, str]]:
    tmp = tmp_path_factory.mktemp("sqlite-lock")
    database = tmp / "keeper.sqlite3"
    admin_key = secrets.token_urlsafe(32)
    with LiveKeeper(
        tmp,
        DATABASE_URL=f"sqlite:///{database}",
        api_keys=[(admin_key, "lock-admin", "admin")],
        KEEPER_KEY_USAGE_FLUSH_SECONDS="1",
        RATE_LIMIT_ENABLED="1",
        RATE_LIMIT_BACKEND="memory",
    ) as keeper:
        yield keeper, database, admin_key


def _read(database: Path, sql: str, *params) -> list[tuple]:
    """Rows of `sql`, read from the server's database file by a reader of our own (WAL: never blocked)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def test_requests_are_answered_while_another_connection_holds_the_write_lock_and_deferred_writes_land_after(
    server: tuple[LiveKeeper, Path, str],
):
    keeper, database, admin_key = server
    admin = {"X-API-Key": admin_key}
    created = keeper.request(
        "POST", "/keys", headers=admin, body={"name": "limited", "credits_per_minute": 500, "daily_quota": QUOTA}
    )
    assert created.status == 201, created.body
    limited, limited_id = created.json()["key"], created.json()["id"]
    tight = keeper.request("POST", "/keys", headers=admin, body={"name": "tight", "daily_quota": TIGHT_QUOTA})
    assert tight.status == 201, tight.body
    tight_key, tight_id = tight.json()["key"], tight.json()["id"]
    revoked = keeper.request("POST", "/keys", headers=admin, body={"name": "to-revoke"})
    assert revoked.status == 201, revoked.body
    revoked_key, revoked_id = revoked.json()["key"], revoked.json()["id"]
    assert keeper.request("POST", f"/keys/{revoked_id}/revoke", headers=admin, body={}).status == 200
    (pk,) = _read(database, "SELECT id FROM keys_apikey WHERE key_id = ?", limited_id)[0]
    (revoked_pk,) = _read(database, "SELECT id FROM keys_apikey WHERE key_id = ?", revoked_id)[0]
    workers = keeper.workers()
    assert len(workers) == 2

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database), str(LOCK_SECONDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        answers, health = [], []
        for index in range(KEYED_REQUESTS):
            answer = keeper.get("/servers?limit=1", headers={"X-API-Key": limited}, timeout=LOCK_SECONDS)
            answers.append(answer)
            if index % 3 == 0:
                health.append(keeper.get("/healthcheck", timeout=LOCK_SECONDS))
        tight_answers = [
            keeper.get("/servers?limit=1", headers={"X-API-Key": tight_key}, timeout=LOCK_SECONDS)
            for _ in range(TIGHT_REQUESTS)
        ]
        refused = keeper.get("/regions", headers={"X-API-Key": revoked_key}, timeout=LOCK_SECONDS)
        explicit = keeper.request("POST", "/keys", headers=admin, body={"name": "during"}, timeout=LOCK_SECONDS)
        # Every answer came while the lock was still held.
        assert holder.poll() is None, "the lock was released before the requests were answered"
    finally:
        if holder.poll() is None:
            holder.stdin.write("release\n")
            holder.stdin.flush()
        holder.wait(timeout=LOCK_SECONDS + 10)

    assert [answer.status for answer in answers + health] == [200] * len(answers + health), answers + health
    # The key's own pool of 500 credits a minute (in each worker's memory) was charged the route's cost.
    costs = [int(answer.headers["x-ratelimit-cost"]) for answer in answers]
    pools = {
        (answer.headers["x-ratelimit-limit"], int(answer.headers["x-ratelimit-remaining"]) < 500) for answer in answers
    }
    assert pools == {("500", True)} and min(costs) >= 1
    # While its count waits, each worker admits only its share of what is left, so never past the quota.
    tight_admitted = [answer for answer in tight_answers if answer.status == 200]
    tight_cost = int(tight_answers[0].headers["x-ratelimit-cost"])
    assert 1 <= len(tight_admitted) and len(tight_admitted) * tight_cost <= TIGHT_QUOTA
    refusals = [answer for answer in tight_answers if answer.status != 200]
    assert refusals and all(answer.status == 429 and "quota" in answer.json()["detail"] for answer in refusals)
    assert refused.status == 401 and "revoked" in refused.json()["detail"]
    assert explicit.status == 503 and explicit.json()["code"] == "database_unavailable"
    assert int(explicit.headers["retry-after"]) >= 1
    assert keeper.workers() == workers, f"a worker was restarted:\n{keeper.log_tail()}"

    today = datetime.now(UTC).date().isoformat()

    def usage() -> tuple:
        rows = _read(database, "SELECT requests, credits FROM keys_keyusageday WHERE key_id = ? AND day = ?", pk, today)
        return rows[0] if rows else (0, 0)

    def quota_used(key_id: str) -> int:
        counter = f"quota:{key_id}:{datetime.now(UTC):%Y%m%d}"
        rows = _read(database, "SELECT used FROM throttling_quotausage WHERE counter = ?", counter)
        return rows[0][0] if rows else 0

    def last_used() -> str | None:
        return _read(database, "SELECT last_used_at FROM keys_apikey WHERE id = ?", pk)[0][0]

    def denied() -> list[tuple]:
        return _read(
            database, "SELECT count(*) FROM keys_auditevent WHERE key_id = ? AND action = 'denied'", revoked_pk
        )

    def keyed_traffic() -> int:
        rows = _read(database, "SELECT requests FROM keys_trafficday WHERE credential = 'api_key' AND day = ?", today)
        return rows[0][0] if rows else 0

    # Every request made with a key in this test: the set-up's four, the limited and tight keys', the
    # revoked key's and the refused POST.
    expected_keyed = 4 + KEYED_REQUESTS + TIGHT_REQUESTS + 2
    wait_until(
        lambda: (
            (usage(), quota_used(limited_id), quota_used(tight_id), last_used() is not None, denied(), keyed_traffic())
            == (
                (KEYED_REQUESTS, sum(costs)),
                sum(costs),
                len(tight_admitted) * tight_cost,
                True,
                [(1,)],
                expected_keyed,
            )
        ),
        timeout=60,
        what="the deferred writes in the database once the lock was released",
    )
    assert keeper.workers() == workers


def test_a_normal_shutdown_writes_the_counts_the_workers_kept(server: tuple[LiveKeeper, Path, str]):
    first, database, admin_key = server
    # Another gunicorn on the same database, whose workers would write their counters only hourly.
    keeper = LiveKeeper(
        first.folder,
        catalog=None,
        prepare=False,
        log=first.log.with_name("second.log"),
        **{**first.env, "KEEPER_KEY_USAGE_FLUSH_SECONDS": "3600"},
    )
    keeper.start()
    try:
        created = keeper.request("POST", "/keys", headers={"X-API-Key": admin_key}, body={"name": "until-shutdown"})
        assert created.status == 201, created.body
        key, key_id = created.json()["key"], created.json()["id"]
        statuses = [keeper.get("/regions", headers={"X-API-Key": key}).status for _ in range(KEYED_REQUESTS)]
        assert statuses == [200] * KEYED_REQUESTS
        (pk,) = _read(database, "SELECT id FROM keys_apikey WHERE key_id = ?", key_id)[0]
        today = datetime.now(UTC).date().isoformat()
        usage = "SELECT requests FROM keys_keyusageday WHERE key_id = ? AND day = ?"
        assert _read(database, usage, pk, today) == []
    finally:
        # gunicorn's graceful stop (SIGTERM): each worker finishes, then writes what it kept.
        keeper.stop(graceful=True, timeout=60)
    assert _read(database, usage, pk, today) == [(KEYED_REQUESTS,)]
