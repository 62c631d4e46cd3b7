"""Benchmark of the read API under gunicorn: throughput, latency, and the SQL share of it.

    .venv/bin/python bench/bench_api.py                   # SQLite file in $TMPDIR, loaded if empty
    .venv/bin/python bench/bench_api.py --database-url postgres://postgres@127.0.0.1:5432/keeper_bench_api

For each search it reports
  - req/s: throughput at --connections concurrent keep-alive clients for --duration
    seconds, with wrk (installed with apt-get if missing and allowed) or a Python
    thread-pool client as fallback; gunicorn runs --workers sync workers;
  - server CPU: CPU time the gunicorn workers (and, on PostgreSQL, their database
    backends) spent per request during that load, the figure least disturbed by
    other processes on a shared machine;
  - HTTP p50/p99: latency of single sequential requests (one client, no overlap);
  - in-proc: the same request through Django's WSGIHandler in this process (no HTTP,
    no gunicorn): what the application itself costs, connection handling included;
  - SQL: the statements that request runs (captured with connection.execute_wrapper
    while calling the view, so exactly the view's SQL and parameters), re-executed
    and fetched on a raw DB-API cursor (sqlite3 / psycopg), on a kept connection;
    "SQL+conn" also opens a new connection the way Django does per request on SQLite
    (CONN_MAX_AGE=0 and the init_command pragmas);
  - HTTP/SQL: HTTP p50 / SQL p50;
  - others: cores used by processes outside the benchmark meanwhile. Before each
    phase the benchmark waits (--wait-quiet) for the machine to go idle, and
    measures a search again (--attempts) when others took over 0.25 cores.

The database named by --database-url is created (PostgreSQL), migrated and loaded
with --source only when it holds no catalog; it is kept for the next run.
Only 127.0.0.1 is ever contacted.
"""

import argparse
import copy
import http.client
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PROJECT,
    SAMPLE,
    CpuMeter,
    backend_marker,
    children_of,
    is_postgres,
    load_average,
    machine,
    marked,
    median,
    now,
    percentile,
    postgres_create,
    process_cpu,
    setup_django,
    table,
    wait_for_quiet,
)

SEARCHES = [
    "/servers?vcpus_min=2&memory_min=8&limit=5",
    "/servers?vendor=aws&architecture=ARM64&limit=25",
    "/servers?order_by=score_per_price&order_dir=desc&limit=10",
    "/servers?partial_name_or_id=large&limit=25&add_total_count_header=true",
    "/servers?gpu_min=1&limit=-1",
    "/server/aws/p3.8xlarge",
    "/regions",
]
HOST = "127.0.0.1"
# Cores other processes may use during a measurement before it is retried.
QUIET = 0.25


@dataclass
class HttpRun:
    """One attempt at the HTTP phases of a search."""

    latencies: list[float] = field(default_factory=list)
    rps: float | None = None
    requests: int = 0
    server_cpu: float | None = None
    errors: int = 0
    others: float = 0.0
    client: str = ""


@dataclass
class Result:
    path: str
    status: int = 0
    size: int = 0
    queries: int = 0
    inproc: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    sql_connect: list[float] = field(default_factory=list)
    local_others: float = 0.0
    run: HttpRun = field(default_factory=HttpRun)

    @property
    def others(self) -> float:
        return self.local_others


# --- database -------------------------------------------------------------------


def prepare_database(url: str, source: Path) -> None:
    """Migrate, and load `source` when the database has no catalog yet."""
    from django.core.management import call_command

    from apps.catalog.models import Server, SyncRun
    from apps.catalog.services import catalog_sync

    call_command("migrate", verbosity=0)
    if SyncRun.objects.last_loaded() is None or not Server.objects.exists():
        print(f"loading {source} into the empty database ...", flush=True)
        started = time.perf_counter()
        catalog_sync(source=str(source), force=True)
        print(f"loaded in {time.perf_counter() - started:.1f} s", flush=True)
    last = SyncRun.objects.last_loaded()
    print(f"catalog: {Server.objects.count():,} servers, from {last.source} (sync #{last.pk})")


class Capture:
    """An execute_wrapper recording every statement (SQL and parameters) the request runs."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple, bool]] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append((sql, tuple(params or ()), many))
        return execute(sql, params, many, context)


def measure_inprocess(result: Result, repeats: int, budget: float) -> list[tuple[str, tuple, bool]]:
    """Time the request through Django's WSGIHandler in this process; return the statements it ran.

    Not django.test.Client: it keeps the database connection open between requests,
    while a real request (CONN_MAX_AGE=0 on SQLite) connects and disconnects.
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import RequestFactory

    handler = WSGIHandler()
    factory = RequestFactory()
    status: list[str] = []

    def start_response(line: str, headers, exc_info=None) -> None:
        status.append(line)

    def request() -> bytes:
        response = handler(factory.get(result.path).environ, start_response)
        try:
            return b"".join(response)
        finally:
            response.close()  # fires request_finished, which closes the connection as a server would

    capture = Capture()
    with connection.execute_wrapper(capture):
        body = request()
    result.status = int(status[-1].split()[0])
    result.size = len(body)
    result.queries = len(capture.statements)
    result.inproc = []
    deadline = time.perf_counter() + budget
    for _ in range(repeats):
        started = time.perf_counter()
        request()
        result.inproc.append(time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break
    return capture.statements


def raw_connect(url: str):
    """A bare DB-API connection, opened like Django opens its own."""
    if is_postgres(url):
        import psycopg

        return psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    from django.conf import settings

    conn = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
    conn.executescript(settings.DATABASES["default"]["OPTIONS"].get("init_command", ""))
    return conn


def run_statements(conn, statements: list[tuple[str, tuple, bool]], postgres: bool) -> None:
    from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

    cursor = conn.cursor()
    for sql, params, many in statements:
        if not postgres:
            sql = FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
            if cursor.description is not None:
                cursor.fetchall()
    cursor.close()


def measure_sql(result: Result, statements, url: str, repeats: int, budget: float) -> None:
    postgres = is_postgres(url)
    result.sql, result.sql_connect = [], []
    conn = raw_connect(url)
    try:
        run_statements(conn, statements, postgres)  # warm the caches
        deadline = time.perf_counter() + budget
        for _ in range(repeats):
            started = time.perf_counter()
            run_statements(conn, statements, postgres)
            result.sql.append(time.perf_counter() - started)
            if time.perf_counter() > deadline:
                break
    finally:
        conn.close()
    deadline = time.perf_counter() + budget
    for _ in range(repeats):
        started = time.perf_counter()
        conn = raw_connect(url)
        run_statements(conn, statements, postgres)
        conn.close()
        result.sql_connect.append(time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break


# --- HTTP -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, int]:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    return response.status, len(body)


def start_gunicorn(url: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    gunicorn = str(PROJECT / ".venv" / "bin" / "gunicorn")
    # The project's gunicorn settings (warm-up and gc.freeze per worker); workers and bind from here.
    config = str(PROJECT / "keeper" / "gunicorn.conf.py")
    command = [gunicorn, "-c", config, "keeper.wsgi", "-w", str(workers), "-b", f"{HOST}:{port}"]
    # gunicorn >= 24 opens a control socket at one fixed path per user; keep off other servers' one.
    if "--no-control-socket" in subprocess.run([gunicorn, "--help"], capture_output=True, text=True).stdout:
        command.append("--no-control-socket")
    process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}; see {log}")
        pids = children_of(process.pid)
        if len(pids) >= workers and booted(pids):
            return process
        time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"gunicorn workers did not boot within 60 s; see {log}")


def booted(pids: list[int]) -> bool:
    """True once the workers have loaded the application and sit idle (no CPU used for 0.5 s)."""
    before = [process_cpu(pid) for pid in pids]
    time.sleep(0.5)
    return before == [process_cpu(pid) for pid in pids] and all(before)


def cold_requests(port: int, path: str, count: int) -> list[float]:
    """Latencies of the first requests to freshly booted workers (imports done on first use)."""
    latencies = []
    for _ in range(count):
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        started = time.perf_counter()
        get(conn, path)
        latencies.append(time.perf_counter() - started)
        conn.close()
    return latencies


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_sequential(run: HttpRun, path: str, port: int, repeats: int, budget: float) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    deadline = time.perf_counter() + budget
    for _ in range(repeats):
        started = time.perf_counter()
        status, _ = get(conn, path)
        run.latencies.append(time.perf_counter() - started)
        if status != 200:
            run.errors += 1
        if time.perf_counter() > deadline:
            break
    conn.close()


def ensure_wrk(install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("wrk not found; trying apt-get install -y wrk ...", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 300}
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)
    except (OSError, subprocess.SubprocessError):
        pass
    return shutil.which("wrk")


def throughput_wrk(wrk: str, run: HttpRun, path: str, port: int, connections: int, duration: float) -> None:
    threads = min(2, connections)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", f"http://{HOST}:{port}{path}"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    run.rps = float(match.group(1)) if match else None
    match = re.search(r"(\d+) requests in", output)
    run.requests = int(match.group(1)) if match else 0
    for pattern in (
        r"Non-2xx or 3xx responses:\s+(\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    ):
        found = re.search(pattern, output)
        if found:
            run.errors += sum(int(g) for g in found.groups())
    run.client = "wrk"


def throughput_python(run: HttpRun, path: str, port: int, connections: int, duration: float) -> None:
    """Fallback load generator: `connections` threads, each with its own keep-alive connection."""
    counts = [0] * connections
    errors = [0] * connections
    deadline = time.perf_counter() + duration

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.perf_counter() < deadline:
            try:
                status, _ = get(conn, path)
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                continue
            counts[index] += 1
            if status != 200:
                errors[index] += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.requests = sum(counts)
    run.rps = run.requests / (time.perf_counter() - started)
    run.errors += sum(errors)
    run.client = "python"


def measure_http(path: str, port: int, wrk: str | None, workers: list[int], markers: list[str], args) -> HttpRun:
    """Sequential latencies, then throughput under load; with the CPU the server spent per request."""
    run = HttpRun()
    meter = CpuMeter(markers)
    measure_sequential(run, path, port, args.requests, args.budget)
    run.others = meter.others()
    meter.start()
    workers = [*workers, *marked(markers)]  # with PostgreSQL, the workers' database backends too
    before = {pid: process_cpu(pid) for pid in workers}
    if wrk:
        throughput_wrk(wrk, run, path, port, args.connections, args.duration)
    else:
        throughput_python(run, path, port, args.connections, args.duration)
    if run.requests:
        # A backend that closed its connection meanwhile is left out, one opened since counted whole.
        after = {pid: process_cpu(pid) for pid in [*workers, *marked(markers)]}
        used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items() if cpu)
        run.server_cpu = used / run.requests
    run.others = max(run.others, meter.others())
    return run


def best_of(attempts: int, threshold: float, measure):
    """Run `measure` (returning an object with .others) until other processes stay under
    `threshold` cores, at most `attempts` times; the attempt with the least noise wins."""
    best = None
    for _ in range(max(attempts, 1)):
        result = measure()
        if best is None or result.others < best.others:
            best = result
        if best.others < threshold:
            break
    return best


# --- main -----------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}" if seconds < 0.1 else f"{seconds * 1000:.0f}"


def report(results: list[Result], connections: int) -> None:
    headers = [
        "search",
        "bytes",
        "SQL stmts",
        f"req/s @{connections}",
        "server CPU ms/req",
        "HTTP p50 ms",
        "HTTP p99 ms",
        "in-proc p50 ms",
        "SQL p50 ms",
        "SQL+conn p50 ms",
        "HTTP/SQL",
        "others",
    ]
    rows = []
    for r in results:
        sql = median(r.sql) if r.sql else None
        run = r.run
        http_p50 = median(run.latencies) if run.latencies else None
        rows.append(
            [
                f"`{r.path}`",
                f"{r.size:,}",
                r.queries,
                f"{run.rps:,.0f}" if run.rps is not None else "-",
                ms(run.server_cpu) if run.server_cpu is not None else "-",
                ms(http_p50) if http_p50 else "-",
                ms(percentile(run.latencies, 0.99)) if run.latencies else "-",
                ms(median(r.inproc)) if r.inproc else "-",
                ms(sql) if sql else "-",
                ms(median(r.sql_connect)) if r.sql_connect else "-",
                f"{http_p50 / sql:.1f}x" if sql and http_p50 else "-",
                f"{r.local_others:.2f} / {run.others:.2f}",
            ]
        )
    print(table(headers, rows))
    print(
        "server CPU: CPU time of the gunicorn workers (+ their PostgreSQL backends) per request under load; "
        "others: cores used by processes outside the benchmark during the in-process/SQL and the HTTP phases"
    )
    for r in results:
        if r.status != 200 or r.run.errors:
            print(f"WARNING: {r.path}: status {r.status}, {r.run.errors} failed requests", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_db = Path(tempfile.gettempdir()) / "keeper-bench-api.sqlite3"
    parser.add_argument("--database-url", default=f"sqlite:///{default_db}", help="default: %(default)s")
    parser.add_argument("--source", type=Path, default=SAMPLE, help="catalog to load into an empty database")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per search (default 5)")
    parser.add_argument("--requests", type=int, default=300, help="max sequential requests per search (default 300)")
    parser.add_argument("--budget", type=float, default=5.0, help="max seconds per sequential phase (default 5)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each search, wait up to this many seconds for other processes to go idle (default 60)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=3,
        help=f"measure a search up to this many times while other processes use over {QUIET} cores (default 3)",
    )
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto", help="load generator")
    parser.add_argument("--no-install", action="store_true", help="do not try apt-get install wrk")
    parser.add_argument("paths", nargs="*", help=f"paths to benchmark (default: {len(SEARCHES)} searches)")
    args = parser.parse_args()
    url = args.database_url
    host = urlparse(url).hostname
    if is_postgres(url) and host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("only a database on 127.0.0.1 is benchmarked")

    if is_postgres(url):
        postgres_create(url, if_missing=True)
    setup_django(url)
    from django.db import connection

    engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"Keeper API benchmark, {now()}, {machine()}")
    print(f"database: {engine} {url}")
    print(f"load average before: {load_average()}")
    prepare_database(url, args.source.resolve())

    wrk = None
    if args.client in ("auto", "wrk"):
        wrk = ensure_wrk(install=not args.no_install)
        if wrk is None and args.client == "wrk":
            parser.error("wrk is not installed")
    results = [Result(path) for path in (args.paths or SEARCHES)]

    markers = [backend_marker(url)]
    print("in-process and SQL timings ...", flush=True)
    for result in results:

        def local(result=result) -> Result:
            wait_for_quiet(args.wait_quiet, markers=markers)
            meter = CpuMeter(markers)
            statements = measure_inprocess(result, args.requests, args.budget)
            measure_sql(result, statements, url, args.requests, args.budget)
            result.local_others = meter.others()
            return copy.copy(result)

        best = best_of(args.attempts, QUIET, local)
        result.__dict__.update(best.__dict__)
    connection.close()

    port = free_port()
    log = Path(tempfile.gettempdir()) / f"keeper-bench-gunicorn-{port}.log"
    print(f"gunicorn -w {args.workers} on {HOST}:{port} (log {log}) ...", flush=True)
    server = start_gunicorn(url, port, args.workers, log)
    try:
        cold = cold_requests(port, results[0].path, 2 * args.workers)
        print(f"first requests after boot: {', '.join(ms(t) for t in cold)} ms (each worker's first one is cold)")
        warm = http.client.HTTPConnection(HOST, port, timeout=60)
        for result in results:
            for _ in range(4 * args.workers):
                get(warm, result.path)
        warm.close()
        workers = [server.pid, *children_of(server.pid)]
        for result in results:

            def remote(path=result.path) -> HttpRun:
                wait_for_quiet(args.wait_quiet, markers=markers)
                return measure_http(path, port, wrk, workers, markers, args)

            result.run = best_of(args.attempts, QUIET, remote)
            run = result.run
            print(f"  {result.path}: {run.rps or 0:,.0f} req/s ({run.client}, others {run.others:.2f})", flush=True)
    except BaseException:
        print(f"gunicorn's log is kept in {log}", file=sys.stderr)
        raise
    else:
        log.unlink(missing_ok=True)
    finally:
        stop(server)

    client = "wrk -t2" if wrk else "Python threads"
    print(f"\nload: {client}, {args.connections} connections, {args.duration:g} s per search; ", end="")
    print(f"gunicorn {args.workers} sync workers; client and server share the machine")
    report(results, args.connections)


if __name__ == "__main__":
    main()
