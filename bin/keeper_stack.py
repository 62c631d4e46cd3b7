"""Keeper's scaled-out topology from local processes: what docker-compose.yml runs, without Docker.

    bin/keeper-stack start    # PostgreSQL, Redis, migrate, gunicorn, Celery worker (first sync), beat
    bin/keeper-stack status   # each service: its pid and its health check (exit status 1 unless all healthy)
    bin/keeper-stack stop     # SIGTERM, wait, then SIGKILL; also after a partial start
    bin/keeper-stack run      # start, print the URLs, stop on Ctrl-C
    bin/keeper-stack env      # shell exports to reach the stack (manage.py, celery, psql)

Everything listens on 127.0.0.1 and lives in one state folder (KEEPER_STACK_DIR, default
var/stack/): data, pid files, logs, the generated secret key and an admin API key (secrets/, 0600).
PostgreSQL and Redis are Debian's (installed with apt-get when missing); PostgreSQL refuses to run
as root, so as root it runs as the postgres user. The variables below are read at the first start
and kept in stack.json for the stack's lifetime; other environment variables (KEEPER_*, OPENAI_*,
...) are handed to the Keeper processes as they are.

    KEEPER_STACK_DIR                 state folder (default var/stack)
    KEEPER_STACK_WEB_PORT            gunicorn (default 8800)
    KEEPER_STACK_PG_PORT             PostgreSQL (default 54339)
    KEEPER_STACK_REDIS_PORT          Redis (default 63809)
    WEB_CONCURRENCY                  gunicorn workers (default 4)
    KEEPER_STACK_CELERY_CONCURRENCY  Celery worker processes (default 2)
    KEEPER_STACK_START_TIMEOUT       seconds each service may take to become healthy, the first sync
                                     included (default 300)
    KEEPER_CATALOG_SOURCE            what the worker syncs first (default: sparecores-data, network)
"""

import argparse
import base64
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keeper.devservers import (  # noqa: E402 - bin/ is on the path, the project is not
    PostgresServer,
    RedisServer,
    ServerError,
    install_missing,
    port_in_use,
    postgres_bin,
)

PYTHON = sys.executable
WORKER_NODE = "worker@keeper-stack"
BEAT_NODE = "beat@keeper-stack"
# Seconds between SIGTERM and SIGKILL: gunicorn waits up to its graceful_timeout (30 s) for requests,
# a Celery worker finishes its task (a sync killed midway leaves the old catalog in place).
STOP_TIMEOUTS = {"beat": 10.0, "worker": 60.0, "web": 35.0, "redis": 10.0}


class StackError(Exception):
    """Something the operator must fix; the message says what."""


def log(message: str) -> None:
    print(f"keeper-stack: {message}", flush=True)


# --- Configuration and state folder -----------------------------------------------------------


@dataclass
class StackConfig:
    directory: str
    web_port: int
    pg_port: int
    redis_port: int
    web_workers: int
    celery_concurrency: int
    catalog_source: str | None
    catalog_sync_interval_minutes: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/keeper"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise StackError(f"{name} must be an integer, got {value!r}") from None
    if number < 1:
        raise StackError(f"{name} must be at least 1, got {number}")
    return number


def state_dir() -> Path:
    configured = os.environ.get("KEEPER_STACK_DIR", "").strip()
    return Path(configured).resolve() if configured else ROOT / "var" / "stack"


class Stack:
    """The state folder: configuration, secrets, pid files and logs."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.config_file = directory / "stack.json"
        self.run_dir = directory / "run"
        self.log_dir = directory / "log"
        self.secrets_dir = directory / "secrets"
        self.pg_data = directory / "pg"
        self.events_file = self.run_dir / "events.jsonl"

    def exists(self) -> bool:
        return self.config_file.exists()

    def load(self) -> StackConfig:
        data = json.loads(self.config_file.read_text())
        fields = StackConfig.__dataclass_fields__
        return StackConfig(**{name: value for name, value in data.items() if name in fields})

    def config_from_env(self) -> StackConfig:
        source = os.environ.get("KEEPER_CATALOG_SOURCE", "").strip() or None
        if source and "://" not in source:
            # The processes run from the project folder: a relative path means the caller's folder.
            source = str(Path(source).resolve())
        return StackConfig(
            directory=str(self.dir),
            web_port=_env_int("KEEPER_STACK_WEB_PORT", 8800),
            pg_port=_env_int("KEEPER_STACK_PG_PORT", 54339),
            redis_port=_env_int("KEEPER_STACK_REDIS_PORT", 63809),
            web_workers=_env_int("WEB_CONCURRENCY", 4),
            celery_concurrency=_env_int("KEEPER_STACK_CELERY_CONCURRENCY", 2),
            catalog_source=source,
            catalog_sync_interval_minutes=_env_int("KEEPER_CATALOG_SYNC_INTERVAL_MINUTES", 10),
        )

    def save(self, config: StackConfig) -> None:
        for folder in (self.dir, self.run_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        data = {
            **asdict(config),
            "base_url": config.base_url,
            "database_url": config.database_url,
            "redis_url": config.redis_url,
            "nodes": {"worker": WORKER_NODE, "beat": BEAT_NODE},
            "pid_files": {name: str(self.pid_file(name)) for name in ("web", "worker", "beat", "redis")},
            "postgres_pid_file": str(self.pg_data / "postmaster.pid"),
            "logs": {name: str(self.log(name)) for name in ("postgres", "redis", "migrate", "web", "worker", "beat")},
            "events": str(self.events_file),
            "admin_key_file": str(self.secrets_dir / "admin-key"),
            "secret_key_file": str(self.secrets_dir / "secret-key"),
        }
        self.config_file.write_text(json.dumps(data, indent=2) + "\n")

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """A generated value kept across restarts (the secret key must not change: it peppers key hashes)."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        path = self.secrets_dir / name
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(make())
        return path.read_text().strip()

    def record(self, event: str, **fields) -> None:
        """One line of run/events.jsonl: what the stack did and saw, when (services started, health answers)."""
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "event": event, **fields})
        with self.events_file.open("a") as events:
            events.write(line + "\n")

    def last_started(self, service: str) -> int | None:
        """The pid this stack last started `service` with."""
        try:
            lines = self.events_file.read_text().splitlines()
        except OSError:
            return None
        pids = [
            entry["pid"]
            for entry in map(json.loads, lines)
            if entry["event"] == "started" and entry["service"] == service
        ]
        return pids[-1] if pids else None


# --- Processes --------------------------------------------------------------------------------


def _start_ticks(pid: int) -> str | None:
    """The process's start time (in clock ticks since boot): with the pid, it names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields[19]


def read_pid(path: Path) -> int | None:
    """The pid in `path` if that very process still runs (not a later process that got the number)."""
    try:
        pid_text, ticks = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _start_ticks(pid) == ticks else None


def spawn(stack: Stack, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a long-running service in its own session (its children share its process group)."""
    with stack.log(name).open("ab") as output:
        output.write(f"\n=== {datetime.now(UTC).isoformat()} keeper-stack starts {name}\n".encode())
        output.flush()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    remember(stack, name, process.pid)
    return process


def remember(stack: Stack, name: str, pid: int) -> None:
    """The service's pid file (pid and start time: read_pid knows a reused number) and its "started" event."""
    stack.pid_file(name).write_text(f"{pid} {_start_ticks(pid)}\n")
    stack.record("started", service=name, pid=pid)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def _gone(pid: int) -> bool:
    try:
        finished, _status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return True
    except ChildProcessError:
        pass  # not our child (started by an earlier keeper-stack): look it up
    return _start_ticks(pid) is None


def stop_process(stack: Stack, name: str) -> None:
    """SIGTERM the service, wait, then SIGKILL its whole process group (workers, pool processes)."""
    path = stack.pid_file(name)
    pid = read_pid(path)
    if pid is None:
        if path.exists():
            path.unlink()
        # Its children (gunicorn workers, pool processes) may outlive a service that was killed.
        leader = stack.last_started(name)
        if leader is not None and _group_members(leader):
            log(f"stopping what is left of {name} (process group {leader})")
            _kill_group(leader)
        return
    log(f"stopping {name} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUTS[name]
    while time.monotonic() < deadline and not _gone(pid):
        time.sleep(0.2)
    if not _gone(pid):
        log(f"{name} did not stop within {STOP_TIMEOUTS[name]:.0f} s: SIGKILL")
    _kill_group(pid)
    path.unlink(missing_ok=True)


def _kill_group(pgid: int) -> None:
    # Members of the group are ours: a process group id is not reused while the group has members.
    if _group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_for(what: str, check: Callable[[], bool], *, timeout: float, alive: Callable[[], bool], logfile: Path) -> None:
    """Poll `check` until it holds; fail at once if the process behind it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not alive():
            raise StackError(f"{what}: the process exited. The end of {logfile}:\n{tail(logfile)}")
        time.sleep(0.5)
    raise StackError(f"{what}: not ready within {timeout:.0f} s. The end of {logfile}:\n{tail(logfile)}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- PostgreSQL and Redis (keeper/devservers.py, as CI and the fault tests run them) ----------


def postgres(stack: Stack, port: int) -> PostgresServer:
    # Kept across restarts: the data is the stack's until `rm -r` of its folder, so fsync stays on.
    return PostgresServer(stack.pg_data, port, log=stack.log("postgres"))


def start_postgres(stack: Stack, config: StackConfig) -> None:
    server = postgres(stack, config.pg_port)
    if server.running:
        log(f"postgres: already running on 127.0.0.1:{config.pg_port}")
        return
    if not server.initialized:
        log("postgres: initdb")
    try:
        server.start()
        server.create_database("keeper")
    except ServerError as exc:
        raise StackError(f"postgres did not start: {exc} (KEEPER_STACK_PG_PORT sets its port)") from None
    log(f"postgres: running on 127.0.0.1:{config.pg_port}")


def stop_postgres(stack: Stack) -> None:
    if not stack.pg_data.exists() or postgres_bin() is None:
        return
    server = postgres(stack, 0)  # stopped through its data folder: the port plays no part
    if server.running:
        log("stopping postgres")
        server.stop()


def redis(stack: Stack, port: int) -> RedisServer:
    # The broker's queue, caches and rate-limit pools: nothing there must outlive the stack.
    return RedisServer(port, stack.dir / "redis", log=stack.log("redis"))


def start_redis(stack: Stack, config: StackConfig) -> None:
    if read_pid(stack.pid_file("redis")) is not None:
        log(f"redis: already running on 127.0.0.1:{config.redis_port}")
        return
    with stack.log("redis").open("ab") as output:
        output.write(f"\n=== {datetime.now(UTC).isoformat()} keeper-stack starts redis\n".encode())
    try:
        process = redis(stack, config.redis_port).start(detach=True)
    except ServerError as exc:
        raise StackError(f"redis did not start: {exc} (KEEPER_STACK_REDIS_PORT sets its port)") from None
    remember(stack, "redis", process.pid)
    log(f"redis: running on 127.0.0.1:{config.redis_port}")


# --- Keeper: migrate, gunicorn, Celery worker and beat ----------------------------------------


def keeper_env(stack: Stack, config: StackConfig) -> dict[str, str]:
    """The environment of every Keeper process: the caller's, with the stack's services and secrets."""
    from apps.keys.secrets import new_key, new_key_id

    admin_key = stack.secret("admin-key", lambda: new_key(new_key_id()))
    bootstrap = [{"key": admin_key, "name": "keeper-stack", "scope": "admin"}]
    given = os.environ.get("KEEPER_API_KEYS", "").strip()
    if given:
        try:
            bootstrap = [*json.loads(base64.b64decode(given, validate=True)), *bootstrap]
        except ValueError:
            raise StackError("KEEPER_API_KEYS must be base64-encoded JSON") from None
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "REDIS_URL": config.redis_url,
        "KEEPER_SECRET_KEY": stack.secret("secret-key", lambda: secrets.token_urlsafe(50)),
        "KEEPER_API_KEYS": base64.b64encode(json.dumps(bootstrap).encode()).decode(),
        # Limits on unless the caller says otherwise (bench/run_all.py measures the stack without them).
        "RATE_LIMIT_ENABLED": os.environ.get("RATE_LIMIT_ENABLED", "1"),
        "RATE_LIMIT_BACKEND": "redis",
        "KEEPER_CATALOG_SYNC_INTERVAL_MINUTES": str(config.catalog_sync_interval_minutes),
        "DJANGO_SETTINGS_MODULE": "keeper.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("KEEPER_CATALOG_SOURCE", None)
    if config.catalog_source:
        env["KEEPER_CATALOG_SOURCE"] = config.catalog_source
    return env


def migrate(stack: Stack, env: dict[str, str]) -> None:
    log("migrate")
    with stack.log("migrate").open("ab") as output:
        output.write(f"\n=== {datetime.now(UTC).isoformat()} manage.py migrate\n".encode())
        output.flush()
        done = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise StackError(f"manage.py migrate failed. The end of {stack.log('migrate')}:\n{tail(stack.log('migrate'))}")


def healthcheck(config: StackConfig, timeout: float = 5.0) -> tuple[int | None, dict]:
    """GET /healthcheck: (status, body), or (None, {}) when gunicorn does not answer."""
    try:
        with urllib.request.urlopen(f"{config.base_url}/healthcheck", timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.load(exc)
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return None, {}


def start_web(stack: Stack, config: StackConfig, env: dict[str, str]) -> None:
    if read_pid(stack.pid_file("web")) is not None:
        log(f"web: already running on {config.base_url}")
        return
    if port_in_use(config.web_port):
        raise StackError(f"port {config.web_port} is taken: set KEEPER_STACK_WEB_PORT")
    command = [
        PYTHON, "-m", "gunicorn", "-c", "keeper/gunicorn.conf.py", "keeper.wsgi",
        "--bind", f"127.0.0.1:{config.web_port}",
        "--workers", str(config.web_workers),
        "--control-socket", str(stack.run_dir / "gunicorn.ctl"),
    ]  # fmt: skip
    process = spawn(stack, "web", command, env)
    wait_for(
        f"web (gunicorn on 127.0.0.1:{config.web_port})",
        lambda: port_in_use(config.web_port),
        timeout=60,
        alive=lambda: process.poll() is None,
        logfile=stack.log("web"),
    )
    answer: dict = {}

    def answers() -> bool:
        answer["status"], answer["body"] = healthcheck(config, timeout=10)
        return answer["status"] is not None

    # The port opens before the workers have booted (a worker that cannot boot stops the master).
    wait_for("web (/healthcheck)", answers, timeout=60, alive=lambda: process.poll() is None, logfile=stack.log("web"))
    status, body = answer["status"], answer["body"]
    # Before the worker's first sync a new stack has no catalog: /healthcheck says so with a 503.
    stack.record("healthcheck", status=status, body=body)
    log(
        f"web: {config.web_workers} gunicorn workers on {config.base_url} (/healthcheck {status}: {body.get('status')})"
    )


def celery_ping(config: StackConfig, node: str, timeout: float = 1.0) -> bool:
    from celery import Celery

    app = Celery("keeper-stack", broker=config.redis_url)
    try:
        return bool(app.control.ping(destination=[node], timeout=timeout))
    except Exception:  # noqa: BLE001 - a broker that does not answer: not healthy, whatever the error
        return False
    finally:
        app.close()


def start_celery(stack: Stack, config: StackConfig, env: dict[str, str], name: str, timeout: float) -> None:
    node = WORKER_NODE if name == "worker" else BEAT_NODE
    if read_pid(stack.pid_file(name)) is not None:
        log(f"{name}: already running ({node})")
        return
    if name == "worker":
        # Takes no task before its first catalog sync, and exits with status 1 if that fails.
        command = [PYTHON, "-m", "celery", "-A", "keeper", "worker", "-n", node, "--concurrency",
                   str(config.celery_concurrency), "--loglevel", "INFO"]  # fmt: skip
        what = f"worker (first catalog sync from {config.catalog_source or 'sparecores-data'})"
    else:
        command = [PYTHON, "-m", "celery", "-A", "keeper", "beat", "-n", node, "--enable-remote-control",
                   "--schedule", str(stack.dir / "beat-schedule"), "--loglevel", "INFO"]  # fmt: skip
        what = "beat"
    process = spawn(stack, name, command, env)
    wait_for(
        what,
        lambda: celery_ping(config, node),
        timeout=timeout,
        alive=lambda: process.poll() is None,
        logfile=stack.log(name),
    )
    log(f"{name}: ready ({node})")


# --- Commands ---------------------------------------------------------------------------------


def _running(stack: Stack) -> list[str]:
    running = [name for name in ("web", "worker", "beat", "redis") if read_pid(stack.pid_file(name)) is not None]
    if postgres_bin() is not None and postgres(stack, 0).running:
        running.append("postgres")
    return running


def command_start(stack: Stack) -> StackConfig:
    if stack.exists() and _running(stack):
        config = stack.load()
        log(f"using the running stack's configuration ({stack.config_file})")
    else:
        config = stack.config_from_env()
    timeout = float(_env_int("KEEPER_STACK_START_TIMEOUT", 300))
    try:
        install_missing(log)
    except ServerError as exc:
        raise StackError(str(exc)) from None
    stack.save(config)
    try:
        start_postgres(stack, config)
        start_redis(stack, config)
        env = keeper_env(stack, config)
        migrate(stack, env)
        start_web(stack, config, env)
        start_celery(stack, config, env, "worker", timeout)
        start_celery(stack, config, env, "beat", timeout)
        status, body = healthcheck(config)
        stack.record("healthcheck", status=status, body=body)
        if status != 200:
            raise StackError(f"/healthcheck answers {status} after the first sync: {body}")
    except BaseException:
        # All or nothing: what started is stopped (its logs stay), so a failed start leaves no servers.
        log("start failed: stopping what was started")
        command_stop(stack)
        raise
    log(f"up: {config.base_url} (catalog synced {body.get('database_last_updated')}, hash {body.get('database_hash')})")
    return config


def command_stop(stack: Stack) -> None:
    if not stack.dir.exists():
        log(f"no stack in {stack.dir}")
        return
    for name in ("beat", "worker", "web", "redis"):
        stop_process(stack, name)
    stop_postgres(stack)
    log("stopped")


def service_status(stack: Stack, config: StackConfig) -> list[tuple[str, str, bool, str]]:
    """(service, pid, healthy, what its health check says) for every service."""
    rows = []
    postmaster = stack.pg_data / "postmaster.pid"
    server = postgres(stack, config.pg_port) if postgres_bin() is not None else None
    pg_up = server is not None and server.running
    ready = pg_up and server.accepting
    pg_pid = postmaster.read_text().split()[0] if pg_up else "-"
    rows.append(("postgres", pg_pid, ready, "accepting connections" if ready else "not running"))
    checks: dict[str, Callable[[], tuple[bool, str]]] = {
        "redis": lambda: (redis(stack, config.redis_port).ping(), "PING"),
        "web": lambda: _web_health(config),
        "worker": lambda: (celery_ping(config, WORKER_NODE, 2.0), f"celery ping {WORKER_NODE}"),
        "beat": lambda: (celery_ping(config, BEAT_NODE, 2.0), f"celery ping {BEAT_NODE}"),
    }
    for name, check in checks.items():
        pid = read_pid(stack.pid_file(name))
        if pid is None:
            rows.append((name, "-", False, "not running"))
            continue
        healthy, detail = check()
        rows.append((name, str(pid), healthy, detail))
    return rows


def _web_health(config: StackConfig) -> tuple[bool, str]:
    status, body = healthcheck(config)
    return status == 200, f"/healthcheck {status}: {body.get('status', 'no answer')}"


def command_status(stack: Stack, as_json: bool) -> int:
    if not stack.exists():
        log(f"no stack in {stack.dir}")
        return 1
    config = stack.load()
    rows = service_status(stack, config)
    if as_json:
        print(json.dumps([{"service": s, "pid": p, "healthy": h, "detail": d} for s, p, h, d in rows], indent=2))
    else:
        for service, pid, healthy, detail in rows:
            print(f"{service:<9} {pid:>8}  {'healthy' if healthy else 'DOWN':<8} {detail}")
        print(f"\nstate: {stack.dir}   logs: {stack.log_dir}")
    return 0 if all(healthy for _, _, healthy, _ in rows) else 1


def print_urls(stack: Stack, config: StackConfig) -> None:
    print(
        f"""
Keeper at scale on this machine ({config.web_workers} gunicorn workers, Redis rate limits on):
  API        {config.base_url}/servers?vcpus_min=2&limit=5
  docs       {config.base_url}/docs
  health     {config.base_url}/healthcheck
  admin key  {stack.secrets_dir / "admin-key"}  (X-API-Key; create keys with POST /keys)
  database   {config.database_url}
  redis      {config.redis_url}
  logs       {stack.log_dir}/
  stop       bin/keeper-stack stop""",
        flush=True,
    )


def command_run(stack: Stack) -> None:
    config = command_start(stack)
    print_urls(stack, config)
    stopping = False

    def request_stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    reported: set[str] = set()
    try:
        while not stopping:
            time.sleep(1)
            for name in ("web", "worker", "beat", "redis"):
                if name not in reported and read_pid(stack.pid_file(name)) is None:
                    reported.add(name)
                    log(f"{name} exited; see {stack.log(name)}")
    finally:
        command_stop(stack)


def command_env(stack: Stack) -> None:
    if not stack.exists():
        raise StackError(f"no stack in {stack.dir}: bin/keeper-stack start first")
    config = stack.load()
    env = keeper_env(stack, config)
    for name in ("DATABASE_URL", "REDIS_URL", "KEEPER_SECRET_KEY", "RATE_LIMIT_ENABLED", "RATE_LIMIT_BACKEND"):
        print(f"export {name}={shlex.quote(env[name])}")
    if "KEEPER_CATALOG_SOURCE" in env:
        print(f"export KEEPER_CATALOG_SOURCE={shlex.quote(env['KEEPER_CATALOG_SOURCE'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/keeper-stack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start every service and wait until each is healthy")
    commands.add_parser("stop", help="stop every service (SIGTERM, wait, SIGKILL)")
    status = commands.add_parser("status", help="each service's pid and health; exit status 1 unless all healthy")
    status.add_argument("--json", action="store_true", help="as JSON")
    commands.add_parser("run", help="start, print the URLs, and stop everything on Ctrl-C")
    commands.add_parser("env", help="shell exports to reach the stack's database and Redis")
    args = parser.parse_args(argv)
    stack = Stack(state_dir())
    try:
        if args.command == "start":
            config = command_start(stack)
            print_urls(stack, config)
        elif args.command == "stop":
            command_stop(stack)
        elif args.command == "status":
            return command_status(stack, args.json)
        elif args.command == "run":
            command_run(stack)
        elif args.command == "env":
            command_env(stack)
    except StackError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
