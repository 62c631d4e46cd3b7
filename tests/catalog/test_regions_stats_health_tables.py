"""GET /regions, /stats, /healthcheck and the /table/{name} dumps."""

from datetime import UTC, datetime

import pytest
from django.utils.dateparse import parse_datetime

from apps.catalog.importer import CatalogSchemaError
from apps.catalog.models import SyncRun
from apps.catalog.serializers import TABLE_SERIALIZERS, RegionWithVendorSerializer
from apps.catalog.services import catalog_sync
from tests.catalog.upstream import OBSERVED, UpstreamCatalog, sample_catalog

TABLES = ["country", "compliance_framework", "vendor", "region", "zone", "server", "storage", "benchmark"]
# Natural keys of each dumped table, in its order.
KEYS = {
    "country": ["country_id"],
    "compliance_framework": ["compliance_framework_id"],
    "vendor": ["vendor_id"],
    "region": ["vendor_id", "region_id"],
    "zone": ["vendor_id", "region_id", "zone_id"],
    "server": ["vendor_id", "server_id"],
    "storage": ["vendor_id", "storage_id"],
    "benchmark": ["benchmark_id"],
}


def regions_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("aws", regions=3, homepage="https://aws.amazon.com")
    catalog.vendor("gcp", regions=2)
    catalog.vendor("hcloud", country_id="DE", regions=1)
    return catalog


def test_regions_lists_every_region_with_its_vendor_nested(sync_upstream, api):
    catalog = regions_catalog()
    sync_upstream(catalog)
    vendors = {row["vendor_id"]: row for row in api.get("/table/vendor").json()}

    rows = api.get("/regions").json()

    assert len(rows) == catalog.count("region")
    assert [(row["vendor_id"], row["region_id"]) for row in rows] == sorted(
        catalog.db.execute("SELECT vendor_id, region_id FROM region")
    )
    for row in rows:
        assert row["vendor"] == vendors[row["vendor_id"]]
        assert set(row) == {*catalog.columns("region"), "vendor"}


def test_regions_rows_match_their_documented_shape(sync_upstream, api):
    sync_upstream(regions_catalog())

    [row, *_] = api.get("/regions").json()

    assert set(RegionWithVendorSerializer().fields) == set(row)


def test_regions_vendor_filter_takes_repeated_keys(sync_upstream, api):
    catalog = regions_catalog()
    sync_upstream(catalog)

    def regions_of(*vendors: str) -> list[tuple[str, str]]:
        marks = ", ".join("?" * len(vendors))
        query = f"SELECT vendor_id, region_id FROM region WHERE vendor_id IN ({marks})"
        return sorted(catalog.db.execute(query, vendors))

    for vendors in (["gcp"], ["aws", "hcloud"]):
        rows = api.get("/regions", {"vendor": vendors}).json()
        assert [(row["vendor_id"], row["region_id"]) for row in rows] == regions_of(*vendors)


def test_regions_with_an_unknown_vendor_or_parameter_is_a_400(sync_upstream, http):
    sync_upstream(regions_catalog())

    unknown_vendor = http.get("/regions", {"vendor": "nosuchcloud"})
    unknown_parameter = http.get("/regions", {"country": "DE"})

    assert (unknown_vendor.status_code, list(unknown_vendor.json()["errors"])) == (400, ["vendor"])
    assert (unknown_parameter.status_code, list(unknown_parameter.json()["errors"])) == (400, ["country"])


def test_stats_counts_the_catalog(loaded_catalog, api):
    upstream = sample_catalog()
    active = upstream.db.execute("SELECT count(*) FROM server WHERE status = 'ACTIVE'").fetchone()[0]

    stats = api.get("/stats").json()

    assert stats == {
        "vendors": upstream.count("vendor"),
        "regions": upstream.count("region"),
        "zones": upstream.count("zone"),
        "servers": upstream.count("server"),
        "active_servers": active,
        "server_prices": upstream.count("server_price"),
        "benchmarks": upstream.count("benchmark"),
        "benchmark_scores": upstream.count("benchmark_score"),
        "databases": upstream.count("database"),
        "active_databases": upstream.count("database"),
        "database_prices": upstream.count("database_price"),
        "last_synced_at": stats["last_synced_at"],
    }
    assert parse_datetime(stats["last_synced_at"]) == loaded_catalog.finished_at


def test_stats_of_an_empty_catalog_are_zeros(db, api):
    stats = api.get("/stats").json()

    assert stats.pop("last_synced_at") is None
    assert set(stats.values()) == {0}


def test_stats_rejects_parameters(loaded_catalog, http):
    # `vendor` and `only_active` are its parameters (tests/catalog/test_debug.py); others are refused.
    response = http.get("/stats", {"country": "US"})

    assert (response.status_code, list(response.json()["errors"])) == (400, ["country"])


def test_healthcheck_is_a_503_with_a_json_body_before_any_sync(db, http):
    response = http.get("/healthcheck")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["database_hash"] is None
    assert body["status"] != "ok"


def test_healthcheck_reports_the_loaded_catalog(loaded_catalog, api):
    response = api.get("/healthcheck")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database_hash"] == loaded_catalog.data_hash
    assert body["schema_version"] == loaded_catalog.schema_version
    assert parse_datetime(body["database_last_updated"]) == loaded_catalog.finished_at
    assert body["last_sync_status"] == "SUCCEEDED"
    assert body["packages"]["django"]


def failing_sync(tmp_path) -> None:
    path = UpstreamCatalog(schema_version="000000000000").save(tmp_path / "unsupported.db")
    with pytest.raises(CatalogSchemaError):
        catalog_sync(source=str(path))


def test_healthcheck_stays_up_after_a_failed_sync_and_reports_it(loaded_catalog, api, tmp_path):
    failing_sync(tmp_path)

    body = api.get("/healthcheck").json()

    assert body["database_hash"] == loaded_catalog.data_hash
    assert body["last_sync_status"] == SyncRun.objects.latest().status == "FAILED"


def test_healthcheck_stays_503_while_only_failed_syncs_happened(db, http, tmp_path):
    failing_sync(tmp_path)

    response = http.get("/healthcheck")

    assert response.status_code == 503
    assert response.json()["last_sync_status"] == "FAILED"


def tables_catalog() -> UpstreamCatalog:
    catalog = sample_catalog()
    catalog.storage("aws", "gp3", storage_type="SSD", max_iops=16000, min_size=1, max_size=16384)
    catalog.storage("aws", "st1", storage_type="HDD")
    catalog.storage("hcloud", "volume", storage_type="NETWORK")
    return catalog


@pytest.mark.parametrize("table", TABLES)
def test_a_table_dump_has_every_upstream_row_with_the_upstream_columns(sync_upstream, api, table):
    catalog = tables_catalog()
    sync_upstream(catalog)
    keys = KEYS[table]
    upstream_keys = sorted(catalog.db.execute(f'SELECT {", ".join(keys)} FROM "{table}"'))

    rows = api.get(f"/table/{table}").json()

    assert [tuple(row[key] for key in keys) for row in rows] == upstream_keys
    for row in rows:
        assert list(row) == catalog.columns(table)
        assert "id" not in row


@pytest.mark.parametrize("table", TABLES)
def test_a_table_dump_matches_its_documented_shape(sync_upstream, api, table):
    sync_upstream(tables_catalog())

    [row, *_] = api.get(f"/table/{table}").json()

    assert list(TABLE_SERIALIZERS[table]().fields) == list(row)


def test_the_server_table_has_no_derived_prices(loaded_catalog, api):
    rows = api.get("/table/server").json()

    assert rows
    assert not {"min_price", "score", "score_per_price", "price"} & set(rows[0])


def test_table_values_read_as_upstream(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "s", hw_virt=1, cpu_flags='["avx2", "sse4_2"]', memory_amount=2048, cpu_speed=2.9)
    sync_upstream(catalog)

    [row] = api.get("/table/server").json()

    assert (row["hw_virt"], row["cpu_flags"], row["memory_amount"], row["cpu_speed"]) == (
        True,
        ["avx2", "sse4_2"],
        2048,
        2.9,
    )
    # Upstream timestamps are naive UTC.
    assert parse_datetime(row["observed_at"]) == datetime.fromisoformat(OBSERVED).replace(tzinfo=UTC)


def test_table_dumps_are_empty_lists_before_any_sync(db, api):
    assert {table: api.get(f"/table/{table}").json() for table in TABLES} == {table: [] for table in TABLES}


def test_a_table_dump_rejects_parameters(loaded_catalog, http):
    response = http.get("/table/server", {"limit": 10})

    assert (response.status_code, list(response.json()["errors"])) == (400, ["limit"])
