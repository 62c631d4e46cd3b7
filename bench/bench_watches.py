"""Benchmark of the watches' evaluation after a sync (issue 18): the evaluation of 1,000 watches against
the sync's own time (target: under a third of it).

The script restores --source once as a SQLite file, makes a copy re-crawled with 1% of its server prices
changed (bench_history.changed_copy), syncs the original, creates --watches watches as 20 key owners (a
realistic mix: /servers searches by vendor, vCPUs, memory, architecture and price with small pages,
/server_prices searches, one server's detail and its prices, /regions and /storage_prices of a vendor),
each validated by running it once, as POST /watches does. Then it times the sync of the changed copy
(`catalog_sync(force=True)`, history on, as a scheduled sync of a new version) and, separately, the
evaluation that follows it (`evaluate_watches()`, what the worker or the schedule runs): every watch
re-run in process as its owner, compared with its last answer, events recorded.

    .venv/bin/python bench/bench_watches.py                       # sample dump, fresh SQLite file
    .venv/bin/python bench/bench_watches.py --source ../shared/data/sc-data-large.sql.xz
    .venv/bin/python bench/bench_watches.py --database-url postgres://postgres@127.0.0.1:5432 --source ...

With a PostgreSQL URL a fresh database (keeper_bench_watches_<pid>) is created on that server and dropped
at the end. Only 127.0.0.1 is contacted.
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SAMPLE,
    backend_marker,
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

OWNERS = 20


def watch_queries(count: int, seed: int = 18) -> list[str]:
    """`count` queries in a realistic mix, built from the loaded catalog's own vendors and servers."""
    from apps.catalog import choices
    from apps.catalog.models import Server, Vendor

    rng = random.Random(seed)
    vendors = list(Vendor.objects.values_list("vendor_id", flat=True))
    servers = list(Server.objects.filter(status=choices.Status.ACTIVE).values_list("vendor_id", "server_id"))
    makers: list[Callable[[], str]] = [
        lambda: f"/servers?vendor={rng.choice(vendors)}&vcpus_min={rng.choice([2, 4, 8, 16])}&limit=25",
        lambda: f"/servers?vcpus_min={rng.choice([2, 4, 8])}&memory_min={rng.choice([4, 8, 16, 32])}&limit=25",
        lambda: f"/servers?vendor={rng.choice(vendors)}&architecture=arm64&limit=10",
        lambda: f"/servers?vcpus_min={rng.choice([4, 8, 16, 32])}&order_by=min_price&order_dir=asc&limit=10",
        lambda: f"/server_prices?vendor={rng.choice(vendors)}&vcpus_min={rng.choice([2, 4, 8])}&limit=25",
        lambda: "/server/{}/{}".format(*rng.choice(servers)),
        lambda: "/server/{}/{}/prices".format(*rng.choice(servers)),
        lambda: f"/regions?vendor={rng.choice(vendors)}",
        lambda: f"/storage_prices?vendor={rng.choice(vendors)}&limit=25",
    ]
    weights = [30, 10, 5, 10, 15, 15, 10, 3, 2]
    return [rng.choices(makers, weights)[0]() for _ in range(count)]


def create_watches(count: int) -> tuple[int, Counter]:
    """`count` watches over OWNERS key owners; returns how many were created and the refusals by reason."""
    from dataclasses import replace

    from django.contrib.auth import get_user_model
    from django.test.utils import override_settings

    from apps.catalog.watches.services import WatchRefused, watch_create
    from apps.keys.authentication import caller_for_key
    from apps.keys.policy import Actor
    from apps.keys.services import key_create

    callers = []
    for number in range(OWNERS):
        user = get_user_model().objects.create_user(f"watcher-{number}", password=None)
        issued = key_create(owner=user, name="bench", actor=Actor("bench"))
        callers.append(replace(caller_for_key(issued.api_key)))
    created, refused = 0, Counter()
    with override_settings(KEEPER_WATCHES_PER_CALLER=count):
        for number, query in enumerate(watch_queries(count)):
            try:
                watch_create(callers[number % OWNERS], name=f"watch {number}", query=query)
                created += 1
            except WatchRefused as exc:
                refused[exc.detail.split(":")[0][:80]] += 1
    return created, refused


def run_benchmark(args: argparse.Namespace, url: str, work: Path) -> None:
    setup_django(url)
    from bench_history import changed_copy, restored_copy
    from django.core.management import call_command
    from django.db import connection

    from apps.catalog.services import catalog_sync
    from apps.catalog.watches.services import evaluate_watches
    from keeper.events.models import Event

    markers = [backend_marker(url)]
    engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    print(f"Keeper watches benchmark, {now()}, {machine()}")
    print(f"source:   {args.source} ({args.source.stat().st_size / 1e6:.1f} MB); database: {engine}")
    print(f"load average before: {load_average()}", flush=True)
    call_command("migrate", verbosity=0)
    original = restored_copy(args.source, work / "original.db")
    copy, prices = changed_copy(original, work / "changed.db", 0.01)
    catalog_sync(source=str(original), force=True)

    started = time.perf_counter()
    created, refused = create_watches(args.watches)
    creating = time.perf_counter() - started
    print(f"created {created} watches in {creating:.1f} s; refused: {dict(refused) or 'none'}", flush=True)

    wait_for_quiet(args.wait_quiet, markers=markers)
    started = time.perf_counter()
    run = catalog_sync(source=str(copy), force=True)
    sync_seconds = time.perf_counter() - started
    wait_for_quiet(args.wait_quiet, markers=markers)
    started = time.perf_counter()
    result = evaluate_watches()
    evaluation = time.perf_counter() - started
    events = Counter(Event.objects.filter(subject__startswith="watch:").values_list("type", flat=True))

    ratio = evaluation / sync_seconds
    print()
    print(
        table(
            ["step", "seconds", "per watch, ms"],
            [
                [f"sync of the changed copy ({prices:,} prices changed, {run.status})", f"{sync_seconds:.2f}", ""],
                [
                    f"evaluation of {result.evaluated} watches ({result.changed} changed, {result.paused} paused)",
                    f"{evaluation:.2f}",
                    f"{1000 * evaluation / max(result.evaluated, 1):.1f}",
                ],
                ["**evaluation / sync**", f"**{ratio:.2f}**", ""],
            ],
            "lrr",
        )
    )
    verdict = "met" if ratio < 1 / 3 else "MISSED"
    print(f"\nevents recorded: {dict(events)}; target evaluation < 1/3 of the sync: {verdict}")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SAMPLE, help=f"catalog dump (default {SAMPLE})")
    parser.add_argument("--database-url", help="postgres://host:port (a fresh database is created there)")
    parser.add_argument("--watches", type=int, default=1000, help="watches evaluated (default 1000)")
    parser.add_argument("--wait-quiet", type=float, default=30.0, help="wait up to this long for idle (default 30)")
    args = parser.parse_args()
    args.source = args.source.resolve()
    if not args.source.is_file():
        parser.error(f"{args.source} does not exist")
    work = Path(tempfile.mkdtemp(prefix="keeper-bench-watches-"))
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.database_url is None:
        url = f"sqlite:///{work}/keeper.sqlite3"
    else:
        if not is_postgres(args.database_url) or urlparse(args.database_url).hostname not in ("127.0.0.1", "localhost"):
            parser.error("only a PostgreSQL server on 127.0.0.1 is benchmarked")
        url = with_database(args.database_url, f"keeper_bench_watches_{os.getpid()}")
        postgres_create(url)
        cleanup = lambda: postgres_drop(url)  # noqa: E731
    try:
        run_benchmark(args, url, work)
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
