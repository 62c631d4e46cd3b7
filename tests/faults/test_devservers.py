"""keeper/devservers.py from its command line, as .ci/run uses it: the servers it starts outlive the command,
answer as configured, and a later command stops them through their folder."""

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from keeper.devservers import PostgresServer, RedisServer, port_in_use, postgres_bin, redis_binary
from tests.live import PROJECT, free_port

pytestmark = pytest.mark.skipif(
    postgres_bin() is None or redis_binary() is None, reason="needs PostgreSQL and redis-server (apt-get install)"
)


def devservers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keeper.devservers", *args], cwd=PROJECT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def folder() -> Iterator[Path]:
    """A short path (PostgreSQL's socket lives in its data folder); whatever still runs there is stopped after."""
    root = Path(tempfile.mkdtemp(prefix="keeper-devservers-"))
    yield root
    PostgresServer(root / "pg", 0).stop(immediate=True)
    RedisServer(0, root / "redis").stop()
    shutil.rmtree(root, ignore_errors=True)


def test_servers_started_from_the_command_line_run_on_and_are_stopped_through_their_folder(folder: Path):
    pg_port, redis_port = free_port(), free_port()

    postgres_started = devservers("start-postgres", "--throwaway", "--dir", str(folder / "pg"), "--port", str(pg_port))
    redis_started = devservers("start-redis", "--dir", str(folder / "redis"), "--port", str(redis_port))

    assert postgres_started.returncode == 0, postgres_started.stderr
    assert postgres_started.stdout.strip() == f"postgres://postgres@127.0.0.1:{pg_port}/keeper"
    postgres = PostgresServer(folder / "pg", pg_port)
    assert postgres.query("SELECT current_database(), current_setting('fsync')") == "keeper|off"
    assert redis_started.returncode == 0, redis_started.stderr
    assert redis_started.stdout.strip() == f"redis://127.0.0.1:{redis_port}/0"
    client = redis.Redis.from_url(redis_started.stdout.strip())
    assert client.config_get("save") == {"save": ""} and client.config_get("appendonly") == {"appendonly": "no"}

    # A port already served is refused, saying which.
    taken = devservers("start-redis", "--dir", str(folder / "other"), "--port", str(redis_port))
    assert taken.returncode == 1 and f"port {redis_port} is taken" in taken.stderr

    assert devservers("stop-redis", "--dir", str(folder / "redis")).returncode == 0
    assert devservers("stop-postgres", "--dir", str(folder / "pg")).returncode == 0
    assert not port_in_use(redis_port) and not port_in_use(pg_port)
    assert not postgres.running


def test_a_restarted_redis_is_empty_and_a_restarted_postgres_keeps_its_data(folder: Path):
    postgres = PostgresServer(folder / "pg", free_port(), throwaway=True)
    server = RedisServer(free_port())
    try:
        postgres.start()
        postgres.create_database()
        postgres.query("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('here')")
        server.start()
        redis.Redis.from_url(server.url).set("gone", "1")

        postgres.stop()
        server.stop()
        postgres.start()
        postgres.create_database()  # there already: nothing to do
        server.start()

        assert postgres.query("SELECT value FROM kept") == "here"
        assert redis.Redis.from_url(server.url).get("gone") is None
    finally:
        server.stop()
        postgres.destroy()
