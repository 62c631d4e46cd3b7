"""apps.catalog.history: what a sync records about the catalog it replaced, atomically with it."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.catalog import history
from apps.catalog.history import TRACKED, history_prune
from apps.catalog.models import CatalogChange, Server, SyncRun
from apps.catalog.tasks import prune_catalog_history
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import sample_catalog

PROJECT = Path(__file__).resolve().parents[2]

REGION_ROW = {
    "status": "active",
    "name": "r3",
    "api_reference": "r3",
    "display_name": "R3",
    "aliases": [],
    "country_id": "US",
    "state": None,
    "city": None,
    "address_line": None,
    "zip_code": None,
    "lon": None,
    "lat": None,
    "founding_year": None,
    "green_energy": None,
}
REMOVED_PRICE_ROW = {
    "status": "active",
    "unit": "hour",
    "price": 0.0063,
    "price_upfront": 0,
    "price_tiered": [{"lower": 0, "upper": 672, "price": 0.0063}, {"lower": 672, "upper": "Infinity", "price": 0}],
    "currency": "EUR",
    "operating_system": "Linux",
}


def records() -> list[tuple]:
    """Every change record as (table, kind, key, field, old, new, currency), in insertion order."""
    return [(c.table, c.kind, c.key, c.field, c.old, c.new, c.currency) for c in CatalogChange.objects.order_by("id")]


def price_key(vendor: str, region: str, server: str, allocation: str) -> dict[str, str]:
    return {
        "vendor_id": vendor,
        "region_id": region,
        "zone_id": f"{region}z1",
        "server_id": server,
        "allocation": allocation,
    }


def score_key(vendor: str, server: str) -> dict[str, str]:
    return {"vendor_id": vendor, "server_id": server, "benchmark_id": "stress_ng:bestn"}


def test_the_first_sync_records_no_changes(sync_upstream):
    run = sync_upstream(sample_catalog())

    assert run.changes is None
    assert not CatalogChange.objects.exists()


def test_a_second_sync_records_exactly_what_changed(sync_upstream):
    sync_upstream(sample_catalog())

    run = sync_upstream(changed_catalog())

    got = records()
    by_kind = {
        (table, kind, tuple(key.values()), field): (old, new, currency)
        for table, kind, key, field, old, new, currency in got
    }
    assert len(by_kind) == len(got), "one record per row, kind and column"
    added_region = next(new for table, kind, _, _, _, new, _ in got if (table, kind) == ("region", "added"))
    assert added_region == REGION_ROW
    removed_server = next(old for table, kind, _, _, old, _, _ in got if (table, kind) == ("server", "removed"))
    assert removed_server["status"] == "active" and removed_server["cpu_architecture"] == "arm64"
    assert set(removed_server) == {"status", *next(t for t in TRACKED if t.table == "server").compared}
    assert "observed_at" not in removed_server and "min_price" not in removed_server
    added_price = next(new for table, kind, _, _, _, new, _ in got if (table, kind) == ("server_price", "added"))
    assert added_price == {**REMOVED_PRICE_ROW, "price": 0.11, "price_tiered": [], "currency": "USD"}

    assert [(table, kind, key, field) for table, kind, key, field, *_ in got] == [
        ("region", "added", {"vendor_id": "aws", "region_id": "r3"}, None),
        ("zone", "added", {"vendor_id": "aws", "region_id": "r3", "zone_id": "r3z1"}, None),
        ("server", "removed", {"vendor_id": "hcloud", "server_id": "cax11"}, None),
        ("server", "status", {"vendor_id": "aws", "server_id": "t3.micro"}, "status"),
        ("server", "changed", {"vendor_id": "gcp", "server_id": "1234"}, "cpu_flags"),
        ("server", "changed", {"vendor_id": "aws", "server_id": "p3.8xlarge"}, "hw_virt"),
        ("server", "changed", {"vendor_id": "aws", "server_id": "p3.8xlarge"}, "network_speed_max"),
        ("server_price", "removed", price_key("hcloud", "r1", "cax11", "ondemand"), None),
        ("server_price", "status", price_key("aws", "r2", "t3.micro", "spot"), "status"),
        ("server_price", "changed", price_key("aws", "r1", "m5.large", "ondemand"), "price"),
        ("server_price", "changed", price_key("gcp", "r1", "1234", "spot"), "price"),
        ("server_price", "added", price_key("aws", "r3", "m5.large", "ondemand"), None),
        ("benchmark_score", "removed", score_key("hcloud", "cax11"), None),
        ("benchmark_score", "changed", score_key("gcp", "1234"), "score"),
    ]  # fmt: skip
    values = [(old, new, currency) for _, kind, _, _, old, new, currency in got if kind in ("status", "changed")]
    assert values == [
        ("active", "inactive", None),
        ([], ["avx2"], None),
        (None, True, None),
        (10, 25, None),
        ("active", "inactive", "USD"),
        (0.096, 0.1, "USD"),
        (0.0971, 0.09, "USD"),
        (16000, 17000, None),
    ]
    removed = [(old, new, currency) for table, kind, _, _, old, new, currency in got if kind == "removed"]
    assert removed[1] == (REMOVED_PRICE_ROW, None, "EUR")
    assert removed[2] == ({"score": 5000}, None, None)
    assert run.changes == {
        "region": {"added": 1},
        "zone": {"added": 1},
        "server": {"removed": 1, "status": 1, "changed": 3},
        "server_price": {"removed": 1, "status": 1, "changed": 2, "added": 1},
        "benchmark_score": {"removed": 1, "changed": 1},
    }
    assert set(CatalogChange.objects.values_list("sync_id", flat=True)) == {run.pk}


def test_a_recrawl_that_changed_nothing_but_observed_at_records_nothing(sync_upstream):
    sync_upstream(sample_catalog())
    recrawled = sample_catalog()
    for table in recrawled.tables():
        recrawled.db.execute(f'UPDATE "{table}" SET observed_at = ?', ["2026-03-01 00:00:00"])

    run = sync_upstream(recrawled)

    assert run.changes == {}
    assert not CatalogChange.objects.exists()


def test_syncing_back_records_the_reverse(sync_upstream):
    sync_upstream(sample_catalog())
    sync_upstream(changed_catalog())

    back = sync_upstream(sample_catalog())

    assert back.changes["server_price"] == {"added": 1, "status": 1, "changed": 2, "removed": 1}
    reverted = CatalogChange.objects.filter(sync=back, table="server_price", kind="changed").order_by("id")
    assert [(c.old, c.new) for c in reverted] == [(0.1, 0.096), (0.09, 0.0971)]


def test_a_failed_second_sync_records_nothing(sync_upstream, assert_failed_run):
    sync_upstream(sample_catalog())
    broken = changed_catalog()
    # A zone without a name: upstream's NOT NULL would refuse it, so the table is copied without its constraints.
    broken.db.execute("CREATE TABLE zone_copy AS SELECT * FROM zone")
    broken.db.execute("DROP TABLE zone")
    broken.db.execute("ALTER TABLE zone_copy RENAME TO zone")
    broken.db.execute("UPDATE zone SET name = NULL WHERE zone_id = 'r3z1'")

    with pytest.raises(Exception, match="name"):  # the driver's IntegrityError (SQLite) or NotNullViolation
        sync_upstream(broken)

    assert_failed_run("name")
    assert not CatalogChange.objects.exists()
    assert SyncRun.objects.get(status="SUCCEEDED").changes is None


def test_a_sync_that_fails_after_recording_leaves_no_record(sync_upstream, monkeypatch, assert_failed_run):
    sync_upstream(sample_catalog())
    record = history.CatalogHistory.record

    def record_then_fail(self):
        record(self)
        assert CatalogChange.objects.exists(), "the records were written"
        raise RuntimeError("killed right after the diff")

    monkeypatch.setattr(history.CatalogHistory, "record", record_then_fail)

    with pytest.raises(RuntimeError):
        sync_upstream(changed_catalog())

    assert_failed_run("killed right after the diff")
    assert not CatalogChange.objects.exists()
    assert Server.objects.get(vendor_id="hcloud", server_id="cax11"), "the previous catalog stays"


def test_history_days_zero_records_nothing(sync_upstream, settings):
    settings.KEEPER_HISTORY_DAYS = 0
    sync_upstream(sample_catalog())

    run = sync_upstream(changed_catalog())

    assert run.changes is None
    assert not CatalogChange.objects.exists()


def test_the_diff_is_timed_with_the_tables(sync_upstream):
    sync_upstream(sample_catalog())

    run = sync_upstream(changed_catalog())

    assert {"history (snapshot)", "history (diff)"} <= set(run.seconds)


def test_no_temporary_table_outlives_the_sync(sync_upstream):
    sync_upstream(sample_catalog())
    sync_upstream(changed_catalog())

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE 'keeper_history_%%'")
        else:
            cursor.execute("SELECT name FROM sqlite_temp_master WHERE name LIKE 'keeper_history_%'")
        assert cursor.fetchall() == []


# --- retention ----------------------------------------------------------------------------------------


def test_pruning_forgets_the_changes_of_syncs_older_than_the_retention(sync_upstream, settings):
    settings.KEEPER_HISTORY_DAYS = 30
    sync_upstream(sample_catalog())
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        old = sync_upstream(changed_catalog())
    recent = sync_upstream(sample_catalog())
    old_count = CatalogChange.objects.filter(sync=old).count()
    assert old_count and CatalogChange.objects.filter(sync=recent).exists()

    assert history_prune() == old_count

    assert set(CatalogChange.objects.values_list("sync_id", flat=True)) == {recent.pk}
    assert SyncRun.objects.get(pk=old.pk).changes == old.changes, "the run keeps its counts"


def test_the_daily_task_prunes(sync_upstream, settings):
    sync_upstream(sample_catalog())
    sync_upstream(changed_catalog())
    settings.KEEPER_HISTORY_DAYS = 0

    assert prune_catalog_history.apply().get() == {"deleted": 14}
    assert not CatalogChange.objects.exists()


def test_the_prune_task_runs_daily_in_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["prune-catalog-history"]

    assert entry == {"task": "apps.catalog.tasks.prune_catalog_history", "schedule": 86400.0}


# --- a sync killed with SIGKILL -----------------------------------------------------------------------

KILLED_SYNC = textwrap.dedent(
    """
    import os, signal, sys
    import django
    django.setup()
    from django.core.management import call_command
    from apps.catalog import history
    from apps.catalog.services import catalog_sync

    call_command("migrate", verbosity=0)
    catalog_sync(source=sys.argv[1])
    record = history.CatalogHistory.record

    def record_then_die(self):
        record(self)
        os.kill(os.getpid(), signal.SIGKILL)  # the changes are written, the transaction not committed

    history.CatalogHistory.record = record_then_die
    catalog_sync(source=sys.argv[2])
    """
)


@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="the SQLite file variant")
def test_a_sync_killed_after_the_diff_leaves_no_record(tmp_path):
    """A real process, killed between the diff and the commit: its database file has the first catalog only."""
    database = tmp_path / "keeper.sqlite3"
    first = sample_catalog().save(tmp_path / "first.db")
    second = changed_catalog().save(tmp_path / "second.db")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "keeper.settings"}

    process = subprocess.run(
        [sys.executable, "-c", KILLED_SYNC, str(first), str(second)], cwd=PROJECT, env=env, capture_output=True
    )

    assert process.returncode == -signal.SIGKILL, process.stderr.decode()[-2000:]
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM catalog_catalogchange").fetchone() == (0,)
        assert db.execute("SELECT status FROM catalog_syncrun ORDER BY id").fetchall() == [("SUCCEEDED",), ("RUNNING",)]
        assert db.execute("SELECT count(*) FROM catalog_server WHERE server_id = 'cax11'").fetchone() == (1,)
