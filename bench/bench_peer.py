"""Keeper side by side with the Spare Cores API (sc-keeper, "the peer"), over HTTP and in process.

    .venv/bin/python bench/bench_peer.py              # everything: 10-15 minutes
    .venv/bin/python bench/bench_peer.py --no-large   # without the large catalog (saves its load and run)
    .venv/bin/python bench/bench_peer.py --only '/servers?countries=DE' --no-inprocess --no-large

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
import hashlib  # noqa: E402
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    LARGE,
    PROJECT,
    SAMPLE,
    CpuMeter,
    children_of,
    load_average,
    machine,
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
SEARCH = "/servers?vcpus_min=2&memory_min=8&limit=5"
UNKNOWN = "/no-such-path/for-the-404"
# (path, target ratio Keeper/peer of req/s with the cache off)
REQUESTS = [
    # the /servers searches of bench_api.py
    (SEARCH, 8),
    ("/servers?vendor=aws&architecture=ARM64&limit=25", 8),
    # the same as the peer spells the architecture (it answers 422 to ARM64)
    ("/servers?vendor=aws&architecture=arm64&limit=25", 8),
    ("/servers?order_by=score_per_price&order_dir=desc&limit=10", 8),
    ("/servers?partial_name_or_id=large&limit=25&add_total_count_header=true", 8),
    ("/servers?gpu_min=1&limit=-1", 8),
    ("/servers?countries=DE", 8),
    ("/servers?regions=us-east-1&vcpus_min=2", 8),
    ("/server_prices?limit=25", 30),
    ("/server_prices?limit=25&vcpus_min=4&countries=DE", 30),
    ("/server/aws/m5.large/prices", 30),
    ("/server/aws/m5.large/similar_servers/family/10", 5),
    ("/storage_prices", 5),
    ("/traffic_prices", 5),
    ("/benchmark_score_stats", 50),
    ("/healthcheck", 5),
]
LARGE_REQUESTS = ["/servers?countries=DE", "/server_prices?limit=25"]
FLOOR = 5  # no ratio below this, cache off
HEALTHCHECK_TARGET = 1000  # req/s over HTTP, 2 workers
INPROC_SQL_TARGET = 4.0  # uncached in-process time / bare SQL + orjson, at most
INPROC_404_TARGET = 1.5  # cached answer / Django's 404, at most
# Environment that would change what is measured (Redis, rate limits, another database, ...).
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        done = subprocess.run([python, "manage.py", *args], cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
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
            command, cwd=PROJECT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
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
    cpu_per_request: float | None = None
    others: float = 0.0
    skipped: str = ""


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * UNITS[match.group(2)]


def run_wrk(wrk: str, port: int, path: str, connections: int, duration: float, run: Run | None = None) -> Run:
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
    if not run.requests:
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
        run_wrk(wrk, server.port, path, args.connections, args.warmup)  # both workers see it (and cache it)
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
        if run.requests:
            run.cpu_per_request = sum(process_cpu(pid) - cpu[pid] for pid in pids if process_cpu(pid)) / run.requests
        wait_idle(server.pids())
        if best is None or run.others < best.others:
            best = run
        if best.others < args.quiet or duration > 10:  # a long run is not repeated
            break
    return best


@dataclass
class Row:
    path: str
    target: int
    runs: dict[str, Run] = field(default_factory=dict)

    def ratio(self, name: str) -> float | None:
        peer, keeper = self.runs.get("peer"), self.runs.get(name)
        if not peer or not keeper or peer.status != 200 or keeper.status != 200 or not peer.rps or not keeper.rps:
            return None
        return keeper.rps / peer.rps

    def comparable(self) -> bool:
        """False when one answer is an empty list and the other is not: a speed-up of nothing."""
        peer, keeper = self.runs.get("peer"), self.runs.get("off")
        counts = [r.items for r in (peer, keeper) if r is not None]
        return not (len(counts) == 2 and None not in counts and (counts[0] == 0) != (counts[1] == 0))

    def judged(self, name: str, minimum: float) -> str:
        value = self.ratio(name)
        if value is not None and not self.comparable():
            return f"{value:,.1f}× (not judged: an answer is empty)"
        return verdict(value, minimum)


def verdict(value: float | None, minimum: float) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}× {'PASS' if value >= minimum else 'FAIL'}"


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
    setup_django(f"sqlite:///{db}")
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-port", type=int, default=8770, help="port of the peer (default %(default)s)")
    parser.add_argument("--db", type=Path, default=TMP / "keeper-bench-peer.sqlite3", help="default: %(default)s")
    parser.add_argument(
        "--large-db", type=Path, default=TMP / "keeper-bench-peer-large.sqlite3", help="default: %(default)s"
    )
    parser.add_argument("--no-large", action="store_true", help="skip Keeper on the large catalog")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process measurements")
    parser.add_argument("--only", action="append", help="measure only this path (repeatable)")
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
    for path in (PEER_START, SAMPLE, *(() if args.no_large else (LARGE,))):
        if not path.exists():
            parser.error(f"missing: {path}")
    wrk = ensure_wrk(install=False)
    if wrk is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    rows = [Row(p, t) for p, t in REQUESTS if not args.only or p in args.only]
    rows += [Row(p, FLOOR) for p in (args.only or []) if p not in [r.path for r in rows]]
    db, large_db = args.db.resolve(), args.large_db.resolve()

    run_started = time.perf_counter()
    commit = git("rev-parse", "--short", "HEAD")
    dirty = len([line for line in git("status", "--porcelain").splitlines() if line.strip()])
    print(f"Keeper vs the Spare Cores API, {now()}, commit {commit} (+{dirty} changed files in the work tree)")
    print(f"{machine()}; load average before: {load_average()}", flush=True)

    peer = Peer(args.peer_port)
    keepers: list[Keeper] = []
    try:
        print(peer.begin(), flush=True)
        print(prepare_catalog(db, SAMPLE), flush=True)
        if not args.no_large:
            print(prepare_catalog(large_db, LARGE), flush=True)
        text = peer.wait_ready()
        if text:
            print(text, flush=True)
        off = Keeper("Keeper, cache off", db, SAMPLE, cache=False)
        on = Keeper("Keeper, cache on", db, SAMPLE, cache=True)
        keepers += [off, on]
        for keeper in keepers:
            keeper.start()
        for keeper in keepers:
            keeper.wait_ready()
            print(f"{keeper.name}: gunicorn on {HOST}:{keeper.port}, workers {keeper.workers()} (log {keeper.log})")
        servers = {"peer": peer, "off": off, "on": on}

        print("\nstatus bytes (list rows), peer / Keeper off / Keeper on:", flush=True)
        for row in rows:
            answers = {name: fetch_body(server.port, row.path) for name, server in servers.items()}
            for name, (status, body, _) in answers.items():
                row.runs[name] = Run(status=status, size=len(body), items=items(body))
                if status != 200:
                    row.runs[name].skipped = f"status {status}"
            note = "" if row.comparable() else "   <- one answer is an empty list, the other is not"
            shapes = " / ".join(f"{a[0]} {answer_size(row.runs[n])}" for n, a in answers.items())
            print(f"  {shapes}  {row.path}{note}", flush=True)

        print(f"\nwrk -t2 -c{args.connections}, {args.duration:g} s per run (longer for slow requests):", flush=True)
        for row in rows:
            for name, server in servers.items():
                if row.runs[name].status != 200:
                    continue
                run = measure(server, row.path, wrk, args)
                run.size, run.items = row.runs[name].size, row.runs[name].items
                row.runs[name] = run
                cpu = f", server CPU {ms(run.cpu_per_request)} ms/req" if run.cpu_per_request else ""
                print(
                    f"  {name:>4} {row.path}: {describe(run)} ({run.requests} in {run.duration:g} s{cpu}, "
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
    headers = ["measurement", "bytes peer / Keeper", "peer", "Keeper, cache off", "Keeper, cache on",
               "off / peer", "on / peer", "target", "others"]  # fmt: skip
    lines = []
    for row in rows:
        target = max(row.target, FLOOR)
        peer_run, off_run, on_run = (row.runs.get(n) for n in ("peer", "off", "on"))
        lines.append([
            f"`{row.path}`",
            f"{answer_size(peer_run)} / {answer_size(off_run)}",
            describe(peer_run), describe(off_run), describe(on_run),
            row.judged("off", target), row.judged("on", target),
            f"≥ {target}×",
            " / ".join(f"{r.others:.2f}" if not r.skipped else "-" for r in (peer_run, off_run, on_run)),
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
    if health or inproc:
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
    print(f"\nKeeper vs the Spare Cores API (sc-keeper 0.3.6), {now()}, commit {commit} (+{dirty} changed files)")
    print(
        f"{machine()}; wrk -t2 -c{args.connections}; both servers 2 workers on this machine, with wrk; "
        f"sample catalog on SQLite; load average {load_average()}; "
        f"others (cores used by other processes): mean {sum(noise) / max(len(noise), 1):.2f} per run, "
        f"max {max(noise, default=0):.2f}, {noisy} of {len(noise)} runs over {args.quiet:g}; "
        f"whole run {time.perf_counter() - run_started:.0f} s"
    )
    print(table(headers, lines, aligns="l" + "r" * 8))
    print(
        "req/s · p50 / p99 ms from wrk; ratio = Keeper req/s / peer req/s, judged against the target; "
        "others: cores used by other processes during the peer / off / on runs"
    )


if __name__ == "__main__":
    main()
