"""apps.catalog.services.catalog_sync: skip unchanged data, replace the catalog in full, all or nothing, record runs."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.catalog import services
from apps.catalog.importer import TABLES, CatalogImporter, CatalogSchemaError
from apps.catalog.models import Country, Region, Server, ServerPrice, SyncRun, Vendor
from apps.catalog.services import catalog_sync
from apps.catalog.sources import file_hash
from tests.catalog.upstream import UpstreamCatalog, sample_catalog


def one_server_catalog(server_id: str = "only", price: float = 0.1) -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", server_id)
    catalog.price("v", server_id, price=price)
    return catalog


def test_a_sync_loads_every_table(db, tmp_path):
    upstream = sample_catalog()
    path = upstream.save(tmp_path / "catalog.db")

    run = catalog_sync(source=str(path))

    assert run.status == "SUCCEEDED"
    for table, model in TABLES:
        assert model.objects.count() == upstream.count(table), table


def test_a_run_records_source_hash_schema_and_rows_per_table(db, tmp_path):
    upstream = sample_catalog()
    path = upstream.save(tmp_path / "catalog.db")

    run = catalog_sync(source=str(path))

    run.refresh_from_db()
    assert (run.status, run.source, run.data_hash) == ("SUCCEEDED", str(path.resolve()), file_hash(path))
    assert run.schema_version == "37c49fd74cce"
    assert run.rows == {table: upstream.count(table) for table in upstream.tables()}
    # Every upstream table is timed, and so is what Keeper derives from them.
    # On SQLite the indexes are dropped for the load and rebuilt once (a stage of its own).
    rebuilt = {"indexes (rebuilt)"} if connection.vendor == "sqlite" else set()
    derived = {"server_region_price (derived)", "database_region_price (derived)"}
    assert set(run.seconds) == {*run.rows, *derived, *rebuilt}
    assert run.started_at <= run.finished_at
    assert run.error == ""


def test_unchanged_data_is_skipped_and_the_catalog_left_alone(db, tmp_path):
    path = sample_catalog().save(tmp_path / "catalog.db")
    first = catalog_sync(source=str(path))
    # A reader-visible change that a reload would undo: the skip must not touch the tables.
    Server.objects.filter(server_id="m5.large").update(display_name="touched")

    second = catalog_sync(source=str(path))

    assert second.status == "SKIPPED"
    assert second.data_hash == first.data_hash
    assert second.schema_version == first.schema_version
    assert Server.objects.get(server_id="m5.large").display_name == "touched"
    assert SyncRun.objects.last_loaded() == first


def test_force_reloads_unchanged_data(db, tmp_path):
    path = sample_catalog().save(tmp_path / "catalog.db")
    catalog_sync(source=str(path))
    Server.objects.filter(server_id="m5.large").update(display_name="touched")

    run = catalog_sync(source=str(path), force=True)

    assert run.status == "SUCCEEDED"
    assert Server.objects.get(server_id="m5.large").display_name == "m5.large"


def test_changed_data_is_loaded_even_after_a_skip(db, tmp_path):
    first = one_server_catalog(price=0.1).save(tmp_path / "first.db")
    second = one_server_catalog(price=0.2).save(tmp_path / "second.db")
    catalog_sync(source=str(first))
    catalog_sync(source=str(first))

    run = catalog_sync(source=str(second))

    assert run.status == "SUCCEEDED"
    assert Server.objects.get().min_price == 0.2


def test_rows_that_disappear_upstream_disappear(sync_upstream):
    before = sample_catalog()
    sync_upstream(before)
    after = UpstreamCatalog()
    after.vendor("aws")
    after.server("aws", "m5.large")
    after.price("aws", "m5.large", price=0.096)

    sync_upstream(after)

    assert list(Server.objects.values_list("vendor_id", "server_id")) == [("aws", "m5.large")]
    assert list(Vendor.objects.values_list("vendor_id", flat=True)) == ["aws"]
    assert ServerPrice.objects.count() == after.count("server_price")
    assert Region.objects.count() == after.count("region")


def test_derived_values_are_recomputed_from_the_new_data(sync_upstream, get_servers):
    sync_upstream(one_server_catalog(price=0.5))

    sync_upstream(one_server_catalog(price=0.25))

    assert [row["min_price"] for row in get_servers()] == [0.25]


def test_a_region_whose_country_is_missing_imports_as_it_is(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=0)
    catalog.region("v", "atlantis", country_id="ZZ")
    assert catalog.db.execute("SELECT count(*) FROM country WHERE country_id = 'ZZ'").fetchone() == (0,)

    run = sync_upstream(catalog)

    assert run.status == "SUCCEEDED"
    [region] = api.get("/regions").json()
    assert (region["region_id"], region["country_id"]) == ("atlantis", "ZZ")
    assert not Country.objects.filter(country_id="ZZ").exists()


def test_other_fk_gaps_import_as_they_are(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "s")
    catalog.price("v", "s", price=0.1, region_id="gone", zone_id="gonez1")
    catalog.score("v", "s", "stress_ng:bestn", 100.0)  # a benchmark missing from the benchmark table

    run = sync_upstream(catalog)

    assert run.rows["server_price"] == 1
    assert api.get("/server/v/s").json()["score"] == 100.0


def test_an_unsupported_schema_version_fails_with_a_message_naming_it(
    sync_upstream, tmp_path, catalog_state, assert_failed_run
):
    sync_upstream(sample_catalog())
    before = catalog_state()
    path = UpstreamCatalog(schema_version="0123abcdef99").save(tmp_path / "future.db")

    with pytest.raises(CatalogSchemaError, match="0123abcdef99") as failure:
        catalog_sync(source=str(path))

    assert "37c49fd74cce" in str(failure.value), "the message should name the supported version"
    assert catalog_state() == before
    assert_failed_run("0123abcdef99")


def test_a_table_missing_a_column_fails_naming_table_and_column(
    sync_upstream, tmp_path, catalog_state, assert_failed_run
):
    sync_upstream(sample_catalog())
    before = catalog_state()
    upstream = sample_catalog()
    upstream.db.execute("ALTER TABLE server DROP COLUMN hw_virt")
    path = upstream.save(tmp_path / "old.db")

    with pytest.raises(CatalogSchemaError, match="server.*hw_virt"):
        catalog_sync(source=str(path))

    assert catalog_state() == before
    assert_failed_run("hw_virt")


def test_a_missing_table_fails_naming_it(sync_upstream, tmp_path, catalog_state):
    sync_upstream(sample_catalog())
    before = catalog_state()
    upstream = sample_catalog()
    upstream.db.execute("DROP TABLE benchmark_score")
    path = upstream.save(tmp_path / "partial.db")

    with pytest.raises(CatalogSchemaError, match="benchmark_score"):
        catalog_sync(source=str(path))

    assert catalog_state() == before


def _fail_on_table(monkeypatch: pytest.MonkeyPatch, failing_table: str) -> list[str]:
    """Make the importer raise when it reaches `failing_table`; returns the tables written before."""
    written: list[str] = []
    original = CatalogImporter._copy_table

    def copy_table(self, table, model):
        if table == failing_table:
            raise RuntimeError(f"disk full while writing {table}")
        count = original(self, table, model)
        written.append(table)
        return count

    monkeypatch.setattr(CatalogImporter, "_copy_table", copy_table)
    return written


def test_an_importer_failure_half_way_leaves_the_previous_catalog(
    sync_upstream, monkeypatch, api, catalog_state, assert_failed_run
):
    sync_upstream(sample_catalog())
    before = catalog_state()
    servers_before = api.get("/servers", {"limit": -1}).json()
    written = _fail_on_table(monkeypatch, "server_description")

    with pytest.raises(RuntimeError, match="disk full"):
        sync_upstream(one_server_catalog("replacement"))

    assert {"country", "vendor", "server_price", "server"} <= set(written), "the failure came half-way"
    assert catalog_state() == before
    assert api.get("/servers", {"limit": -1}).json() == servers_before
    assert_failed_run("RuntimeError: disk full while writing server_description")


@pytest.mark.django_db(transaction=True)
def test_an_importer_failure_half_way_leaves_the_committed_catalog(tmp_path, monkeypatch, catalog_state):
    """The same, outside the test's transaction: the sync's own transaction must be what protects the catalog."""
    assert not connection.in_atomic_block
    catalog_sync(source=str(sample_catalog().save(tmp_path / "first.db")))
    before = catalog_state()
    _fail_on_table(monkeypatch, "ipv4_price")

    with pytest.raises(RuntimeError):
        catalog_sync(source=str(one_server_catalog("replacement").save(tmp_path / "second.db")))

    assert catalog_state() == before
    assert [run.status for run in SyncRun.objects.order_by("id")] == ["SUCCEEDED", "FAILED"]


def test_a_failed_sync_does_not_count_as_loaded_data(db, tmp_path, monkeypatch):
    path = sample_catalog().save(tmp_path / "catalog.db")
    _fail_on_table(monkeypatch, "server")
    with pytest.raises(RuntimeError):
        catalog_sync(source=str(path))
    monkeypatch.undo()

    run = catalog_sync(source=str(path))

    assert run.status == "SUCCEEDED", "the same hash must be loaded after a failed attempt"
    assert Server.objects.count() == sample_catalog().count("server")


def test_a_run_left_running_for_over_an_hour_is_marked_failed(db, tmp_path):
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        stale = SyncRun.objects.create(source="killed")
    # Started as a sync starts its run: on PostgreSQL it holds the run's lock, as a live process does.
    recent = services._start_run("still going")

    catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")))
    services._end_run(recent)

    stale.refresh_from_db()
    recent.refresh_from_db()
    assert (stale.status, recent.status) == ("FAILED", "RUNNING")
    assert "Interrupted" in stale.error


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite cannot tell a dead run: the hour above applies")
def test_on_postgresql_a_run_whose_process_died_is_marked_failed_at_once(db, tmp_path):
    # Nobody holds its lock: the process that started it is gone (tests/faults/test_killed_sync.py kills one).
    orphan = SyncRun.objects.create(source="killed a second ago")

    catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")))

    orphan.refresh_from_db()
    assert orphan.status == "FAILED"
    assert "Interrupted" in orphan.error


def _index_definitions() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        return {
            (table, name)
            for table in tables
            if table.startswith("catalog_")
            for name, details in connection.introspection.get_constraints(cursor, table).items()
            if details["index"]
        }


def test_a_sync_leaves_every_index_it_found(db, tmp_path):
    before = _index_definitions()
    catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")))
    catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")), force=True)
    assert _index_definitions() == before
