"""Managed databases in the catalog sync: the four database tables imported with the rest, all or nothing,
each database's cheapest active on-demand prices derived in USD, older catalogs without the tables, their
changes in the catalog history, their counts in /stats and /debug, and their admin lists."""

import lzma
import re
import sqlite3
from pathlib import Path

import pytest
from django.urls import reverse

from apps.catalog.importer import CatalogSchemaError
from apps.catalog.models import (
    BenchmarkScore,
    Database,
    DatabasePrice,
    DatabaseRegionPrice,
    DatabaseStorage,
    DatabaseStoragePrice,
    Server,
)
from apps.catalog.pricing import exchange_rate, round_half_up
from tests.catalog.upstream import OBSERVED, UpstreamCatalog, databases_catalog, sample_catalog

DATABASE_TABLES = {
    "database": Database,
    "database_storage": DatabaseStorage,
    "database_price": DatabasePrice,
    "database_storage_price": DatabaseStoragePrice,
}
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "sc-data-sample.sql.xz"


def database(vendor_id: str, database_id: str) -> Database:
    return Database.objects.get(vendor_id=vendor_id, database_id=database_id)


def test_the_database_tables_are_loaded_with_the_values_the_api_spells(sync_upstream):
    upstream = databases_catalog()

    run = sync_upstream(upstream)

    assert {table: model.objects.count() for table, model in DATABASE_TABLES.items()} == {
        table: upstream.count(table) for table in DATABASE_TABLES
    }
    assert {table: run.rows[table] for table in DATABASE_TABLES} == {
        table: upstream.count(table) for table in DATABASE_TABLES
    }
    row = database("aws", "db.m5.large")
    assert (row.engine, row.wire_protocol, row.status) == ("postgresql", "postgresql", "active")
    assert (row.ha, row.ha_strategy) == (["multi-zone", "none"], ["passive-standby", "none"])
    assert row.api_reference_object == {"instance_class": "db.m5.large"}
    assert row.compatible_storage_ids == ["gp3"] and row.engine_versions == ["16", "17"]
    assert (row.disk_encryption, row.custom_config, row.sla) == (True, None, 99.95)
    assert row.server == Server.objects.get(vendor_id="aws", server_id="m5.large")
    assert database("gcp", "db-retired").status == "retired"
    assert database("gcp", "db-leaving").status == "planned_for_retirement"
    price = DatabasePrice.objects.get(vendor_id="aws", database_id="db.m5.large", region_id="r1", ha="multi-zone")
    assert (price.allocation, price.ha_strategy, price.unit, price.price) == (
        "ondemand",
        "passive-standby",
        "hour",
        0.356,
    )
    assert price.database == row
    storage = DatabaseStorage.objects.get(vendor_id="aws", database_storage_id="backup")
    assert (storage.scope, storage.redundancy) == ("backup", "LRS")
    storage_price = DatabaseStoragePrice.objects.get(vendor_id="aws", database_storage_id="gp3", region_id="r2")
    assert (storage_price.unit, storage_price.price, storage_price.database_storage.scope) == (
        "GB/month",
        0.138,
        "data",
    )


def test_each_database_has_its_cheapest_active_on_demand_hourly_and_monthly_price_in_usd(sync_upstream):
    sync_upstream(databases_catalog())
    eur = exchange_rate("EUR", "USD")

    # aws: 0.178 and 0.356 (multi-zone) in r1, 0.171 in r2; the inactive 0.05 and the monthly-unit 0.01
    # are no hourly price. Monthly: 730 hours of the cheapest.
    aws = database("aws", "db.m5.large")
    assert (aws.min_price, aws.min_price_ondemand, aws.min_price_ondemand_monthly) == (0.171, 0.171, 124.83)
    # gcp: 0.2 EUR an hour for the first 500 hours, nothing after: 100 EUR a month.
    gcp = database("gcp", "db-custom-2-8192")
    hourly = round_half_up(0.2 * eur, 4)
    assert (gcp.min_price, gcp.min_price_ondemand, gcp.min_price_ondemand_monthly) == (
        hourly,
        hourly,
        round_half_up(100 * eur, 2),
    )
    # Only an inactive price, or none at all: no price.
    for database_id in ("db-retired", "db-leaving"):
        row = database("gcp", database_id)
        assert (row.min_price, row.min_price_ondemand, row.min_price_ondemand_monthly) == (None, None, None)
    # Each price row: its month (in its own currency, active on-demand hourly only) and its region's country.
    capped = DatabasePrice.objects.get(vendor_id="gcp", database_id="db-custom-2-8192", ha="none")
    assert (capped.price_monthly, capped.country_id) == (100.0, "US")
    monthly_unit = DatabasePrice.objects.get(vendor_id="aws", database_id="db.m5.large", unit="month")
    assert monthly_unit.price_monthly is None


def test_each_database_has_its_cheapest_active_on_demand_prices_per_region_in_usd(sync_upstream):
    sync_upstream(databases_catalog())
    eur = exchange_rate("EUR", "USD")

    rows = DatabaseRegionPrice.objects.values_list(
        "vendor_id",
        "database_id",
        "region_id",
        "country_id",
        "min_price",
        "min_price_ondemand",
        "min_price_ondemand_monthly",
    )

    gcp_hourly = round_half_up(0.2 * eur, 4)
    assert sorted(rows) == [
        # r1: 0.178 without HA (0.356 with it); r2: 0.171, the inactive and the monthly-unit prices left out.
        ("aws", "db.m5.large", "r1", "US", 0.178, 0.178, 129.94),
        ("aws", "db.m5.large", "r2", "US", 0.171, 0.171, 124.83),
        ("gcp", "db-custom-2-8192", "r1", "US", gcp_hourly, gcp_hourly, round_half_up(100 * eur, 2)),
        # db-retired has an inactive price only, db-leaving none: no row.
    ]


def test_database_benchmark_scores_are_loaded_but_never_score_a_server(sync_upstream):
    upstream = databases_catalog()
    # A database's score whose resource id is also a server's id, higher than the server's own.
    upstream.insert(
        "benchmark_score",
        vendor_id="aws",
        benchmark_id="stress_ng:bestn",
        resource_type="DATABASE",
        resource_id="m5.large",
        config="{}",
        score=99999,
        status="ACTIVE",
        observed_at=OBSERVED,
    )

    sync_upstream(upstream)

    assert BenchmarkScore.objects.filter(resource_type="database").count() == 1
    assert Server.objects.get(vendor_id="aws", server_id="m5.large").score == 4000


def test_a_catalog_without_the_database_tables_syncs_with_no_databases(sync_upstream):
    sync_upstream(databases_catalog())
    older = sample_catalog()
    older.drop_database_tables()

    run = sync_upstream(older)

    assert run.status == "SUCCEEDED"
    # Recorded as none: a catalog without them, not one loaded by a Keeper that did not read them.
    assert run.rows == {**{table: older.count(table) for table in older.tables()}, **dict.fromkeys(DATABASE_TABLES, 0)}
    assert {table: model.objects.count() for table, model in DATABASE_TABLES.items()} == dict.fromkeys(
        DATABASE_TABLES, 0
    )
    # The history saw them go.
    assert run.changes["database"] == {"removed": 4}
    assert run.changes["database_price"] == {"removed": 8}


def test_unchanged_data_loaded_before_keeper_read_databases_is_loaded_again(sync_upstream):
    upstream = databases_catalog()
    first = sync_upstream(upstream)
    # As a Keeper before managed databases left it: no database rows, and none recorded in its run.
    for model in DATABASE_TABLES.values():
        model.objects.all().delete()
    first.rows = {table: rows for table, rows in first.rows.items() if table not in DATABASE_TABLES}
    first.save()

    reloaded = sync_upstream(upstream, force=False)
    skipped = sync_upstream(upstream, force=False)

    assert (reloaded.status, reloaded.data_hash) == ("SUCCEEDED", first.data_hash)
    assert Database.objects.count() == upstream.count("database")
    assert skipped.status == "SKIPPED", "once loaded, unchanged data is skipped again"


def test_a_database_table_lacking_a_column_is_refused_naming_it(sync_upstream, catalog_state, assert_failed_run):
    sync_upstream(databases_catalog())
    before = catalog_state()
    broken = databases_catalog()
    broken.db.execute("ALTER TABLE database DROP COLUMN security_features")

    with pytest.raises(CatalogSchemaError, match="database table lacks columns: security_features"):
        sync_upstream(broken)

    assert catalog_state() == before
    assert_failed_run("security_features")


def test_a_failure_while_loading_the_databases_leaves_the_previous_catalog(
    sync_upstream, catalog_state, assert_failed_run, api
):
    sync_upstream(databases_catalog())
    before = catalog_state()
    prices_before = sorted(DatabasePrice.objects.values_list("vendor_id", "database_id", "region_id", "ha", "price"))
    minima_before = sorted(Database.objects.values_list("database_id", "min_price", "min_price_ondemand_monthly"))
    stats_before = api.get("/stats").json()
    # A new catalog (new prices, a server more) whose database table repeats a key: upstream's primary key
    # is gone from the copy, Keeper's unique constraint refuses the row after the other tables were written.
    broken = databases_catalog()
    broken.server("aws", "c5.large")
    broken.db.execute("UPDATE database_price SET price = price * 2")
    broken.db.executescript(
        'CREATE TABLE database_copy AS SELECT * FROM "database"; DROP TABLE "database"; '
        'ALTER TABLE database_copy RENAME TO "database"; '
        'INSERT INTO "database" SELECT * FROM "database" WHERE database_id = \'db.m5.large\';'
    )

    # The backend's own error (SQLite's or PostgreSQL's: the importer writes through the raw cursor).
    with pytest.raises(Exception, match=r"(?i)unique"):
        sync_upstream(broken)

    assert catalog_state() == before
    assert sorted(DatabasePrice.objects.values_list("vendor_id", "database_id", "region_id", "ha", "price")) == (
        prices_before
    )
    assert sorted(Database.objects.values_list("database_id", "min_price", "min_price_ondemand_monthly")) == (
        minima_before
    )
    assert api.get("/stats").json() == stats_before
    assert_failed_run("database")


def changed_databases_catalog() -> UpstreamCatalog:
    """`databases_catalog()` re-crawled: aws db.m5.large 0.178 -> 0.19 in r1 (no HA), gcp db-leaving
    retired and removed, gcp db-new added with a price."""
    catalog = databases_catalog()
    catalog.db.execute(
        "UPDATE database_price SET price = 0.19 WHERE database_id = 'db.m5.large' AND region_id = 'r1' AND ha = 'NONE'"
    )
    catalog.db.execute("DELETE FROM database WHERE database_id = 'db-leaving'")
    catalog.database("gcp", "db-new")
    catalog.database_price("gcp", "db-new", price=0.3)
    return catalog


def test_database_changes_are_recorded_and_listed_by_changes(sync_upstream, api):
    sync_upstream(databases_catalog())

    run = sync_upstream(changed_databases_catalog())

    assert run.changes["database"] == {"added": 1, "removed": 1}
    assert run.changes["database_price"] == {"added": 1, "changed": 1}
    assert "database_storage_price" not in run.changes and "database_storage" not in run.changes
    response = api.get("/changes", {"table": "database_price", "kind": "changed"})
    assert response.status_code == 200, response.content
    [change] = response.json()
    assert (change["sync"], change["field"], change["old"], change["new"], change["currency"]) == (
        run.pk,
        "price",
        0.178,
        0.19,
        "USD",
    )
    assert change["key"] == {
        "vendor_id": "aws",
        "region_id": "r1",
        "database_id": "db.m5.large",
        "allocation": "ondemand",
        "ha": "none",
        "ha_strategy": "none",
    }
    added = api.get("/changes", {"table": "database", "kind": "added"}).json()
    assert [(row["key"], row["new"]["status"]) for row in added] == [
        ({"vendor_id": "gcp", "database_id": "db-new"}, "active")
    ]
    removed = api.get("/changes", {"table": "database", "kind": "removed"}).json()
    assert [(row["key"], row["old"]["status"]) for row in removed] == [
        ({"vendor_id": "gcp", "database_id": "db-leaving"}, "planned_for_retirement")
    ]


def test_stats_count_the_databases_and_their_prices(sync_upstream, api):
    upstream = databases_catalog()
    sync_upstream(upstream)

    def count(sql: str) -> int:
        return upstream.db.execute(sql).fetchone()[0]

    assert {key: api.get("/stats").json()[key] for key in ("databases", "active_databases", "database_prices")} == {
        "databases": upstream.count("database"),
        "active_databases": count("SELECT count(*) FROM database WHERE status = 'ACTIVE'"),
        "database_prices": upstream.count("database_price"),
    }
    gcp = api.get("/stats", {"vendor": "gcp", "only_active": "true"}).json()
    assert (gcp["databases"], gcp["active_databases"], gcp["database_prices"]) == (
        count("SELECT count(*) FROM database WHERE vendor_id = 'gcp' AND status = 'ACTIVE'"),
        count("SELECT count(*) FROM database WHERE vendor_id = 'gcp' AND status = 'ACTIVE'"),
        count("SELECT count(*) FROM database_price WHERE vendor_id = 'gcp' AND status = 'ACTIVE'"),
    )


def test_debug_counts_the_databases_per_vendor(sync_upstream, api):
    upstream = databases_catalog()
    upstream.insert(
        "benchmark_score",
        vendor_id="gcp",
        benchmark_id="stress_ng:bestn",
        resource_type="DATABASE",
        resource_id="db-custom-2-8192",
        config="{}",
        score=1000,
        status="ACTIVE",
        observed_at=OBSERVED,
    )
    sync_upstream(upstream)

    response = api.get("/debug")

    assert response.status_code == 200, response.content
    assert response.json()["databases"] == [
        {"vendor_id": "aws", "all": 1, "active": 1, "evaluated": 0, "missing": 1, "inactive": 0},
        # db-retired (and its inactive price) and db-leaving (no price) are not counted active.
        {"vendor_id": "gcp", "all": 3, "active": 1, "evaluated": 1, "missing": 0, "inactive": 2},
    ]


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("database", ["db.m5.large", "db-custom-2-8192", "db-retired"]),
        ("databaseprice", ["db.m5.large", "multi-zone", "passive-standby"]),
        ("databasestorage", ["gp3", "backup"]),
        ("databasestorageprice", ["gp3", "0.138"]),
    ],
)
def test_the_admin_lists_the_databases_and_their_prices_read_only(sync_upstream, admin_client, model, shown):
    sync_upstream(databases_catalog())

    response = admin_client.get(reverse(f"admin:catalog_{model}_changelist"))

    assert response.status_code == 200
    page = response.content.decode()
    assert all(text in page for text in shown), [text for text in shown if text not in page]
    assert admin_client.get(reverse(f"admin:catalog_{model}_add")).status_code == 403


def test_the_admin_shows_a_database_and_a_database_price(sync_upstream, admin_client):
    sync_upstream(databases_catalog())
    row = database("aws", "db.m5.large")
    price = DatabasePrice.objects.filter(vendor_id="aws", database_id="db.m5.large").first()

    page = admin_client.get(reverse("admin:catalog_database_change", args=[row.pk]))
    price_page = admin_client.get(reverse("admin:catalog_databaseprice_change", args=[price.pk]))

    assert page.status_code == 200 and "passive-standby" in page.content.decode()
    assert price_page.status_code == 200 and "db.m5.large" in price_page.content.decode()


# --- the sample catalog's databases -----------------------------------------------------------------------

SAMPLE_TABLES = {
    "country",
    "compliance_framework",
    "vendor",
    "vendor_compliance_link",
    "region",
    "zone",
    "storage",
    "benchmark",
    "server",
    *DATABASE_TABLES,
}
INSERT = re.compile(r'INSERT INTO "?(\w+)"? ')


def sample_databases_catalog() -> UpstreamCatalog:
    """The shared sample catalog without its server prices, scores and descriptions (seconds to load, not a
    minute): its vendors, regions, servers and every database row."""
    catalog = UpstreamCatalog()
    statement = ""
    with lzma.open(SAMPLE, "rt") as dump:
        for line in dump:
            statement += line
            if not sqlite3.complete_statement(statement):
                continue
            found = INSERT.match(statement)
            if found and found.group(1) in SAMPLE_TABLES:
                catalog.db.execute(statement)
            statement = ""
    return catalog


@pytest.mark.skipif(not SAMPLE.exists(), reason="the shared sample catalog is not here")
def test_the_sample_catalogs_databases_sync_with_their_cheapest_prices(sync_upstream):
    upstream = sample_databases_catalog()

    run = sync_upstream(upstream)

    counts = {table: model.objects.count() for table, model in DATABASE_TABLES.items()}
    assert (
        counts
        == {table: upstream.count(table) for table in DATABASE_TABLES}
        == {table: run.rows[table] for table in DATABASE_TABLES}
    )
    assert all(counts.values())
    # The minima as upstream's own rows give them: every sample price is in USD, hourly, untiered.
    assert upstream.db.execute(
        "SELECT count(*) FROM database_price WHERE currency != 'USD' OR unit != 'HOUR' OR price_tiered != '[]'"
    ).fetchone() == (0,)
    expected = {
        (vendor_id, database_id): (
            None if price is None else round_half_up(price, 4),
            None if price is None else round_half_up(price * 730, 2),
        )
        for vendor_id, database_id, price in upstream.db.execute(
            "SELECT d.vendor_id, d.database_id, (SELECT MIN(p.price) FROM database_price p "
            "WHERE p.vendor_id = d.vendor_id AND p.database_id = d.database_id AND p.status = 'ACTIVE' "
            "AND p.allocation = 'ONDEMAND') FROM database d"
        )
    }
    got = {
        (vendor_id, database_id): (price, monthly)
        for vendor_id, database_id, price, ondemand, monthly in Database.objects.values_list(
            "vendor_id", "database_id", "min_price", "min_price_ondemand", "min_price_ondemand_monthly"
        )
        if price == ondemand
    }
    assert got == expected
    assert (
        DatabaseRegionPrice.objects.count()
        == upstream.db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT vendor_id, database_id, region_id FROM database_price "
            "WHERE status = 'ACTIVE' AND allocation = 'ONDEMAND' AND unit = 'HOUR')"
        ).fetchone()[0]
    )
    assert not DatabaseRegionPrice.objects.filter(country_id__isnull=True).exists(), "every region has a country"
    statuses = set(Database.objects.values_list("status", flat=True))
    assert statuses <= {"active", "inactive", "planned_for_retirement", "retired"}
    assert set(DatabasePrice.objects.values_list("ha", flat=True)) <= {"none", "single-zone", "multi-zone"}
