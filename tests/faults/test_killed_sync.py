"""A catalog sync killed with SIGKILL half-way through its import, while Keeper serves the catalog it replaces.

The previous catalog is served throughout (PostgreSQL MVCC: the import is one transaction), the run the
killed process left RUNNING is marked interrupted by the next sync instead of blocking or misreporting,
and the next sync completes.
"""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from apps.catalog.services import SYNC_LOCK_ID
from tests.catalog.upstream import UpstreamCatalog
from tests.faults.conftest import Stack
from tests.live import PROJECT, LiveKeeper, wait_until

SERVERS = 1200
REGIONS = 5
VENDOR = "bulk"


def large_catalog(path: Path) -> Path:
    """One vendor with SERVERS servers priced on demand and spot in every region: a few seconds to import."""
    catalog = UpstreamCatalog()
    catalog.vendor(VENDOR, regions=REGIONS)
    for number in range(SERVERS):
        catalog.server(VENDOR, f"b{number}", vcpus=2 + number % 64, memory_amount=1024 * (1 + number % 32))
    columns = ("vendor_id", "region_id", "zone_id", "server_id", "operating_system", "allocation", "unit", "price")
    columns += ("price_upfront", "price_tiered", "currency", "status", "observed_at")
    rows = [
        (VENDOR, f"r{r}", f"r{r}z1", f"b{n}", "Linux", allocation, "HOUR", 0.01 + n / 1000 + r / 100)
        + (0, "[]", "USD", "ACTIVE", "2026-01-15 21:49:48.232080")
        for n in range(SERVERS)
        for r in range(1, REGIONS + 1)
        for allocation in ("ONDEMAND", "SPOT")
    ]
    catalog.db.executemany(f"INSERT INTO server_price ({', '.join(columns)}) VALUES ({', '.join('?' * 13)})", rows)
    return catalog.save(path)


class Poller(threading.Thread):
    """GET /servers over and over, as a client would during the sync; records (status, X-Total-Count)."""

    def __init__(self, server: LiveKeeper):
        super().__init__(daemon=True)
        self.server = server
        self.seen: list[tuple[int, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            # A new limit each time: every answer is read from the database, none from the response cache.
            try:
                answer = self.server.get(f"/servers?limit={number}&add_total_count_header=true", timeout=15)
            except OSError as exc:
                self.seen.append((0, repr(exc)))
            else:
                self.seen.append((answer.status, answer.headers.get("x-total-count")))
            time.sleep(0.05)

    def __enter__(self) -> "Poller":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.join(timeout=30)


def total_servers(server: LiveKeeper) -> str:
    answer = server.get("/servers?limit=1&add_total_count_header=true&only_active=false&only_orderable=false")
    assert answer.status == 200, answer.body
    return answer.headers["x-total-count"]


def sync_lock_held(stack: Stack) -> bool:
    query = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND objid = {SYNC_LOCK_ID}"
    return stack.postgres.query(query) != "0"


def new_run(stack: Stack, after: str) -> str:
    return stack.postgres.query(f"SELECT coalesce(max(id)::text, '') FROM catalog_syncrun WHERE id > {after}")


def waiting_on_the_run_row(stack: Stack) -> bool:
    """The sync's last statement inside its import (its run's UPDATE) waits on a lock."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        """ AND query LIKE 'UPDATE "catalog_syncrun"%'"""
    )
    return stack.postgres.query(query) != "0"


def test_a_sync_killed_half_way_leaves_the_old_catalog_served_and_the_next_sync_completes(keeper: Stack):
    server = keeper.keeper
    source = large_catalog(keeper.tmp / "large-catalog.db")
    before = server.get("/servers?limit=1&add_total_count_header=true").headers["x-total-count"]
    assert int(before) < SERVERS
    last_run = keeper.postgres.query("SELECT max(id) FROM catalog_syncrun")

    with Poller(server) as during_the_kill:
        sync = subprocess.Popen(
            [sys.executable, str(PROJECT / "manage.py"), "sync_catalog", "--source", str(source)],
            env=server.env,
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        progress: list[str] = []
        reader = threading.Thread(target=lambda: progress.extend(sync.stderr), daemon=True)
        reader.start()
        # The run's row is locked as soon as it exists (long before the import ends, on any machine): the
        # import's last statement, which updates it, then waits, with every table written and nothing
        # committed. Killed there, the sync is half-way whatever the machine's speed.
        holder = psycopg.connect(keeper.postgres.url)
        try:
            wait_until(lambda: new_run(keeper, last_run) != "", timeout=120, what="the sync's run")
            holder.execute(
                "SELECT 1 FROM catalog_syncrun WHERE id = %s FOR NO KEY UPDATE", [int(new_run(keeper, last_run))]
            )
            wait_until(
                lambda: waiting_on_the_run_row(keeper) or sync.poll() is not None,
                timeout=120,
                what="the sync's import to reach its last statement",
            )
            assert sync.poll() is None, f"the sync ended before it could be killed:\n{''.join(progress)}"
            assert sync_lock_held(keeper), "the import's transaction ended before the kill"
            wait_until(
                lambda: any("server_price" in line for line in progress), timeout=10, what="the server_price progress"
            )
        finally:
            sync.send_signal(signal.SIGKILL)
            sync.wait(timeout=30)
            # Only now: the killed sync's backend takes the row, finds its client gone and rolls back.
            holder.rollback()
            holder.close()
        assert sync.returncode == -signal.SIGKILL
        # PostgreSQL rolls the killed transaction back once it sees the connection gone.
        wait_until(lambda: not sync_lock_held(keeper), timeout=30, what="the killed sync's transaction to end")
        # Still polling a little after: longer than KEEPER_CATALOG_VERSION_TTL_SECONDS, so every worker
        # has re-read the catalog's state since the kill.
        time.sleep(1.5)

    killed = keeper.postgres.query(f"SELECT id, status FROM catalog_syncrun WHERE id > {last_run} ORDER BY id")
    assert during_the_kill.seen, "no request was made during the sync"
    assert set(during_the_kill.seen) == {(200, before)}
    (killed_id, killed_status) = killed.split("|")
    assert killed_status == "RUNNING"
    health = server.get("/healthcheck").json()
    assert health["status"] == "ok"

    with Poller(server) as during_the_next_sync:
        done = server.manage("sync_catalog", "--source", str(source), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    assert "Catalog loaded" in done.stdout
    # Every answer is the old catalog or the new one, never an error or a mix.
    assert {status for status, _ in during_the_next_sync.seen} == {200}
    assert {total for _, total in during_the_next_sync.seen} <= {before, str(SERVERS)}
    wait_until(lambda: total_servers(server) == str(SERVERS), timeout=10, what="the new catalog")
    runs = keeper.postgres.query(f"SELECT id, status, error FROM catalog_syncrun WHERE id > {last_run} ORDER BY id")
    killed_run, next_run = runs.splitlines()
    assert killed_run == f"{killed_id}|FAILED|Interrupted: the process ended before the run finished."
    assert next_run.split("|")[1] == "SUCCEEDED"
    assert server.get("/healthcheck").json()["last_sync_status"] == "SUCCEEDED"
