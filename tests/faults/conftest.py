"""One Keeper stack for the fault tests: its own PostgreSQL, Redis and identity provider, and gunicorn over them.

The tests stop, kill and restart these servers, so they run in their own CI step
(`pytest tests/faults`) and are skipped, saying so, when the suite runs as a whole.
Each test leaves the stack running as it found it (the `keeper` fixture checks).
"""

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from keeper.devservers import PostgresServer, RedisServer, postgres_bin, redis_binary
from tests.fakes import CLIENT_ID, CLIENT_SECRET, FakeIdentityProvider, _IntrospectionHandler
from tests.live import LiveKeeper, bootstrap_keys, free_port

FAULTS = Path(__file__).resolve().parent
# Generous: the tests count their own requests exactly and must never run out.
CREDITS_PER_MINUTE = 1_000_000


class IdentityProvider(FakeIdentityProvider):
    """The fake provider of tests/fakes.py, able to come back on its port after stop()."""

    def restart(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _IntrospectionHandler)
        self._server.daemon_threads = True
        self._server.provider = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda request, address: None
        self.start()

    @property
    def running(self) -> bool:
        return self._thread is not None


@dataclass
class Stack:
    keeper: LiveKeeper
    postgres: PostgresServer
    redis: RedisServer
    idp: IdentityProvider
    admin_key: str
    read_key: str
    tmp: Path

    def ensure_running(self) -> None:
        """Whatever a failed test left stopped is started again."""
        if not self.postgres.running:
            self.postgres.start()
        if self.redis.process is None:
            self.redis.start()
        if not self.idp.running:
            self.idp.restart()
        self.keeper.wait_for_workers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _asked_for(config):
        return
    skip = pytest.mark.skip(
        reason="fault tests start, stop and kill their own servers: they run on their own (pytest tests/faults)"
    )
    for item in items:
        if FAULTS in Path(item.path).parents:
            item.add_marker(skip)


def _asked_for(config: pytest.Config) -> bool:
    """This folder (or a file in it) was named on the command line, or KEEPER_FAULT_TESTS=1."""
    if os.environ.get("KEEPER_FAULT_TESTS") == "1":
        return True
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / arg.split("::", 1)[0]).resolve()
        if path == FAULTS or FAULTS in path.parents:
            return True
    return False


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    bin_dir = postgres_bin()
    if bin_dir is None or not (bin_dir / "psql").exists():
        pytest.skip("fault tests need PostgreSQL and psql in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    if redis_binary() is None:
        pytest.skip("fault tests need redis-server (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("faults")
    # A short path: the server's Unix socket lives in its data folder (at most 107 bytes).
    pg_root = Path(tempfile.mkdtemp(prefix="keeper-faults-pg-"))
    postgres = PostgresServer(pg_root / "data", free_port(), throwaway=True)
    redis = RedisServer(free_port())
    idp = IdentityProvider()
    keeper: LiveKeeper | None = None
    try:
        postgres.start()
        postgres.create_database()
        redis.start()
        idp.start()
        admin_key, read_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        keeper = LiveKeeper(
            tmp,
            DATABASE_URL=postgres.url,
            REDIS_URL=redis.url,
            KEEPER_API_KEYS=bootstrap_keys((admin_key, "faults-admin", "admin"), (read_key, "faults-read", "read")),
            # Counters stay in Redis until a test flushes them (test_key_usage.py).
            KEEPER_KEY_USAGE_FLUSH_SECONDS="3600",
            RATE_LIMIT_ENABLED="1",
            RATE_LIMIT_BACKEND="redis",
            RATE_LIMIT_CREDITS_PER_MINUTE=str(CREDITS_PER_MINUTE),
            AUTH_TOKEN_INTROSPECTION_URL=idp.url,
            AUTH_CLIENT_ID=CLIENT_ID,
            AUTH_CLIENT_SECRET=CLIENT_SECRET,
            AUTH_TOKEN_INTROSPECTION_TIMEOUT_SECONDS="1",
        )
        keeper.start()
        # The global bucket (100/s by default) must not refuse the tests' bursts of requests.
        answer = keeper.request(
            "PATCH", "/config", headers={"X-API-Key": admin_key}, body={"rate_limit": 100000, "rate_burst": 100000}
        )
        assert answer.status == 200, answer.body
        yield Stack(keeper, postgres, redis, idp, admin_key, read_key, tmp)
    finally:
        if keeper is not None:
            keeper.stop()
        idp.stop()
        redis.stop()
        postgres.destroy()
        shutil.rmtree(pg_root, ignore_errors=True)


@pytest.fixture
def keeper(stack: Stack) -> Iterator[Stack]:
    """The stack, with every server up before and after the test."""
    stack.ensure_running()
    yield stack
    stack.ensure_running()
