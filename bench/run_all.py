"""Every benchmark of the production setup, one table.

    .venv/bin/python bench/run_all.py                 # everything, ~10 minutes
    .venv/bin/python bench/run_all.py --no-stack      # without the PostgreSQL + Redis stack
    .venv/bin/python bench/run_all.py --source other.sql.xz --duration 8

Rows:
1. sync: `manage.py sync_catalog --force` of --source into a migrated SQLite file, against a raw
   bulk load of the same rows into the same tables (the restored upstream database ATTACHed,
   one `INSERT INTO ... SELECT` per table, the tables' indexes in place): what the importer
   adds to the floor of copying the rows (conversion, derived columns and tables, bookkeeping).
2. HTTP at --connections clients (wrk, keep-alive), gunicorn with keeper/gunicorn.conf.py and
   2 workers on that SQLite file, the response cache off, each request measured twice back to
   back: "open" (RATE_LIMIT_ENABLED off, anonymous) and "guarded" (limits on, memory backend,
   an API key in X-API-Key with a pool no request exhausts, the global bucket opened wide).
   guarded/open is the throughput kept with authentication and throttling on; the overhead
   per request is the difference of the mean latencies (ms).
3. In process (Django's WSGIHandler, no HTTP): the same difference for one request, so the
   overhead is seen without the network and the scheduler.
4. The same requests on the local production stack (bin/keeper-stack: PostgreSQL, Redis,
   4 gunicorn workers, Celery; the Redis rate-limit backend), open and guarded (--no-stack to
   skip).

Only 127.0.0.1 is contacted; files go to a temporary directory (kept with --keep).
"""

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROJECT, SAMPLE, load_average, machine, now, table  # noqa: E402
from bench_api import ensure_wrk, free_port  # noqa: E402
from bench_peer import UNITS, Keeper, clean_env, fetch, manage, wait_idle  # noqa: E402

HOST = "127.0.0.1"
REQUESTS = [
    "/servers?vcpus_min=2&memory_min=8&limit=5",
    "/servers?countries=DE",
    "/server_prices?limit=25",
    "/server/aws/m5.large/prices",
    "/healthcheck",
]
BENCH_KEY = "bench-only-key-0123456789-abcdefghijklmnopqrstuvwxyz"
PYTHON = str(PROJECT / ".venv" / "bin" / "python")


@dataclass
class Load:
    rps: float | None = None
    mean: float | None = None  # seconds
    p50: float | None = None
    p99: float | None = None
    errors: int = 0
    statuses: str = ""

    def describe(self) -> str:
        if self.rps is None:
            return "-"
        errors = f" · {self.errors} non-2xx" if self.errors else ""
        return f"{self.rps:,.0f} req/s · {self.p50 * 1e3:.2f} / {self.p99 * 1e3:.2f} ms{errors}"


def seconds_of(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * UNITS[match.group(2)]


def wrk_load(wrk: str, port: int, path: str, *, connections: int, duration: int, key: str | None) -> Load:
    headers = ["-H", f"X-API-Key: {key}"] if key else []
    command = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", *headers, f"http://{HOST}:{port}{path}"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    load = Load()
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if not found:
        load.statuses = output.strip()[:200]
        return load
    requests, elapsed = int(found.group(1)), float(found.group(2)) * UNITS[found.group(3)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    load.errors = int(errors.group(1)) if errors else 0
    load.rps = (requests - load.errors) / elapsed
    latency = re.search(r"Latency\s+(\S+)", output)
    load.mean = seconds_of(latency.group(1)) if latency else None
    for label, attr in (("50%", "p50"), ("99%", "p99")):
        value = re.search(rf"^\s+{label}\s+(\S+)", output, re.M)
        setattr(load, attr, seconds_of(value.group(1)) if value else None)
    return load


def bootstrap_keys() -> str:
    entries = [{"key": BENCH_KEY, "name": "bench", "scope": "read"}]
    return base64.b64encode(json.dumps(entries).encode()).decode()


def guarded_env(extra: dict[str, str]) -> dict[str, str]:
    return {
        **extra,
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_CREDITS_PER_MINUTE": "100000000",
        "KEEPER_API_KEYS": bootstrap_keys(),
    }


def open_global_bucket(env: dict[str, str], log: Path) -> None:
    """The global bucket's run-time values, as staff would set them: wide open for the benchmark."""
    manage(["shell", "-c", open_global_code()], env, log)


# --- 1. sync -------------------------------------------------------------------------


def sync_rows(source: Path, work: Path) -> list[list[str]]:
    db = work / "sync.sqlite3"
    env = clean_env(DATABASE_URL=f"sqlite:///{db}", KEEPER_SECRET_KEY="bench-only-" + "x" * 40)
    log = work / "sync.log"
    manage(["migrate", "--no-input", "-v0"], env, log)
    started = time.perf_counter()
    manage(["sync_catalog", "--source", str(source), "--no-progress", "--force"], env, log)
    sync_seconds = time.perf_counter() - started

    raw_seconds, rows = raw_bulk_load(db, source)
    return [
        [
            f"sync of {source.name} ({rows:,} rows), SQLite",
            f"sync_catalog --force: {sync_seconds:.1f} s",
            f"raw INSERT ... SELECT: {raw_seconds:.1f} s",
            f"{sync_seconds / raw_seconds:.2f}× the raw load",
        ]
    ]


def raw_bulk_load(db: Path, source: Path) -> tuple[float, int]:
    """The floor: the dump restored into SQLite (as the sync does), then every upstream row copied
    by SQLite itself into Keeper's emptied tables, in one transaction (rolled back)."""
    sys.path.insert(0, str(PROJECT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("KEEPER_SECRET_KEY", "bench-only-" + "x" * 40)
    import django

    django.setup()
    from apps.catalog.importer import TABLES, upstream_columns
    from apps.catalog.sources import CatalogSource

    started = time.perf_counter()
    catalog = CatalogSource(label=str(source), path=source, data_hash="")
    upstream = catalog.sqlite_path()

    connection = sqlite3.connect(f"file:{db}", uri=True, isolation_level=None)
    connection.execute("ATTACH DATABASE ? AS src", [f"file:{upstream}?mode=ro"])
    total = 0
    connection.execute("BEGIN")
    for _table, model in reversed(TABLES):
        connection.execute(f'DELETE FROM main."{model._meta.db_table}"')
    for upstream_table, model in TABLES:
        names = ", ".join(f'"{c}"' for c in upstream_columns(model))
        cursor = connection.execute(
            f'INSERT INTO main."{model._meta.db_table}" ({names}) SELECT {names} FROM src."{upstream_table}"'
        )
        total += cursor.rowcount
    connection.execute("ROLLBACK")  # the measurement is the copy; the synced catalog stays
    seconds = time.perf_counter() - started
    connection.close()
    catalog.close()
    return seconds, total


# --- 2-4. HTTP and in process ----------------------------------------------------------


class GuardedKeeper(Keeper):
    def __init__(self, name: str, db: Path, source: Path) -> None:
        super().__init__(name, db, source, cache=False)
        self.env = guarded_env(self.env)


def http_rows(db: Path, source: Path, wrk: str, args, work: Path, label: str, servers) -> list[list[str]]:
    open_server, guarded_server = servers
    rows = []
    for path in REQUESTS:
        loads = []
        for server, key in ((open_server, None), (guarded_server, BENCH_KEY)):
            status = fetch(server.port, path)[0] if key is None else keyed_status(server.port, path)
            wrk_load(wrk, server.port, path, connections=args.connections, duration=1, key=key)  # warm-up
            load = wrk_load(wrk, server.port, path, connections=args.connections, duration=args.duration, key=key)
            if status != 200:
                load.statuses = f"status {status}"
            loads.append(load)
            wait_idle(server.pids(), max_wait=30)
        rows.append([f"{label}: `{path}`", *compare(*loads)])
    return rows


def keyed_status(port: int, path: str) -> int:
    import http.client

    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request("GET", path, headers={"X-API-Key": BENCH_KEY})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def in_process_rows(db: Path, work: Path) -> list[list[str]]:
    """One request through WSGIHandler, anonymous with limits off against keyed with limits on."""
    script = PROJECT / "bench" / "_inprocess_overhead.py"
    results = {}
    for mode, extra in (("open", {}), ("guarded", guarded_env({}))):
        env = {**clean_env(DATABASE_URL=f"sqlite:///{db}", KEEPER_CATALOG_RESPONSE_CACHE_SECONDS="0"), **extra}
        env["KEEPER_SECRET_KEY"] = "bench-peer-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
        done = subprocess.run(
            [PYTHON, str(script), mode, BENCH_KEY, *REQUESTS[:2]], cwd=PROJECT, env=env, capture_output=True, text=True
        )
        if done.returncode:
            return [["in process", f"failed: {done.stderr.strip()[-300:]}", "", ""]]
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for path in REQUESTS[:2]:
        plain, guarded = results["open"][path], results["guarded"][path]
        rows.append(
            [
                f"in process: `{path}`",
                f"{plain * 1e3:.3f} ms mean",
                f"{guarded * 1e3:.3f} ms mean",
                f"{(guarded - plain) * 1e3:+.3f} ms/req",
            ]
        )
    return rows


def stack_rows(source: Path, wrk: str, args, work: Path) -> list[list[str]]:
    """bin/keeper-stack started twice on one state folder (the second start finds the catalog
    loaded): limits off, then on with the bench key; the same requests, anonymous then keyed."""
    stack = PROJECT / "bin" / "keeper-stack"
    if not stack.exists():
        return [["local stack", "bin/keeper-stack not found", "", ""]]
    port = free_port()
    base = clean_env(
        KEEPER_STACK_DIR=str(work / "stack"),
        KEEPER_STACK_WEB_PORT=str(port),
        KEEPER_CATALOG_SOURCE=str(source),
        KEEPER_CATALOG_RESPONSE_CACHE_SECONDS="0",
        WEB_CONCURRENCY="4",
    )
    loads: dict[str, dict[str, Load]] = {}
    for mode, extra in (("open", {"RATE_LIMIT_ENABLED": "false"}), ("guarded", guarded_env({}))):
        env = {**base, **extra}
        log = work / f"stack-{mode}.log"
        with log.open("ab") as out:
            started = subprocess.run([str(stack), "start"], cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            if started.returncode:
                return [["local stack", f"bin/keeper-stack start failed; see {log}", "", ""]]
            if mode == "guarded":
                exports = subprocess.run([str(stack), "env"], cwd=PROJECT, env=env, capture_output=True, text=True)
                found = dict(re.findall(r"^export (\w+)=(\S+)", exports.stdout, re.M))
                manage(["shell", "-c", open_global_code()], {**env, **found}, log)
            key = BENCH_KEY if mode == "guarded" else None
            loads[mode] = {}
            for path in REQUESTS:
                wrk_load(wrk, port, path, connections=args.connections, duration=1, key=key)
                loads[mode][path] = wrk_load(
                    wrk, port, path, connections=args.connections, duration=args.duration, key=key
                )
        finally:
            subprocess.run([str(stack), "stop"], cwd=PROJECT, env=env, capture_output=True)
    return [
        [f"stack (PostgreSQL, Redis, 4 workers): `{path}`", *compare(loads["open"][path], loads["guarded"][path])]
        for path in REQUESTS
    ]


def compare(plain: Load, guarded: Load) -> list[str]:
    kept = f"{guarded.rps / plain.rps:.2f}×" if plain.rps and guarded.rps else "-"
    overhead = f"{(guarded.mean - plain.mean) * 1e3:+.2f} ms/req" if plain.mean is not None and guarded.mean else "-"
    return [plain.statuses or plain.describe(), guarded.statuses or guarded.describe(), f"{kept} · {overhead}"]


def open_global_code() -> str:
    return (
        "from apps.throttling.models import GlobalRateLimit as G; "
        "G.objects.update_or_create(pk=1, defaults={'rate_limit': 1000000.0, 'rate_burst': 1000000})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SAMPLE, help="catalog (default: the shared sample)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement (default 5)")
    parser.add_argument("--no-stack", action="store_true", help="skip the PostgreSQL + Redis stack")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    wrk = ensure_wrk(install=True)
    if not wrk:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="keeper-bench-all-"))
    print(f"Keeper, every benchmark, {now()}; {machine()}; load average {load_average()}; files in {work}", flush=True)

    rows = sync_rows(args.source, work)
    print(table(["measurement", "a", "b", "ratio"], rows), flush=True)

    db = work / "sync.sqlite3"  # loaded by sync_rows
    servers = (Keeper("open", db, args.source, cache=False), GuardedKeeper("guarded", db, args.source))
    open_global_bucket(servers[1].env, work / "global.log")
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_ready()
        rows += http_rows(db, args.source, wrk, args, work, "2 workers, SQLite", servers)
    finally:
        for server in servers:
            server.stop()
    rows += in_process_rows(db, work)
    if not args.no_stack:
        rows += stack_rows(args.source, wrk, args, work)

    print()
    print(
        table(
            ["measurement", "open (limits off, anonymous)", "guarded (limits on, API key)", "guarded / open"],
            rows,
        )
    )
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
