"""A request on a kept-alive connection is answered even when its worker was busy past the keepalive deadline.

Found by the stack's load test (tests/stack/test_load.py): under load a worker runs other connections'
requests inline for longer than gunicorn's keepalive, and a request that arrived on time was dropped
without an answer (keeper/server.py KeeperProtocol._keepalive_timeout). Here the worker is held busy
for certain: another connection's request waits inside Django on a table this test locks
(PostgreSQL, whose pg_stat_activity shows when it waits). Real time is the subject (the server's
own timer), hence the sleeps.
"""

import http.client
import time

import psycopg
import pytest
from django.db import connection

from tests.live import LiveKeepers

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="holds a worker busy with a PostgreSQL lock"),
]

KEEPALIVE = 1


def _database_url() -> str:
    """The test database (migrated, committed tables: transactional_db), for the server and the lock."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.fixture
def port(transactional_db, live_keeper: LiveKeepers) -> int:
    """gunicorn with the project's configuration on the test database, one worker, a keepalive of KEEPALIVE s."""
    server = live_keeper(
        workers=1,
        args=["--keep-alive", str(KEEPALIVE)],
        # The test database is migrated and holds no catalog. Not /healthcheck: a worker that answered it
        # remembers the catalog's state for a second, and the test below needs it to read the table.
        prepare=False,
        catalog=None,
        ready_path="/no-such-page",
        ready_status=404,
        DATABASE_URL=_database_url(),
        RATE_LIMIT_ENABLED="false",
    )
    return server.port


def _get(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/no-such-page")
    response = connection.getresponse()
    response.read()
    return response.status


def _wait_until_blocked(lock: psycopg.Connection) -> None:
    deadline = time.monotonic() + 30
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    while lock.execute(query).fetchone()[0] == 0:
        assert time.monotonic() < deadline, "the worker's request never reached the locked table"
        time.sleep(0.05)


def test_a_request_that_arrived_while_the_worker_was_busy_past_keepalive_is_answered(port: int) -> None:
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    assert _get(kept) == 404  # the connection is now idle, its keepalive timer armed

    with psycopg.connect(_database_url()) as lock:
        lock.execute("LOCK TABLE catalog_syncrun IN ACCESS EXCLUSIVE MODE")
        busy = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        busy.request("GET", "/healthcheck")  # reads catalog_syncrun: the worker waits inside Django
        with psycopg.connect(_database_url(), autocommit=True) as watcher:
            _wait_until_blocked(watcher)
        kept.request("GET", "/no-such-page")  # on time: idle for far less than KEEPALIVE
        time.sleep(KEEPALIVE + 0.5)  # the worker still busy past the deadline
        lock.rollback()

    assert busy.getresponse().status == 503  # no catalog loaded
    response = kept.getresponse()
    assert response.status == 404
    assert response.read().startswith(b"{")


def test_an_idle_kept_alive_connection_is_still_closed(port: int) -> None:
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert _get(idle) == 404

    time.sleep(KEEPALIVE + 1)

    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        _get(idle)
