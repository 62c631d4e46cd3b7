"""Keeper under real gunicorn for tests: one way to start it, wait for it, talk to it and stop it.

LiveKeeper runs gunicorn with the project's own configuration (keeper/gunicorn.conf.py) on a free
127.0.0.1 port, with exactly the settings it is given: none of the caller's Keeper configuration
(KEEPER_*, DATABASE_URL, REDIS_URL, ...) leaks in. By default it serves a SQLite database and the
test suite's sample catalog in its own folder, migrated and synced before gunicorn starts.

- `live_keeper` (a pytest plugin of tests/conftest.py): a fixture that starts servers for one test,
  `live_keeper(workers=1, OPENAI_MODEL="m")`, and stops them after it.
- A fixture of a wider scope: `with LiveKeeper(folder, ...) as server: yield server`.
A failing test shows the end of the log of each LiveKeeper among its fixtures.

Ready means: the asked-for number of workers runs and /healthcheck (or `ready_path`) answers 200 (or `ready_status`),
however long that takes on this machine (up to a generous minute).
"""

import base64
import dataclasses
import glob
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.upstream import sample_catalog

PROJECT = Path(__file__).resolve().parent.parent
# Keeper's configuration in this process's environment is not passed on: each server gets exactly its own.
NOT_INHERITED = (
    "AUTH_", "OIDC_", "RATE_LIMIT_", "KEEPER_", "DATABASE_URL", "REDIS_URL", "SC_DATA_", "SENTRY_", "OPENAI_",
    "PROMETHEUS_", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY",
)  # fmt: skip
START_TIMEOUT_SECONDS = 60
# The sample catalog of tests/catalog/upstream.py, saved in the server's folder.
SAMPLE = "sample"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds saying `what` was awaited."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def keeper_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any Keeper configuration, plus `settings`."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(NOT_INHERITED)}
    return {**inherited, "DJANGO_SETTINGS_MODULE": "keeper.settings", **settings}


def bootstrap_keys(*entries: tuple[str, str, str]) -> str:
    """KEEPER_API_KEYS for (key, name, scope) entries."""
    listed = [{"key": key, "name": name, "scope": scope} for key, name, scope in entries]
    return base64.b64encode(json.dumps(listed).encode()).decode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LiveKeeper:
    """Keeper under gunicorn (keeper/gunicorn.conf.py, `workers` workers) on a free 127.0.0.1 port.

    folder: where its SQLite database, catalog and log go (unless `settings` say otherwise).
    catalog: SAMPLE (the default), a catalog file to serve, or None (no KEEPER_CATALOG_SOURCE, no sync).
    api_keys: (key, name, scope) entries bootstrapped through KEEPER_API_KEYS; `keys` lists the keys.
    prepare: migrate (and sync the catalog) before the first start; off for a database that is ready.
    ready_path, ready_status: what it must answer once it is up (ready_status None: any HTTP answer).
    args: more gunicorn arguments. settings: environment variables of the server.
    """

    def __init__(
        self,
        folder: Path,
        *,
        workers: int = 2,
        catalog: Path | str | None = SAMPLE,
        api_keys: Sequence[tuple[str, str, str]] = (),
        prepare: bool = True,
        ready_path: str = "/healthcheck",
        ready_status: int | None = 200,
        args: Sequence[str] = (),
        log: Path | None = None,
        **settings: str,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers_count = workers
        self.ready_path, self.ready_status = ready_path, ready_status
        self.args = list(args)
        self.log = log or self.folder / "gunicorn.log"
        self.keys = [key for key, _, _ in api_keys]
        if catalog == SAMPLE:
            catalog = sample_catalog().save(self.folder / "catalog.db")
        defaults = {
            "DATABASE_URL": f"sqlite:///{self.folder / 'keeper.sqlite3'}",
            "KEEPER_SECRET_KEY": secrets.token_urlsafe(40),
        }
        if catalog is not None:
            defaults["KEEPER_CATALOG_SOURCE"] = str(catalog)
        if api_keys:
            defaults["KEEPER_API_KEYS"] = bootstrap_keys(*api_keys)
        self.env = keeper_environment(**{**defaults, **settings})
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._prepare = prepare

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- Life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> "LiveKeeper":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def prepare(self) -> None:
        """migrate, and sync the catalog if there is one, in one process (each Django start-up costs seconds)."""
        code = "from django.core.management import call_command\ncall_command('migrate', verbosity=0)\n"
        if self.env.get("KEEPER_CATALOG_SOURCE"):
            code += "call_command('sync_catalog', no_progress=True)\n"
        done = self.python(code, timeout=300)
        assert done.returncode == 0, f"migrate and sync_catalog failed:\n{done.stderr[-3000:]}"

    def start(self) -> None:
        """Start gunicorn (prepared first, the first time) and wait until it is ready."""
        if self._prepare:
            self.prepare()
            self._prepare = False
        command = [sys.executable, "-m", "gunicorn", "-c", "keeper/gunicorn.conf.py", "keeper.wsgi"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers_count)]
        # gunicorn's control socket is one path per user (~/.gunicorn): servers running side by side would share it.
        command += ["--no-control-socket", *self.args]
        with self.log.open("ab") as output:
            # A session of its own: stop() can end whatever of it is left (workers, the scheduler child).
            self.process = subprocess.Popen(
                command, env=self.env, cwd=PROJECT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_for_workers()

    def wait_for_workers(self, count: int | None = None) -> None:
        """Until `count` (by default all) workers run and `ready_path` answers as it should."""
        count = self.workers_count if count is None else count

        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log_tail()}")
            if len(self.workers()) < count:
                return False
            try:
                status = self.get(self.ready_path, timeout=START_TIMEOUT_SECONDS).status
            except OSError:
                return False
            return self.ready_status is None or status == self.ready_status

        try:
            wait_until(ready, timeout=START_TIMEOUT_SECONDS, what="gunicorn's workers")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the end of its log:\n{self.log_tail()}") from None

    def stop(self, *, graceful: bool = False, timeout: float = 20) -> int | None:
        """Stop gunicorn and return its exit status. graceful: SIGTERM, each worker finishes its requests
        and writes what it kept; else SIGINT, gunicorn's quick shutdown. Whatever lingers is killed."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM if graceful else signal.SIGINT)
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        return status

    # --- Its processes ------------------------------------------------------------------------

    def workers(self) -> list[int]:
        """The pids of gunicorn's worker processes (the master's children running gunicorn: the
        scheduler child runs manage.py)."""
        if self.process is None:
            return []
        pids = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                cmdline = Path(stat).with_name("cmdline").read_bytes()
            except OSError:
                continue  # the process ended meanwhile
            # After the command name: state, then the parent's pid.
            if int(fields[1]) == self.process.pid and fields[0] != "Z" and b"gunicorn" in cmdline:
                pids.append(int(Path(stat).parent.name))
        return sorted(pids)

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker (no clean-up runs in them); gunicorn's master forks new ones."""
        killed = self.workers()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        return killed

    def manage(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        """`manage.py <args>` with this server's configuration (plus `env`)."""
        return subprocess.run(
            [sys.executable, str(PROJECT / "manage.py"), *args],
            env={**self.env, **env},
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        """Run `code` after django.setup() in a new process with this server's configuration (plus `env`)."""
        return subprocess.run(
            [sys.executable, "-c", f"import django\ndjango.setup()\n{code}"],
            env={**self.env, **env},
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # --- HTTP ---------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None, timeout: float = 10
    ) -> Answer:
        """One request on a new connection (closed after it, so requests spread over the workers)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            sent = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, headers: dict[str, str] | None = None, *, timeout: float = 10) -> Answer:
        return self.request("GET", path, headers=headers, timeout=timeout)

    def raw(self, data: bytes, timeout: float = 10.0) -> bytes:
        """Send `data` as is and return everything the server answers before it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    # --- Its log ------------------------------------------------------------------------------

    def log_tail(self, size: int = 4000) -> str:
        """The end of the log, to show with a failure (never to assert on: how much a test logs depends on
        how fast the machine is)."""
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def log_size(self) -> int:
        """Where the log ends now: `log_since()` of it is everything logged after this moment."""
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        """Everything logged from `offset` (a `log_size()`) on, however much."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


class LiveKeepers:
    """What the `live_keeper` fixture gives a test: call it with LiveKeeper's arguments (bar the folder)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: list[LiveKeeper] = []

    def __call__(self, **options: Any) -> LiveKeeper:
        server = LiveKeeper(self.folder / f"keeper-{len(self.started)}", **options)
        self.started.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


@pytest.fixture
def live_keeper(tmp_path: Path) -> Iterator[LiveKeepers]:
    """Start Keeper under gunicorn for this test (`live_keeper(**options)`); each is stopped after it."""
    servers = LiveKeepers(tmp_path)
    yield servers
    servers.stop_all()


def _live_keepers(value: object, depth: int = 0) -> Iterator[LiveKeeper]:
    """The LiveKeepers a fixture value is or holds (in a tuple, a dataclass, or the live_keeper fixture)."""
    if isinstance(value, LiveKeeper):
        yield value
    elif isinstance(value, LiveKeepers):
        yield from value.started
    elif depth == 0 and isinstance(value, tuple | list):
        for item in value:
            yield from _live_keepers(item, 1)
    elif depth == 0 and dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _live_keepers(getattr(value, field.name), 1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failing test's report ends with the end of the log of each live server it used."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    seen: set[int] = set()
    for name, value in getattr(item, "funcargs", {}).items():
        for server in _live_keepers(value):
            if id(server) not in seen:
                seen.add(id(server))
                report.sections.append((f"gunicorn log of {name} (its end, {server.log})", server.log_tail()))
