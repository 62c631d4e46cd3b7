"""Benchmark of the catalog history: what recording the changes adds to a sync, how much the database
grows per sync, and the read throughput of `/changes` and `/price_history` in process.

The script makes its own changed copies of --source: the catalog re-crawled (every observed_at moves
on, as in every real new version) with 1% and 10% (--rates) of the server prices changed, half up and
half down by 5%. For each rate it syncs the copy onto the original catalog twice, once with the history
off (KEEPER_HISTORY_DAYS=0) and once on, resetting to the original between (history off, not timed).
Both are `catalog_sync(force=True)` of a SQLite `.db` file, as sparecores-data delivers the catalog (a
`.sql.xz` source adds ~5 s of restoring to every sync, which this leaves out: the ratio is then the
strictest). With --changes every-table each rate instead removes, adds and changes that share of the
rows of every tracked table (vendors to benchmark scores; the copy synced first lacks the rows the
timed sync adds). The figure of interest is the history's own stages (snapshot + diff, timed inside the
sync) against the sync time without history.

    .venv/bin/python bench/bench_history.py                      # sample, fresh SQLite file
    .venv/bin/python bench/bench_history.py --database-url postgres://postgres@127.0.0.1:5432
    .venv/bin/python bench/bench_history.py --source ../shared/data/sc-data-large.sql.xz --no-reads
    .venv/bin/python bench/bench_history.py --changes every-table --rates 0.01 --no-reads --plans

With a PostgreSQL URL a fresh database (keeper_bench_history_<pid>) is created on that server and
dropped at the end (--keep keeps it). Only 127.0.0.1 is contacted.
"""

import argparse
import io
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SAMPLE,
    CpuMeter,
    backend_marker,
    is_postgres,
    load_average,
    machine,
    median,
    now,
    percentile,
    postgres_create,
    postgres_drop,
    setup_django,
    table,
    wait_for_quiet,
    with_database,
)

RECRAWLED = "2030-01-01 00:00:00.000000"


def restored_copy(source: Path, target: Path) -> Path:
    """The source as a SQLite file (a dump restored the way a sync restores it)."""
    from apps.catalog.sources import open_catalog_source

    with open_catalog_source(str(source)) as catalog:
        shutil.copyfile(catalog.sqlite_path(), target)
    return target


def changed_copy(original: Path, target: Path, rate: float) -> tuple[Path, int]:
    """`original` re-crawled with `rate` of its server prices changed (half +5%, half -5%); and how many."""
    shutil.copyfile(original, target)
    every = round(1 / rate)
    db = sqlite3.connect(target)
    with db:
        changed = db.execute(
            "UPDATE server_price SET price = price * CASE WHEN (rowid / ?) % 2 = 0 THEN 1.05 ELSE 0.95 END "
            "WHERE rowid % ? = 0 AND price > 0",
            [every, every],
        ).rowcount
        recrawl(db)
    db.close()
    return target, changed


# What `--changes every-table` changes in each tracked table (a compared column); the rest get `name`.
EVERY_TABLE_CHANGE = {
    "server_price": "price = price + 0.001",
    "storage_price": "price = price + 0.001",
    "traffic_price": "price = price + 0.001",
    "ipv4_price": "price = price + 0.001",
    "benchmark_score": "score = score * 1.05",
}
EVERY_TABLE = (
    "vendor",
    "region",
    "zone",
    "storage",
    "benchmark",
    "server",
    "server_price",
    "storage_price",
    "traffic_price",
    "ipv4_price",
    "benchmark_score",
)


def every_table_pair(original: Path, work: Path, rate: float) -> tuple[Path, Path, dict[str, int]]:
    """Two copies of `original` for a sync that adds, removes and changes `rate` of the rows of every
    tracked table: the base lacks one share of the rows (the copy adds them back), the copy lacks another
    (removed) and changes a compared column of a third (changed), re-crawled. Rows are chosen by rowid,
    so every table, small ones included, has some of each. Returns the base, the copy and the rows each
    share touches per table."""
    every = max(3, round(1 / rate))
    base, copy = work / f"base-{rate:g}.db", work / f"every-table-{rate:g}.db"
    shutil.copyfile(original, base)
    shutil.copyfile(original, copy)
    touched: dict[str, int] = {}
    for target, deleted in ((base, 1), (copy, 2)):
        db = sqlite3.connect(target)
        with db:
            for name in EVERY_TABLE:
                touched[name] = db.execute(f'DELETE FROM "{name}" WHERE rowid % ? = ?', [every, deleted]).rowcount
                if target == copy:
                    change = EVERY_TABLE_CHANGE.get(name, "name = name || ' (renamed)'")
                    db.execute(f'UPDATE "{name}" SET {change} WHERE rowid % ? = 0', [every])
            if target == copy:
                recrawl(db)
        db.close()
    return base, copy, touched


def recrawl(db: sqlite3.Connection) -> None:
    """Every observed_at moves on, as in every real new version of the catalog."""
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in tables:
        columns = {row[1] for row in db.execute(f'PRAGMA table_info("{name}")')}
        if "observed_at" in columns:
            db.execute(f'UPDATE "{name}" SET observed_at = ?', [RECRAWLED])


def history_bytes(url: str) -> int | None:
    """Bytes of the change table with its indexes."""
    from django.db import connection

    from apps.catalog.models import CatalogChange

    name = CatalogChange._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size(%s)", [name])
            return cursor.fetchone()[0]
        indexes = [row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE tbl_name = %s", [name])]
        try:
            marks = ", ".join(["%s"] * len(indexes))
            cursor.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})", indexes)
        except Exception:  # noqa: BLE001 - SQLite built without the dbstat table: unknown
            return None
        return cursor.fetchone()[0] or 0


def timed_sync(source: Path, *, history: bool, markers: list[str]) -> dict:
    from django.conf import settings

    from apps.catalog.models import CatalogChange
    from apps.catalog.services import catalog_sync

    settings.KEEPER_HISTORY_DAYS = 365 if history else 0
    bytes_before = history_bytes(settings.DATABASE_URL)
    records_before = CatalogChange.objects.count()
    meter = CpuMeter(markers)
    started = time.perf_counter()
    run = catalog_sync(source=str(source), force=True)
    total = time.perf_counter() - started
    others = meter.others()
    bytes_after = history_bytes(settings.DATABASE_URL)
    growth = None if bytes_before is None or bytes_after is None else bytes_after - bytes_before
    return {
        "total": total,
        "snapshot": run.seconds.get("history (snapshot)", 0.0),
        "diff": run.seconds.get("history (diff)", 0.0),
        "records": CatalogChange.objects.count() - records_before,
        "growth": growth,
        "others": others,
    }


@contextmanager
def explained_diff(enabled: bool) -> Iterator[list[tuple[str, list[str]]]]:
    """With `enabled`, each diff statement's plan (EXPLAIN QUERY PLAN / EXPLAIN) taken just before it
    runs, while its temporary tables exist; the planning time is inside the timed sync, so use it on a
    repeat whose times are not kept (--repeats 2)."""
    from django.db import connection

    from apps.catalog.history import TEMP_PREFIX

    plans: list[tuple[str, list[str]]] = []
    inside = False

    def explain(execute, sql, params, many, context):
        nonlocal inside
        if enabled and not inside and TEMP_PREFIX in sql and sql.lstrip().startswith(("WITH", "INSERT")):
            inside = True
            try:
                with connection.cursor() as cursor:
                    if connection.vendor == "postgresql":
                        cursor.execute("EXPLAIN " + sql, params)
                        plans.append((sql, [line for (line,) in cursor.fetchall()]))
                    else:
                        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                        plans.append((sql, [f"{parent:>3} {detail}" for _, parent, _, detail in cursor.fetchall()]))
            finally:
                inside = False
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        yield plans


def reset(original: Path) -> None:
    from django.conf import settings

    from apps.catalog.services import catalog_sync

    settings.KEEPER_HISTORY_DAYS = 0
    catalog_sync(source=str(original), force=True)


def measure_reads(paths: list[str], budget: float) -> list[list[str]]:
    """Requests through Django's WSGIHandler in this process (response cache off): req/s and p50."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 0
    handler, factory = WSGIHandler(), RequestFactory()
    rows = []
    for path in paths:
        status: list[str] = []

        def request(path: str = path, status: list[str] = status) -> bytes:
            environ = factory.get(path).environ
            environ["wsgi.input"] = io.BytesIO()
            response = handler(environ, lambda line, headers, exc_info=None: status.append(line))
            try:
                return b"".join(response)
            finally:
                response.close()

        body = request()
        times = []
        deadline = time.perf_counter() + budget
        while time.perf_counter() < deadline and len(times) < 2000:
            started = time.perf_counter()
            request()
            times.append(time.perf_counter() - started)
        rows.append(
            [
                f"`{path}`",
                status[-1].split()[0],
                f"{len(body):,}",
                f"{len(times) / sum(times):,.0f}",
                f"{median(times) * 1000:.2f}",
                f"{percentile(times, 0.99) * 1000:.2f}",
            ]
        )
    return rows


def read_paths() -> list[str]:
    """Requests over the history just recorded: its newest sync, a server whose prices changed."""
    from apps.catalog.models import CatalogChange, SyncRun

    latest = SyncRun.objects.filter(changes__isnull=False).order_by("-id").first()
    change = CatalogChange.objects.filter(table="server_price", kind="changed").order_by("-id").first()
    if latest is None or change is None:
        return []
    since = latest.finished_at.date().isoformat()
    return [
        "/changes",
        "/changes?table=server_price&kind=changed&limit=100",
        f"/changes?vendor={change.vendor_id}&server={change.server_id}",
        f"/changes?since={latest.pk - 1}&field=price",
        "/syncs",
        f"/server/{change.vendor_id}/{change.server_id}/price_history",
        f"/server/{change.vendor_id}/{change.server_id}/price_history?currency=EUR&since={since}",
        f"/server_prices?price_change_since={since}",
        "/server_prices",
    ]


def run_benchmark(args: argparse.Namespace, url: str, work: Path) -> None:
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    markers = [backend_marker(url)]
    engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"Keeper history benchmark, {now()}, {machine()}")
    print(f"source:   {args.source} ({args.source.stat().st_size / 1e6:.1f} MB); database: {engine}")
    print(f"load average before: {load_average()}", flush=True)
    call_command("migrate", verbosity=0)
    original = restored_copy(args.source, work / "original.db")
    cases = []  # (label, the catalog synced first, the catalog whose sync is timed)
    for rate in args.rates:
        if args.changes == "prices":
            copy, changed = changed_copy(original, work / f"changed-{rate:g}.db", rate)
            cases.append((f"{rate:.0%} ({changed:,} prices)", original, copy))
        else:
            base, copy, touched = every_table_pair(original, work, rate)
            label = f"{rate:.0%} of every table each way ({touched['server_price']:,} prices)"
            cases.append((label, base, copy))

    rows = []
    for label, base, copy in cases:
        reset(base)  # the catalog the timed syncs replace (the first sync compares nothing)
        results = {}
        for history in (False, True):
            for repeat in range(args.repeats):
                wait_for_quiet(args.wait_quiet, markers=markers)
                explain = args.plans and history and repeat == args.repeats - 1
                with explained_diff(explain) as plans:
                    result = timed_sync(copy, history=history, markers=markers)
                print(f"  {label} history {'on' if history else 'off'}: {result}", file=sys.stderr, flush=True)
                for sql, plan in plans:
                    # The joins and the scans of the tables; not the scans of the materialized pairs (j).
                    lines = [line for line in plan if re.search(r"Join|Loop|SubPlan|SCAN (o|n)\b|SEARCH|Scan on", line)]
                    print(f"  plan of {sql[:90]}...\n    " + "\n    ".join(lines), file=sys.stderr, flush=True)
                if args.reads or (label, history, repeat) != (cases[-1][0], True, args.repeats - 1):
                    reset(base)  # not after the last sync when nothing is read (minutes for the large catalog)
                best = results.get(history)
                if best is None or result["total"] < best["total"]:
                    results[history] = result
        off, on = results[False], results[True]
        stage = on["snapshot"] + on["diff"]
        growth = "n/a" if on["growth"] is None else f"{on['growth'] / 1e6:.1f}"
        rows.append(
            [
                label,
                f"{off['total']:.2f}",
                f"{on['total']:.2f}",
                f"{on['snapshot']:.2f} + {on['diff']:.2f}",
                f"**{stage / off['total']:.1%}**",
                f"{(on['total'] - off['total']) / off['total']:+.1%}",
                f"{on['records']:,}",
                growth,
                f"{max(off['others'], on['others']):.2f}",
            ]
        )
    print()
    print(
        table(
            [
                "changes",
                "sync, history off: s",
                "history on: s",
                "snapshot + diff: s",
                "history / sync off",
                "on vs off",
                "records",
                "growth, MB",
                "others",
            ],
            rows,
        )
    )
    print("\n'history / sync off' is the history's own stages against the sync without it (target < 25%);")
    print("'on vs off' the difference of the two whole syncs (noisier); growth: the change table and its indexes.")

    if args.reads:
        # The reads run over the history of the last measured rate (the copy loaded, then the reset).
        wait_for_quiet(args.wait_quiet, markers=markers)
        paths = read_paths()
        print(f"\nReads in process (WSGIHandler, response cache off), {args.budget:.0f} s each:\n")
        headers = ["request", "status", "bytes", "req/s", "p50 ms", "p99 ms"]
        print(table(headers, measure_reads(paths, args.budget), "lrrrrr"))
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SAMPLE, help=f"catalog (default {SAMPLE})")
    parser.add_argument("--database-url", help="postgres://host:port (a fresh database is created there)")
    parser.add_argument(
        "--rates", type=lambda text: [float(x) for x in text.split(",")], default=[0.01, 0.1], help="0.01,0.1"
    )
    parser.add_argument(
        "--changes",
        choices=("prices", "every-table"),
        default="prices",
        help="prices: --rates of the server prices changed; every-table: --rates of every tracked table's "
        "rows added, removed and changed each",
    )
    parser.add_argument("--plans", action="store_true", help="print the diff's query plans (last history-on sync)")
    parser.add_argument("--repeats", type=int, default=1, help="syncs per rate and mode; the fastest is kept")
    parser.add_argument("--wait-quiet", type=float, default=30.0, help="seconds to wait for an idle machine")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per read measured")
    parser.add_argument("--no-reads", dest="reads", action="store_false", help="skip the read throughput")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    args.source = args.source.resolve()
    if not args.source.is_file():
        parser.error(f"{args.source} does not exist")

    work = Path(tempfile.mkdtemp(prefix="keeper-bench-history-"))
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.database_url is None:
        url = f"sqlite:///{work}/keeper.sqlite3"
    elif is_postgres(args.database_url):
        if urlparse(args.database_url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("only a PostgreSQL server on 127.0.0.1 is benchmarked")
        url = with_database(args.database_url, f"keeper_bench_history_{os.getpid()}")
        postgres_create(url)
        if not args.keep:
            cleanup = lambda: postgres_drop(url)  # noqa: E731
    else:
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    try:
        run_benchmark(args, url, work)
    finally:
        cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
