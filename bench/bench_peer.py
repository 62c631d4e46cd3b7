"""Keeper side by side with the Spare Cores API (sc-keeper, "the peer"), over HTTP and in process.

    .venv/bin/python bench/bench_peer.py              # everything: 10-15 minutes
    .venv/bin/python bench/bench_peer.py --no-large   # without the large catalog (saves its load and run)
    .venv/bin/python bench/bench_peer.py --only '/servers?countries=DE' --no-inprocess --no-large
    .venv/bin/python bench/bench_peer.py --commit HEAD --set issue --set prices   # a clean export of HEAD, two sets
    .venv/bin/python bench/bench_peer.py --stack --no-inprocess --no-large      # the local stack (bin/keeper-stack)
    .venv/bin/python bench/bench_peer.py --keeper-url http://127.0.0.1:8800     # a Keeper already running
    .venv/bin/python bench/bench_peer.py --list     # the requests, by set (bench/_catalog_requests.py)

The requests: bench/_catalog_requests.py, every catalog request of issue 16 in sets (--set NAME,
repeatable; default all): issue (the table of issue 16), servers, prices, places, server, tables,
dumps, keeper-only (routes the peer lacks: measured on Keeper only, listed apart), plus /healthcheck
(set other). Targets: issue 16's (>= 10x, the first /servers search >= 14x; the filtered
/server_prices within 2x of the plain one in Keeper; a cached answer within 1.1x of Django's 404).
--sort ratio prints the worst ratio first.

Which Keeper: by default the work tree's code; --commit REV measures a clean export of REV (git
archive into /tmp/keeper-bench-tree-SHA), so edits in progress do not interfere. --keeper-url
measures an already-running Keeper instead of starting the two (one column). --stack starts the
local production stack from that tree (bin/keeper-stack: PostgreSQL on --stack-pg-port, Redis on
--stack-redis-port, 4 gunicorn workers, Celery; state in --stack-dir, kept so that the next start
finds the catalog loaded; response cache off, rate limits off; the catalog --stack-source, by
default the large one), measures it beside the peer and stops it.

1. Servers. The peer: `WORKERS=2 ../shared/peer/start.sh PORT` (--peer-port, default 8770), reused
   and left running when it already runs there with 2 workers, else started here (~50 s) and
   stopped at the end with `kill $(cat /tmp/sckeeper/server-PORT.pid)`. Keeper: its production
   setup, `gunicorn -c keeper/gunicorn.conf.py keeper.wsgi --bind 127.0.0.1:PORT` (2
   keeper.server.KeeperWorker workers, access log, embedded scheduler), twice at once: one with
   the response cache off (KEEPER_CATALOG_RESPONSE_CACHE_SECONDS=0), one with the default; both
   on one SQLite file loaded with the sample (`manage.py migrate`, `manage.py sync_catalog`; a
   file whose last loaded catalog has the dump's hash is reused, unless a migration was applied
   since: then the sync is forced). KEEPER_CATALOG_SOURCE is the
   dump, so the embedded scheduler never reaches for the network. Running both Keepers side by
   side lets each request be measured on the three servers back to back, so a load change on
   the shared machine hits the three figures of a row alike.
2. Per request: statuses first (a non-200 is printed and its row gets no ratio); then, per
   server, a warm-up (a few sequential requests, then --warmup s of wrk unless the request is
   slow), `wrk -t2 -c8 --latency` for --duration s (longer for slow requests, so that ~40 of
   them complete; at most --max-duration) and a wait until the server's workers are idle again
   (wrk leaves its last requests to the server). req/s counts 2xx answers only (the peer sheds
   its heavy endpoints with 503s under 8 clients); p50/p99 are wrk's, failures included; the ratio is
   Keeper req/s / peer req/s; targets are judged on the cache-off ratio (the peer has no
   response cache); the cache-on ratio is shown beside it. A row where one answer is an empty
   list and the other is not is measured but not judged.
3. In process (Django's WSGIHandler called here, no HTTP): uncached `/servers?vcpus_min=2&
   memory_min=8&limit=5` against its bare SQL (captured with connection.execute_wrapper, re-run
   on a raw sqlite3 connection, rows zipped into dicts, orjson.dumps); a cached answer against
   Django's 404 for an unknown path; `/healthcheck` in process and over HTTP.
4. Keeper (cache off) on the large catalog: two requests (--no-large to skip; loading takes ~1 min).
5. One Markdown table at the end. `others`: cores used meanwhile by processes outside the
   benchmark (bench/_common.py's CpuMeter; the peer's processes count as ours only while the
   peer is measured). Before each run the benchmark waits up to --wait-quiet s for the machine
   to go idle, and repeats a run (--attempts) when others went over --quiet cores.

Writes only under /tmp (SQLite files, logs; the peer's state in /tmp/sckeeper). Only 127.0.0.1
is contacted.
"""

import sys

sys.dont_write_bytecode = True  # nothing written outside /tmp: no __pycache__ in the project

import argparse  # noqa: E402
import gc  # noqa: E402
import http.client  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _catalog_requests import (  # noqa: E402
    FILTERED_PRICES_WITHIN,
    PRICES,
    PRICES_FILTERED,
    SEARCH,
    SETS,
    CatalogRequest,
)
from _catalog_requests import select as select_requests  # noqa: E402
from _common import (  # noqa: E402
    LARGE,
    PROJECT,
    SAMPLE,
    CpuMeter,
    children_of,
    export_tree,
    file_sha256,
    listening_pids,
    load_average,
    machine,
    marked,
    median,
    now,
    percentile,
    process_cpu,
    setup_django,
    table,
    wait_for_quiet,
)
from bench_api import Capture, ensure_wrk, free_port  # noqa: E402

HOST = "127.0.0.1"
PEER_START = PROJECT.parent / "shared" / "peer" / "start.sh"
PEER_HOME = Path(os.environ.get("SCKEEPER_HOME", "/tmp/sckeeper"))
TMP = Path("/tmp")
UNKNOWN = "/no-such-path/for-the-404"
HEALTHCHECK = CatalogRequest("/healthcheck", "other", target=5)
LARGE_REQUESTS = ["/servers?countries=DE", "/server_prices?limit=25"]
HEALTHCHECK_TARGET = 1000  # req/s over HTTP, 2 workers
INPROC_SQL_TARGET = 4.0  # uncached in-process time / bare SQL + orjson, at most
INPROC_404_TARGET = 1.1  # cached answer / Django's 404, at most (issue 16)
# Environment that would change what is measured (Redis, rate limits, another database, ...).
# The project tree whose code Keeper runs (PROJECT, or an export of --commit).
ROOT = PROJECT
SCRUBBED = (
    "KEEPER_",
    "RATE_LIMIT_",
    "REDIS_",
    "DATABASE_",
    "OPENAI_",
    "AUTH_",
    "OIDC_",
    "SENTRY_",
    "SC_DATA_",
    "CELERY_",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED) and k != "DJANGO_SETTINGS_MODULE"}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def keeper_env(db: Path, source: Path, *, cache: bool = True) -> dict[str, str]:
    env = clean_env(
        DATABASE_URL=f"sqlite:///{db}",
        KEEPER_CATALOG_SOURCE=str(source),
        # Set, so that settings never writes the project's .keeper-secret-key file.
        KEEPER_SECRET_KEY="bench-peer-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    )
    if not cache:
        env["KEEPER_CATALOG_RESPONSE_CACHE_SECONDS"] = "0"
    return env


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.2f}" if seconds < 0.1 else f"{seconds * 1000:,.0f}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def fetch(port: int, path: str, timeout: float = 120) -> tuple[int, int, float]:
    """One GET on a new connection: status, body bytes, seconds."""
    status, body, seconds = fetch_body(port, path, timeout)
    return status, len(body), seconds


def fetch_body(port: int, path: str, timeout: float = 120) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started
    except (OSError, http.client.HTTPException):
        return 0, b"", time.perf_counter() - started
    finally:
        conn.close()


def items(body: bytes) -> int | None:
    """Rows of a JSON list answer (None for anything else): a check that both answers are alike."""
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return len(data) if isinstance(data, list) else None


def wait_idle(pids: list[int], max_wait: float = 120.0) -> None:
    """Until `pids` use no CPU for 0.3 s: the requests wrk left behind have been answered."""
    deadline = time.monotonic() + max_wait
    before = sum(process_cpu(p) for p in pids)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        after = sum(process_cpu(p) for p in pids)
        if after - before < 0.015:
            return
        before = after


# --- catalogs -------------------------------------------------------------------


def loaded_catalog(db: Path) -> tuple[str | None, bool]:
    """In the SQLite file `db`: data_hash of the last loaded catalog (None if none), and whether
    a migration was applied after that sync (then the catalog must be loaded again)."""
    if not db.exists():
        return None, False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT data_hash, started_at FROM catalog_syncrun WHERE status = 'SUCCEEDED'"
                " ORDER BY started_at DESC, id DESC LIMIT 1"
            ).fetchone()
            servers = conn.execute("SELECT COUNT(*) FROM catalog_server").fetchone()[0]
            migrated = conn.execute("SELECT MAX(applied) FROM django_migrations").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None, False
    if not row or not servers:
        return None, False
    return row[0], bool(migrated and migrated > row[1])  # both UTC, as Django stores them in SQLite


def manage(args: list[str], env: dict[str, str], log: Path) -> None:
    python = str(PROJECT / ".venv" / "bin" / "python")
    with log.open("ab") as out:
        done = subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({done.returncode}); see {log}")


def prepare_catalog(db: Path, source: Path) -> str:
    """Migrate `db`; load `source` unless the file already holds it. Returns what was done.

    A file is reused only when no migration was applied after its last sync: a migration may add
    a table that only a sync fills (0006_server_region_prices did: /servers?countries=DE answered
    [] on such a file, and a plain sync skips an unchanged catalog), so then the sync is forced.
    """
    env = keeper_env(db, source)
    log = TMP / f"{db.stem}-load.log"
    started = time.perf_counter()
    manage(["migrate", "--no-input", "-v0"], env, log)
    want = file_sha256(source)
    loaded, stale = loaded_catalog(db)
    if loaded == want and not stale:
        return f"{db}: reused (catalog {want[:12]} already loaded; migrate {time.perf_counter() - started:.1f} s)"
    force = ["--force"] if loaded == want else []
    manage(["sync_catalog", "--source", str(source), "--no-progress", *force], env, log)
    if loaded_catalog(db) != (want, False):
        raise SystemExit(f"{db}: sync_catalog did not load {source}; see {log}")
    why = " (forced: migrations applied since the last sync)" if force else ""
    return f"{db}: loaded {source.name} in {time.perf_counter() - started:.1f} s{why} (log {log})"


# --- servers --------------------------------------------------------------------


class Peer:
    """sc-keeper through ../shared/peer/start.sh; left alone when it was already running."""

    name = "peer"

    def __init__(self, port: int) -> None:
        self.port = port
        self.pidfile = PEER_HOME / f"server-{port}.pid"
        self.log = TMP / f"keeper-bench-peer-start-{port}.log"
        self.started_here = False
        self.process: subprocess.Popen | None = None
        self.markers = [f"sc_keeper.api:app --host {HOST} --port {port} "]

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if alive(pid) and re.search(rf"sc_keeper\.api:app .*--port {self.port} ", cmdline(pid)):
            return pid
        return None

    def begin(self) -> str:
        pid = self.running_pid()
        if pid is not None:
            workers = re.search(r"--workers (\d+)", cmdline(pid))
            if not workers or workers.group(1) != "2":
                raise SystemExit(
                    f"the peer on {self.port} (pid {pid}) does not run 2 workers; choose another --peer-port"
                )
            if fetch(self.port, "/healthcheck", timeout=10)[0] != 200:
                raise SystemExit(f"the peer on {self.port} (pid {pid}) does not answer /healthcheck")
            return f"peer: already running on {self.port} (pid {pid}, 2 workers): used as it is and left running"
        if fetch(self.port, "/", timeout=2)[0]:
            raise SystemExit(f"port {self.port} is in use by something else; choose another --peer-port")
        self.started_here = True
        env = clean_env(WORKERS="2")
        self.process = subprocess.Popen(
            ["bash", str(PEER_START), str(self.port)], env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        return f"peer: starting WORKERS=2 {PEER_START} {self.port} (log {self.log}) ..."

    def wait_ready(self) -> str:
        if self.process is None:
            return ""
        started = time.perf_counter()
        code = self.process.wait()
        if code:
            raise SystemExit(f"the peer did not start ({code}); see {self.log}")
        last = self.log.read_text(errors="replace").strip().splitlines()
        return f"peer: {last[-2] if len(last) > 1 else 'up'} (waited {time.perf_counter() - started:.0f} s more)"

    def pids(self) -> list[int]:
        pid = self.running_pid()
        return [pid, *children_of(pid)] if pid else []

    def stop(self) -> None:
        if not self.started_here:
            return
        pid = self.running_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # = kill $(cat /tmp/sckeeper/server-PORT.pid)
        for _ in range(60):
            if not alive(pid):
                break
            time.sleep(0.5)
        self.started_here = False


class Keeper:
    """Keeper under gunicorn with keeper/gunicorn.conf.py (2 KeeperWorker workers)."""

    def __init__(self, name: str, db: Path, source: Path, *, cache: bool) -> None:
        self.name = name
        self.port = free_port()
        self.env = keeper_env(db, source, cache=cache)
        self.log = TMP / f"keeper-bench-peer-gunicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.markers: list[str] = []  # our child: counted as ours anyway

    def start(self) -> None:
        gunicorn = str(PROJECT / ".venv" / "bin" / "gunicorn")
        command = [gunicorn, "-c", "keeper/gunicorn.conf.py", "keeper.wsgi", "--bind", f"{HOST}:{self.port}"]
        # gunicorn >= 24 opens a control socket at one fixed path per user; keep off other servers' one.
        if "--no-control-socket" in subprocess.run([gunicorn, "--help"], capture_output=True, text=True).stdout:
            command.append("--no-control-socket")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: gunicorn exited with {self.process.returncode}; see {self.log}")
            if len(self.workers()) >= 2 and fetch(self.port, "/healthcheck", timeout=10)[0] == 200:
                wait_idle(self.workers(), max_wait=20)
                return
            time.sleep(0.3)
        raise SystemExit(f"{self.name}: not ready within {timeout:.0f} s; see {self.log}")

    def workers(self) -> list[int]:
        if self.process is None:
            return []
        return [pid for pid in children_of(self.process.pid) if "gunicorn" in cmdline(pid)]

    def pids(self) -> list[int]:
        return [self.process.pid, *self.workers()] if self.process else []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class External:
    """A Keeper already running on 127.0.0.1:port (--keeper-url): measured, never started or stopped.

    Its processes are the ones holding the listening socket (a gunicorn master and its workers);
    `markers` name more processes of it (PostgreSQL backends, Redis) counted as ours.
    """

    def __init__(self, name: str, url: str, markers: list[str] | None = None) -> None:
        parsed = urlparse(url)
        if parsed.hostname not in (HOST, "localhost") or not parsed.port or parsed.path not in ("", "/"):
            raise SystemExit(f"--keeper-url must be http://{HOST}:PORT, got {url!r}")
        self.name, self.port = name, parsed.port
        self.markers = [m for m in (markers or []) if m]

    def start(self) -> None:
        pass

    def wait_ready(self, timeout: float = 30) -> None:
        if fetch(self.port, "/healthcheck", timeout=timeout)[0] != 200:
            raise SystemExit(f"{self.name}: no 200 from http://{HOST}:{self.port}/healthcheck")

    def workers(self) -> list[int]:
        return listening_pids(self.port)

    def pids(self) -> list[int]:
        return [*listening_pids(self.port), *marked(self.markers)]

    def stop(self) -> None:
        pass


class Stack(External):
    """The local production stack (bin/keeper-stack from ROOT): PostgreSQL, Redis, 4 workers, Celery."""

    def __init__(self, args) -> None:
        self.dir = args.stack_dir.resolve()
        self.script = ROOT / "bin" / "keeper-stack"
        self.log = TMP / "keeper-bench-peer-stack.log"
        self.env = clean_env(
            KEEPER_STACK_DIR=str(self.dir),
            KEEPER_STACK_PG_PORT=str(args.stack_pg_port),
            KEEPER_STACK_REDIS_PORT=str(args.stack_redis_port),
            KEEPER_STACK_WEB_PORT=str(args.stack_web_port or free_port()),
            KEEPER_STACK_START_TIMEOUT="900",
            KEEPER_CATALOG_SOURCE=str(args.stack_source.resolve()),
            KEEPER_CATALOG_RESPONSE_CACHE_SECONDS="0",
            RATE_LIMIT_ENABLED="false",  # as the peer runs (its limits are off unless asked)
            WEB_CONCURRENCY="4",
        )
        self.started = False
        name = f"Keeper stack, cache off ({args.stack_source.name})"
        super().__init__(name, f"http://{HOST}:{self.env['KEEPER_STACK_WEB_PORT']}")
        redis = f"redis-server {HOST}:{args.stack_redis_port}"
        self.markers = ["postgres: postgres keeper ", redis, str(self.dir)]

    def start(self) -> None:
        if not self.script.exists():
            raise SystemExit(f"missing: {self.script}")
        with self.log.open("ab") as out:
            done = subprocess.run(
                [str(self.script), "start"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.started = True  # a failed start stops what it started; stop() again is harmless
        if done.returncode:
            raise SystemExit(f"bin/keeper-stack start failed ({done.returncode}); see {self.log}")
        # A stack still running from before keeps its port: read it from its state.
        config = orjson_load(self.dir / "stack.json")
        self.port = int(config["web_port"])

    def stop(self) -> None:
        if not self.started:
            return
        with self.log.open("ab") as out:
            subprocess.run([str(self.script), "stop"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.started = False


def orjson_load(path: Path) -> dict:
    import orjson

    return orjson.loads(path.read_bytes())


# --- HTTP measurements ----------------------------------------------------------


@dataclass
class Run:
    status: int = 0
    size: int = 0
    items: int | None = None
    rps: float | None = None  # 2xx answers per second (the peer sheds load with 503s)
    p50: float | None = None
    p99: float | None = None
    requests: int = 0
    errors: int = 0  # non-2xx answers, socket errors and timeouts
    duration: float = 0.0
    cpu_per_request: float | None = None  # server CPU seconds per 2xx answer (shed 503s cost little)
    others: float = 0.0
    skipped: str = ""


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * UNITS[match.group(2)]


def run_wrk(
    wrk: str, port: int, path: str, connections: int, duration: float, run: Run | None = None, *, quiet: bool = False
) -> Run:
    run = run or Run()
    duration = max(1, math.ceil(duration))  # wrk takes whole seconds
    command = [
        wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "60s", "--latency", f"http://{HOST}:{port}{path}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120).stdout
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    run.requests = int(found.group(1)) if found else 0
    elapsed = float(found.group(2)) * UNITS[found.group(3)] if found else 0.0
    for label, attr in (("50%", "p50"), ("99%", "p99")):
        found = re.search(rf"^\s+{label}\s+(\S+)", output, re.M)
        setattr(run, attr, wrk_seconds(found.group(1)) if found else None)
    for pattern in (
        r"Non-2xx or 3xx responses:\s+(\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    ):
        found = re.search(pattern, output)
        if found:
            run.errors += sum(int(g) for g in found.groups())
    if not run.requests and not quiet:
        print(f"    wrk said: {output.strip() or '(nothing)'}", flush=True)
    run.rps = max(run.requests - run.errors, 0) / elapsed if elapsed else None
    run.duration = duration
    return run


def measure(server, path: str, wrk: str, args) -> Run:
    """Warm up, then wrk at --connections; the attempt with the least noise of --attempts."""
    latencies = []
    deadline = time.perf_counter() + 6
    for _ in range(3):
        status, size, seconds = fetch(server.port, path)
        latencies.append(seconds)
        if time.perf_counter() > deadline:
            break
    slow = median(latencies)
    if slow < 0.25:
        # Both workers see it (and cache it); on a loaded machine a warm-up may see no answer: fine.
        run_wrk(wrk, server.port, path, args.connections, args.warmup, quiet=True)
    wait_idle(server.pids())
    duration = min(args.max_duration, max(args.duration, 20 * slow))
    best = None
    for _ in range(max(args.attempts, 1)):
        wait_for_quiet(args.wait_quiet, markers=server.markers)
        meter = CpuMeter(server.markers)
        pids = server.pids()
        cpu = {pid: process_cpu(pid) for pid in pids}
        run = run_wrk(wrk, server.port, path, args.connections, duration, Run(status=status, size=size))
        run.others = meter.others()
        answered = run.requests - run.errors
        if answered > 0:
            run.cpu_per_request = sum(process_cpu(pid) - cpu[pid] for pid in pids if process_cpu(pid)) / answered
        wait_idle(server.pids())
        if best is None or run.others < best.others:
            best = run
        if best.others < args.quiet or duration > 10:  # a long run is not repeated
            break
    return best


@dataclass
class Row:
    path: str
    target: float
    peer: bool = True  # the peer serves this route
    runs: dict[str, Run] = field(default_factory=dict)

    def ratio(self, name: str) -> float | None:
        peer, keeper = self.runs.get("peer"), self.runs.get(name)
        if not peer or not keeper or peer.status != 200 or keeper.status != 200 or not peer.rps or not keeper.rps:
            return None
        return keeper.rps / peer.rps

    def comparable(self, name: str = "off") -> bool:
        """False when one answer is an empty list and the other is not: a speed-up of nothing."""
        peer, keeper = self.runs.get("peer"), self.runs.get(name)
        counts = [r.items for r in (peer, keeper) if r is not None]
        return not (len(counts) == 2 and None not in counts and (counts[0] == 0) != (counts[1] == 0))

    def cpu_ratio(self, name: str) -> float | None:
        """Peer CPU per answer / Keeper CPU per answer: what the ratio would be with the cores to spare,
        the figure least disturbed by other load on a shared machine (it leaves out wrk and the kernel)."""
        peer, keeper = self.runs.get("peer"), self.runs.get(name)
        if not peer or not keeper or not peer.cpu_per_request or not keeper.cpu_per_request:
            return None
        return peer.cpu_per_request / keeper.cpu_per_request

    def judged(self, name: str, minimum: float) -> str:
        if not self.peer:
            return "- (peer lacks the route)"
        value = self.ratio(name)
        cpu = self.cpu_ratio(name)
        extra = f" (CPU {cpu:,.1f}×)" if cpu is not None else ""
        if value is not None and not self.comparable(name):
            return f"{value:,.1f}× (not judged: an answer is empty){extra}"
        return verdict(value, minimum) + (extra if value is not None else "")


def verdict(value: float | None, minimum: float) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}× {'PASS' if value >= minimum else 'FAIL'}"


def sort_key(row: "Row", name: str) -> float:
    """Worst first: the ratio over its target; rows without a ratio last."""
    value = row.ratio(name)
    return value / row.target if value is not None and row.peer else math.inf


def answer_size(run: Run) -> str:
    return f"{run.size:,}" + (f" ({run.items})" if run.items is not None else "")


def describe(run: Run | None) -> str:
    if run is None:
        return "-"
    if run.skipped:
        return run.skipped
    text = f"{rate(run.rps)} req/s · {ms(run.p50)} / {ms(run.p99)} ms"
    if run.errors:
        text += f" · {run.errors} of {run.requests} failed"
    if run.cpu_per_request:
        text += f" · CPU {ms(run.cpu_per_request)} ms"
    return text


# --- in process -----------------------------------------------------------------


@dataclass
class InProcess:
    search_uncached: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    statements: int = 0
    size: int = 0
    bare_size: int = 0
    cached: list[float] = field(default_factory=list)
    not_found: list[float] = field(default_factory=list)
    not_found_status: int = 0
    healthcheck: list[float] = field(default_factory=list)
    others: float = 0.0


def timed(call, budget: float, max_calls: int) -> list[float]:
    times = []
    deadline = time.perf_counter() + budget
    for _ in range(max_calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break
    return times


def in_process(db: Path, source: Path, args) -> InProcess:
    """Django's WSGIHandler in this process, set up like a gunicorn worker (warmed, heap frozen)."""
    for name in [name for name in os.environ if name.startswith(SCRUBBED)]:
        del os.environ[name]
    os.environ.update(keeper_env(db, source))
    os.chdir(ROOT)  # celery's Django fixup puts the working folder first on sys.path
    setup_django(f"sqlite:///{db}", ROOT)
    import orjson
    from django.core.cache import caches
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX
    from django.test import RequestFactory
    from django.test.utils import override_settings
    from django.urls import get_resolver

    from apps.catalog.pricing import exchange_rate

    get_resolver().url_patterns  # noqa: B018 - as keeper/gunicorn.conf.py's post_worker_init
    exchange_rate("EUR", "USD")
    handler, factory = WSGIHandler(), RequestFactory()
    statuses: list[str] = []

    def start_response(line: str, headers, exc_info=None) -> None:
        statuses.append(line)

    def get(path: str) -> bytes:
        response = handler(factory.get(path).environ, start_response)
        try:
            return b"".join(response)
        finally:
            response.close()  # request_finished, as a server would fire it

    # Django logs every 404 as a warning; on stderr here that would be timed too (and flood the output).
    logging.getLogger("django.request").setLevel(logging.ERROR)
    result = InProcess()
    for path in (SEARCH, UNKNOWN, "/healthcheck"):
        get(path)
    gc.collect()
    gc.freeze()
    wait_for_quiet(args.wait_quiet)
    meter = CpuMeter()
    with override_settings(KEEPER_CATALOG_RESPONSE_CACHE_SECONDS=0):
        get(SEARCH)
        capture = Capture()
        with connection.execute_wrapper(capture):
            body = get(SEARCH)  # right after another one: the catalog version is known, only the search's SQL
        result.size, result.statements = len(body), len(capture.statements)
        result.search_uncached = timed(lambda: get(SEARCH), args.budget, args.calls)

    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    statements = [
        (FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%"), params)
        for sql, params, many in capture.statements
        if not many
    ]

    def bare() -> bytes:
        cursor = conn.cursor()
        answers = []
        for sql, params in statements:
            cursor.execute(sql, params)
            if cursor.description is not None:
                names = [column[0] for column in cursor.description]
                answers.append([dict(zip(names, row)) for row in cursor.fetchall()])
        cursor.close()
        return orjson.dumps(answers[0] if len(answers) == 1 else answers, default=str)

    result.bare_size = len(bare())
    result.bare = timed(bare, args.budget, args.calls)
    conn.close()

    with override_settings(KEEPER_CATALOG_RESPONSE_CACHE_SECONDS=3600):
        caches["catalog"].clear()
        get(SEARCH)  # the first one renders and stores; the ones timed are answered from the cache
        result.cached = timed(lambda: get(SEARCH), args.budget, args.calls)
    statuses.clear()
    get(UNKNOWN)
    result.not_found_status = int(statuses[-1].split()[0])
    result.not_found = timed(lambda: get(UNKNOWN), args.budget, args.calls)
    result.healthcheck = timed(lambda: get("/healthcheck"), args.budget, args.calls)
    result.others = meter.others()
    connection.close()
    return result


# --- main -----------------------------------------------------------------------


def git(*command: str) -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read only: no index refresh
    done = subprocess.run(["git", *command], cwd=PROJECT, capture_output=True, text=True, env=env)
    return done.stdout.strip() if done.returncode == 0 else "?"


def main() -> None:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-port", type=int, default=8770, help="port of the peer (default %(default)s)")
    parser.add_argument("--db", type=Path, default=TMP / "keeper-bench-peer.sqlite3", help="default: %(default)s")
    parser.add_argument(
        "--large-db", type=Path, default=TMP / "keeper-bench-peer-large.sqlite3", help="default: %(default)s"
    )
    parser.add_argument("--no-large", action="store_true", help="skip Keeper on the large catalog")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process measurements")
    parser.add_argument("--only", action="append", help="measure only this path (repeatable; adds to --set)")
    parser.add_argument("--set", action="append", choices=[*SETS, "other"], help="measure this set (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the requests by set and exit")
    parser.add_argument("--sort", choices=["order", "ratio"], default="order", help="table order (ratio: worst first)")
    parser.add_argument("--commit", help="measure a clean export of this commit (e.g. HEAD) instead of the work tree")
    parser.add_argument("--keeper-url", help="measure the Keeper running there (http://127.0.0.1:PORT) instead")
    parser.add_argument(
        "--keeper-marker", action="append", default=[],
        help="with --keeper-url: command lines with this are its processes too (e.g. 'postgres: postgres keeper ')",
    )  # fmt: skip
    parser.add_argument("--stack", action="store_true", help="measure the local stack (bin/keeper-stack) instead")
    parser.add_argument("--stack-dir", type=Path, default=TMP / "keeper-bench-stack", help="default: %(default)s")
    parser.add_argument("--stack-pg-port", type=int, default=5447, help="default: %(default)s")
    parser.add_argument("--stack-redis-port", type=int, default=6396, help="default: %(default)s")
    parser.add_argument("--stack-web-port", type=int, default=0, help="default: a free port at the first start")
    parser.add_argument("--stack-source", type=Path, default=LARGE, help="the stack's catalog (default: large)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of wrk per run (default 4)")
    parser.add_argument("--max-duration", type=float, default=30.0, help="longest run for slow requests (default 30)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk warm-up (default 1)")
    parser.add_argument(
        "--wait-quiet", type=float, default=3.0, help="wait up to this long for an idle machine (default 3)"
    )
    parser.add_argument(
        "--quiet", type=float, default=0.3, help="others above this many cores: measure again (default 0.3)"
    )
    parser.add_argument("--attempts", type=int, default=2, help="runs at most, when noisy (default 2)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per in-process timing (default 3)")
    parser.add_argument("--calls", type=int, default=3000, help="calls at most per in-process timing (default 3000)")
    args = parser.parse_args()
    chosen = select_requests([s for s in args.set or [] if s != "other"] or None, args.only)
    if args.set and "other" not in args.set:
        chosen = [r for r in chosen if r.path != HEALTHCHECK.path or r.path in (args.only or [])]
    elif not args.only or (args.set and "other" in args.set):
        chosen.append(HEALTHCHECK)
    if args.list:
        for r in chosen:
            print(f"{r.set:12} {'' if r.peer else '(Keeper only) '}≥ {r.target:g}×  {r.path}")
        return
    external = args.stack or args.keeper_url
    if args.stack and args.keeper_url:
        parser.error("--stack or --keeper-url, not both")
    if external:
        args.no_large, args.no_inprocess = True, True
    for path in (
        PEER_START,
        SAMPLE,
        *(() if args.no_large else (LARGE,)),
        *((args.stack_source,) if args.stack else ()),
    ):
        if not path.exists():
            parser.error(f"missing: {path}")
    wrk = ensure_wrk(install=False)
    if wrk is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    rows = [Row(r.path, r.target, r.peer) for r in chosen]
    db, large_db = args.db.resolve(), args.large_db.resolve()

    run_started = time.perf_counter()
    if args.commit:
        ROOT, commit = export_tree(args.commit)
        code = f"commit {commit} (a clean export in {ROOT})"
    else:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = len([line for line in git("status", "--porcelain").splitlines() if line.strip()])
        code = f"commit {commit} (+{dirty} changed files in the work tree)"
    print(f"Keeper vs the Spare Cores API, {now()}, {code}")
    print(f"{machine()}; load average before: {load_average()}", flush=True)

    peer = Peer(args.peer_port)
    keepers: list = []
    try:
        print(peer.begin(), flush=True)
        if not external:
            print(prepare_catalog(db, SAMPLE), flush=True)
        if not args.no_large:
            print(prepare_catalog(large_db, LARGE), flush=True)
        text = peer.wait_ready()
        if text:
            print(text, flush=True)
        if args.stack:
            stack = Stack(args)
            keepers.append(stack)
            print(f"{stack.name}: bin/keeper-stack start (log {stack.log}) ...", flush=True)
            stack.start()
            stack.wait_ready()
            servers = {"peer": peer, "stack": stack}
        elif args.keeper_url:
            given = External(f"Keeper at {args.keeper_url}", args.keeper_url, args.keeper_marker)
            given.wait_ready()
            servers = {"peer": peer, "url": given}
        else:
            off = Keeper("Keeper, cache off", db, SAMPLE, cache=False)
            on = Keeper("Keeper, cache on", db, SAMPLE, cache=True)
            keepers += [off, on]
            for keeper in keepers:
                keeper.start()
            servers = {"peer": peer, "off": off, "on": on}
        mine = [name for name in servers if name != "peer"]
        judged_by = mine[0]  # the cache-off Keeper (the peer has no response cache), or the one given
        for name in mine:
            keeper = servers[name]
            keeper.wait_ready()
            print(f"{keeper.name}: on {HOST}:{keeper.port}, workers {keeper.workers()}")

        print(f"\nstatus bytes (list rows), {' / '.join(servers)}:", flush=True)
        for row in rows:
            answers = {
                name: fetch_body(server.port, row.path) if row.peer or name != "peer" else (0, b"", 0.0)
                for name, server in servers.items()
            }
            for name, (status, body, _) in answers.items():
                row.runs[name] = Run(status=status, size=len(body), items=items(body))
                if name == "peer" and not row.peer:
                    row.runs[name].skipped = "no such route"
                elif status != 200:
                    row.runs[name].skipped = f"status {status}"
            note = "" if row.comparable(judged_by) else "   <- one answer is an empty list, the other is not"
            shapes = " / ".join(
                "-" if row.runs[n].skipped == "no such route" else f"{a[0]} {answer_size(row.runs[n])}"
                for n, a in answers.items()
            )
            print(f"  {shapes}  {row.path}{note}", flush=True)

        print(f"\nwrk -t2 -c{args.connections}, {args.duration:g} s per run (longer for slow requests):", flush=True)
        for row in rows:
            for name, server in servers.items():
                if row.runs[name].status != 200:
                    continue
                run = measure(server, row.path, wrk, args)
                run.size, run.items = row.runs[name].size, row.runs[name].items
                row.runs[name] = run
                print(
                    f"  {name:>5} {row.path}: {describe(run)} ({run.requests} in {run.duration:g} s, "
                    f"others {run.others:.2f})",
                    flush=True,
                )
        for keeper in keepers:
            keeper.stop()
        keepers.clear()

        inproc = None
        if not args.no_inprocess:
            print("\nin process ...", flush=True)
            inproc = in_process(db, SAMPLE, args)

        large_runs: dict[str, Run] = {}
        if not args.no_large:
            big = Keeper("Keeper, cache off, large catalog", large_db, LARGE, cache=False)
            keepers.append(big)
            big.start()
            big.wait_ready()
            print(f"\n{big.name}: gunicorn on {HOST}:{big.port}", flush=True)
            for path in LARGE_REQUESTS:
                status, size, _ = fetch(big.port, path)
                run = measure(big, path, wrk, args) if status == 200 else Run(status=status, skipped=f"status {status}")
                large_runs[path] = run
                print(f"  large {path}: {describe(run)} (others {run.others:.2f})", flush=True)
            big.stop()
            keepers.clear()
    finally:
        for keeper in keepers:
            keeper.stop()
        peer.stop()

    # --- the table
    names = {"off": "Keeper, cache off", "on": "Keeper, cache on", "url": "Keeper", "stack": "Keeper stack"}
    headers = ["measurement", "bytes peer / Keeper", "peer", *(names[n] for n in mine),
               *(f"{'off' if n == 'off' else 'on' if n == 'on' else 'Keeper'} / peer" for n in mine),
               "target", "others"]  # fmt: skip
    lines = []
    ordered = sorted(rows, key=lambda r: sort_key(r, judged_by)) if args.sort == "ratio" else rows
    for row in ordered:
        runs = [row.runs.get(n) for n in servers]
        lines.append([
            f"`{row.path}`" + ("" if row.peer else " (Keeper only)"),
            f"{answer_size(runs[0]) if row.peer else '-'} / {answer_size(runs[1])}",
            *(describe(r) for r in runs),
            *(row.judged(n, row.target) for n in mine),
            f"≥ {row.target:g}×" if row.peer else "-",
            " / ".join(f"{r.others:.2f}" if r and not r.skipped else "-" for r in runs),
        ])  # fmt: skip
    plain, filtered = (next((r for r in rows if r.path == p), None) for p in (PRICES, PRICES_FILTERED))
    if plain and filtered:
        within = []
        for name in mine:
            a, b = plain.runs.get(name), filtered.runs.get(name)
            if a and b and a.rps and b.rps:
                factor = a.rps / b.rps
                within.append(f"{factor:.2f}× {'PASS' if factor <= FILTERED_PRICES_WITHIN else 'FAIL'}")
            else:
                within.append("-")
        lines.append([
            f"Keeper: `{PRICES}` req/s / filtered `{PRICES_FILTERED}` req/s", "-", "-",
            *(describe(filtered.runs.get(n)) for n in mine), *within,
            f"≤ {FILTERED_PRICES_WITHIN:g}×", "-",
        ])  # fmt: skip
    if inproc:
        p50 = {k: median(getattr(inproc, k)) for k in ("search_uncached", "bare", "cached", "not_found", "healthcheck")}
        ratio = p50["search_uncached"] / p50["bare"]
        lines.append([
            f"in process: uncached `{SEARCH}` vs its SQL ({inproc.statements} stmt) + orjson",
            f"- / {inproc.size:,}",
            f"SQL + orjson: {ms(p50['bare'])} ms p50 ({inproc.bare_size:,} B)",
            f"{ms(p50['search_uncached'])} / {ms(percentile(inproc.search_uncached, 0.99))} ms",
            "-",
            f"{ratio:.2f}× {'PASS' if ratio <= INPROC_SQL_TARGET else 'FAIL'}", "-",
            f"≤ {INPROC_SQL_TARGET:g}×", f"{inproc.others:.2f}",
        ])  # fmt: skip
        ratio = p50["cached"] / p50["not_found"]
        lines.append([
            f"in process: cached `{SEARCH}` vs Django's {inproc.not_found_status} for `{UNKNOWN}`",
            f"- / {inproc.size:,}",
            f"404: {ms(p50['not_found'])} ms p50",
            "-",
            f"{ms(p50['cached'])} / {ms(percentile(inproc.cached, 0.99))} ms",
            "-", f"{ratio:.2f}× {'PASS' if ratio <= INPROC_404_TARGET else 'FAIL'}",
            f"≤ {INPROC_404_TARGET:g}×", f"{inproc.others:.2f}",
        ])  # fmt: skip
    health = next((r for r in rows if r.path == "/healthcheck"), None)
    if (health or inproc) and not external:
        http_rps = [health.runs[n].rps for n in ("off", "on") if health and health.runs[n].rps] if health else []
        best = max(http_rps) if http_rps else None
        in_rps = 1 / (sum(inproc.healthcheck) / len(inproc.healthcheck)) if inproc else None
        lines.append([
            "`/healthcheck` req/s: in process (1 / mean) and over HTTP (best of off, on; 2 workers, 8 clients)",
            "-",
            f"peer HTTP: {rate(health.runs['peer'].rps) if health else '-'} req/s",
            f"in process: {rate(in_rps)} req/s",
            f"HTTP: {rate(best)} req/s",
            "-",
            "-" if best is None else f"{best:,.0f} req/s {'PASS' if best >= HEALTHCHECK_TARGET else 'FAIL'}",
            f"≥ {HEALTHCHECK_TARGET:,} req/s HTTP",
            f"{inproc.others:.2f}" if inproc else "-",
        ])  # fmt: skip
    sample_runs = {r.path: r.runs.get("off") for r in rows}
    for path, run in large_runs.items():
        sample = sample_runs.get(path)
        change = f"{run.rps / sample.rps:.2f}× of sample" if run.rps and sample and sample.rps else "-"
        lines.append([
            f"large catalog, cache off: `{path}`", f"- / {run.size:,}",
            "-", describe(run), "-", change, "-", "-", f"{run.others:.2f}",
        ])  # fmt: skip
    noise = [r.others for row in rows for r in row.runs.values() if r.requests]
    noise += [r.others for r in large_runs.values() if r.requests] + ([inproc.others] if inproc else [])
    noisy = sum(1 for n in noise if n > args.quiet)
    judged = [row.ratio(judged_by) for row in rows if row.peer and row.path != HEALTHCHECK.path]
    passed = sum(1 for row in rows if row.peer and (row.ratio(judged_by) or 0) >= row.target)
    setup = {
        "stack": f"Keeper: bin/keeper-stack (4 workers, PostgreSQL, Redis, {args.stack_source.name}, cache off)",
        "url": f"Keeper: {args.keeper_url}",
    }.get(judged_by, "Keeper: 2 workers, sample catalog on SQLite")
    print(f"\nKeeper vs the Spare Cores API (sc-keeper 0.3.6), {now()}, {code}")
    print(
        f"{machine()}; wrk -t2 -c{args.connections}; the peer: 2 workers, sample catalog; {setup}; "
        f"load average {load_average()}; "
        f"others (cores used by other processes): mean {sum(noise) / max(len(noise), 1):.2f} per run, "
        f"max {max(noise, default=0):.2f}, {noisy} of {len(noise)} runs over {args.quiet:g}; "
        f"whole run {time.perf_counter() - run_started:.0f} s; "
        f"targets met: {passed} of {len([j for j in judged if j is not None]) + (1 if health else 0)} rows with a ratio"
    )
    print(table(headers, lines, aligns="l" + "r" * (len(headers) - 1)))
    print(
        "req/s · p50 / p99 ms from wrk · server CPU per 2xx answer; ratio = Keeper req/s / peer req/s, judged "
        "against the target (CPU: peer CPU per answer / Keeper CPU per answer, the figure other load disturbs least); "
        f"others: cores used by other processes during the {' / '.join(servers)} runs"
    )


if __name__ == "__main__":
    main()
