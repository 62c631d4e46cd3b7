"""Benchmark of a full catalog import: time per stage and per table, then an unchanged re-sync.

Three syncs of --source: catalog_sync(force=True) into the freshly migrated,
empty database; again with force=True onto the loaded catalog (what a
scheduled sync of a new catalog version does: delete, then re-insert; skip it
with --no-reload); then force=False, which must skip the unchanged catalog.

    .venv/bin/python bench/bench_sync.py                        # sample dump, fresh SQLite file
    .venv/bin/python bench/bench_sync.py --source ../shared/data/sc-data-large.sql.xz
    .venv/bin/python bench/bench_sync.py --database-url postgres://postgres@127.0.0.1:5432

With a PostgreSQL URL a fresh database (keeper_bench_sync_<pid>) is created on
that server and dropped at the end (--keep keeps it); the URL's own database
name is never touched. Without --database-url a SQLite file in a temporary
directory is used and removed. Stages are timed by wrapping the application's
functions in this process only; the application code is not changed.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SAMPLE,
    CpuMeter,
    backend_marker,
    database_name,
    database_size,
    is_postgres,
    load_average,
    machine,
    now,
    postgres_create,
    postgres_drop,
    setup_django,
    table,
    wait_for_quiet,
    with_database,
)


class StageTimer:
    """Wall time of wrapped callables, summed per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.marks: dict[str, float] = {}

    def wrap(self, owner: object, attribute: str, stage: str) -> None:
        original: Callable = getattr(owner, attribute)
        timer = self

        @wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                timer.seconds[stage] = timer.seconds.get(stage, 0.0) + ended - started
                timer.marks[stage] = ended

        setattr(owner, attribute, timed)


def progress_printer(enabled: bool):
    """An on_table callback that prints each table's name when its copy starts (stderr)."""
    current: list[str] = []

    def on_table(name: str, done: int, total: int) -> None:
        if enabled and (not current or current[-1] != name):
            current.append(name)
            print(f"  ... {name} ({total:,} rows)", file=sys.stderr, flush=True)

    return on_table


STAGES = [
    "hash source file (sha256)",
    "restore SQL dump into SQLite",
    "check schema",
    "delete old catalog",
]


def timed_sync(timer: StageTimer, source: Path, quiet: bool) -> dict:
    """One catalog_sync(force=True): seconds per stage and per table."""
    from django.conf import settings

    from apps.catalog.services import catalog_sync

    timer.seconds.clear()
    meter = CpuMeter([backend_marker(settings.DATABASE_URL)])
    started = time.perf_counter()
    run = catalog_sync(source=str(source), force=True, on_table=progress_printer(not quiet))
    total = time.perf_counter() - started
    stages = {name: timer.seconds.get(name, 0.0) for name in STAGES}
    stages["commit + bookkeeping"] = started + total - timer.marks["importer.run"]
    tables = sum(run.seconds.values())
    stages["other (opening source, run records)"] = max(total - sum(stages.values()) - tables, 0.0)
    others = meter.others()
    size = database_size(settings.DATABASE_URL)
    return {"run": run, "total": total, "stages": stages, "tables": tables, "others": others, "size": size}


def run_benchmark(source: Path, database_url: str, quiet: bool, reload: bool, wait_quiet: float) -> None:
    setup_django(database_url)

    from django.core.management import call_command
    from django.db import connection

    from apps.catalog import importer, services, sources
    from apps.catalog.services import catalog_sync

    timer = StageTimer()
    timer.wrap(sources, "file_hash", STAGES[0])
    timer.wrap(sources.CatalogSource, "sqlite_path", STAGES[1])
    timer.wrap(services, "check_schema", STAGES[2])
    timer.wrap(importer.CatalogImporter, "_delete_all", STAGES[3])
    timer.wrap(importer.CatalogImporter, "run", "importer.run")

    engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"Keeper sync benchmark, {now()}, {machine()}")
    print(f"source:   {source} ({source.stat().st_size / 1e6:.1f} MB)")
    print(f"database: {engine} {database_url}")
    print(f"load average before: {load_average()}")

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrate:  {time.perf_counter() - started:.2f} s (fresh database, not counted below)", flush=True)

    wait_for_quiet(wait_quiet, markers=[backend_marker(database_url)])
    results = [timed_sync(timer, source, quiet)]
    if reload:
        wait_for_quiet(wait_quiet, markers=[backend_marker(database_url)])
        results.append(timed_sync(timer, source, quiet))

    started = time.perf_counter()
    skipped = catalog_sync(source=str(source), force=False)
    again = time.perf_counter() - started

    headers = ["stage", "empty db: s", "rows/s"]
    aligns = "lrr"
    if reload:
        headers += ["loaded db: s", "rows/s"]
        aligns += "rr"

    def cell(seconds: float, count: int | None = None) -> list[str]:
        rate = f"{count / seconds:,.0f}" if count is not None and seconds >= 0.01 else ""
        return [f"{seconds:.2f}", rate]

    first = results[0]["run"]
    rows = []
    for name in STAGES:
        rows.append([name, *sum((cell(r["stages"][name]) for r in results), [])])
    for name, count in first.rows.items():
        rows.append(
            [f"  table {name} ({count:,} rows)", *sum((cell(r["run"].seconds[name], count) for r in results), [])]
        )
    count = sum(first.rows.values())
    rows.append([f"tables, all ({count:,} rows)", *sum((cell(r["tables"], count) for r in results), [])])
    for name in ("commit + bookkeeping", "other (opening source, run records)"):
        rows.append([name, *sum((cell(r["stages"][name]) for r in results), [])])
    rows.append(["**total, force=True**", *sum(([f"**{r['total']:.2f}**", ""] for r in results), [])])
    rows.append([f"unchanged catalog, second sync ({skipped.status})", f"{again:.3f}", "", *[""] * (len(headers) - 3)])
    rows.append(
        ["database size after the import, MB", *sum(([f"{(r['size'] or 0) / 1e6:.0f}", ""] for r in results), [])]
    )
    rows.append(["other processes' CPU meanwhile, cores", *sum(([f"{r['others']:.2f}", ""] for r in results), [])])
    print()
    print(table(headers, rows, aligns))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statuses = ", ".join(r["run"].status for r in results)
    print(f"\nruns: {statuses}; peak RSS of this process {peak:.0f} MB")
    print("database size: SQLite file plus its -wal file, or pg_database_size; other processes' CPU:")
    print(f"cores (of {os.cpu_count()}) used by processes other than this one and its database backends")
    if skipped.status != "SKIPPED":
        print("WARNING: the second, unchanged sync was not skipped", file=sys.stderr)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SAMPLE, help=f"catalog dump (default {SAMPLE})")
    parser.add_argument(
        "--database-url",
        help="sqlite:///path (used as is) or postgres://host:port (a fresh database is created there); "
        "default: a fresh SQLite file in a temporary directory",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each import, wait up to this many seconds for other processes to go idle (default 60)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the fresh database afterwards")
    parser.add_argument("--quiet", action="store_true", help="no per-table progress on stderr")
    parser.add_argument(
        "--no-reload",
        dest="reload",
        action="store_false",
        help="skip the second forced import onto the loaded catalog (what a scheduled sync of new data does)",
    )
    args = parser.parse_args()
    source = args.source.resolve()
    if not source.is_file():
        parser.error(f"{source} does not exist")

    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.database_url is None:
        directory = tempfile.mkdtemp(prefix="keeper-bench-sync-")
        url = f"sqlite:///{directory}/keeper.sqlite3"
        if not args.keep:
            cleanup = lambda: shutil.rmtree(directory, ignore_errors=True)  # noqa: E731
    elif is_postgres(args.database_url):
        if urlparse(args.database_url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("only a PostgreSQL server on 127.0.0.1 is benchmarked")
        url = with_database(args.database_url, f"keeper_bench_sync_{os.getpid()}")
        postgres_create(url)
        if not args.keep:
            cleanup = lambda: postgres_drop(url)  # noqa: E731
    else:
        url = args.database_url
    try:
        run_benchmark(source, url, args.quiet, args.reload, args.wait_quiet)
    finally:
        cleanup()
        if args.keep:
            print(f"kept database {database_name(url) if is_postgres(url) else url}")


if __name__ == "__main__":
    main()
