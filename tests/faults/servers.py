"""Private servers for the fault tests: PostgreSQL, Redis and Keeper under gunicorn, each on a free 127.0.0.1 port.

They are this test run's own processes, in temporary folders, so a test may stop, kill and restart
them without touching the servers the rest of the suite uses (KEEPER_TEST_REDIS_URL, DATABASE_URL).
"""

import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent.parent
# Keeper's configuration in this process's environment is not passed on: each server gets exactly its own.
NOT_INHERITED = ("AUTH_", "OIDC_", "RATE_LIMIT_", "KEEPER_", "DATABASE_URL", "REDIS_URL", "SC_DATA_", "SENTRY_")


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


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A throw-away PostgreSQL cluster (initdb in a temporary folder), stoppable and restartable on its port.

    As root, it runs as the postgres user (PostgreSQL refuses to run as root), as .ci/run does.
    """

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="keeper-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            shutil.chown(self.root, self._user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/keeper"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / program), *args],
            user=self._user,
            cwd=self.root,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    @property
    def running(self) -> bool:
        status = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"], user=self._user, capture_output=True, timeout=30
        )
        return status.returncode == 0

    def stop(self) -> None:
        """A fast shutdown: open sessions are terminated, their transactions rolled back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "keeper")

    def query(self, sql: str) -> str:
        """The rows of `sql` as psql prints them unaligned (one row a line, `|` between columns)."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "keeper"]
            + ["-X", "-A", "-t", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout.strip()

    def destroy(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """redis-server without persistence, as a child of this process: stop() ends it, start() brings it back
    on the same port (empty, as a restarted cache without persistence is)."""

    def __init__(self, binary: str):
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class KeeperServer:
    """Keeper under gunicorn with the project's own configuration (keeper/gunicorn.conf.py, 2 workers)."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

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

    def start(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "keeper/gunicorn.conf.py", "keeper.wsgi", "--bind", f"127.0.0.1:{self.port}"],
                env=self.env,
                cwd=PROJECT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.wait_for_workers()

    def wait_for_workers(self, count: int = 2) -> None:
        """Until `count` workers run and the API answers."""

        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log_tail()}")
            if len(self.workers()) < count:
                return False
            try:
                return self.get("/healthcheck", timeout=2).status == 200
            except OSError:
                return False

        wait_until(ready, timeout=60, what="gunicorn's workers")

    def workers(self) -> list[int]:
        """The pids of gunicorn's worker processes (the master's children running the worker)."""
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
            if int(fields[1]) == self.process.pid and b"gunicorn" in cmdline:
                pids.append(int(Path(stat).parent.name))
        return sorted(pids)

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker (no clean-up runs in them); gunicorn's master forks new ones."""
        killed = self.workers()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        return killed

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None, timeout: float = 10
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            sent = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, *, headers: dict[str, str] | None = None, timeout: float = 10) -> Answer:
        return self.request("GET", path, headers=headers, timeout=timeout)

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

    def stop(self) -> None:
        if self.process is None:
            return
        # gunicorn's quick shutdown: nothing is in flight when the tests are done.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def keeper_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any Keeper configuration, plus `settings`."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(NOT_INHERITED)}
    return {**inherited, "DJANGO_SETTINGS_MODULE": "keeper.settings", **settings}
