"""GET /databases, the managed-database search, on a small catalog built here: every parameter and error of the
newest Spare Cores API, the default statuses, the ordering, places with live prices, the extra storage billing
rule, currencies, paging, the OpenAPI document and the AI assist for it.

Expected rows are derived from the fixture below (DATABASES, SERVERS, the storage prices), never hard-coded.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from apps.catalog import ai, choices
from apps.catalog.filters.databases import DatabaseFilterSet
from apps.catalog.models import Database
from apps.catalog.pricing import exchange_rate, round_half_up, tiered_price
from apps.catalog.serializers import VendorSerializer
from apps.catalog.serializers_databases import DatabaseSearchResultSerializer
from apps.catalog.sql import table_columns
from tests.catalog.test_ai_assist import provider  # noqa: F401 (the fake AI provider fixture)
from tests.catalog.upstream import UpstreamCatalog

HOURS = 730

# --- The catalog -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    price: float
    region: str = "r1"
    currency: str = "USD"
    ha: str = "NONE"
    ha_strategy: str = "NONE"
    status: str = "ACTIVE"
    tiers: tuple = ()

    @property
    def usd(self) -> float:
        return round_half_up(self.price * exchange_rate(self.currency, "USD"), 4)

    @property
    def monthly_usd(self) -> float:
        own = round_half_up(tiered_price(list(self.tiers), HOURS, self.price), 2)
        return round_half_up(own * exchange_rate(self.currency, "USD"), 2)


@dataclass(frozen=True)
class Db:
    vendor: str
    id: str
    server: str | None = None
    prices: tuple[Price, ...] = ()
    columns: dict[str, Any] = field(default_factory=dict)

    def get(self, column: str) -> Any:
        return self.columns.get(column, DEFAULTS.get(column))

    def priced(self, regions: set[str] | None = None) -> list[Price]:
        return [p for p in self.prices if p.status == "ACTIVE" and (regions is None or p.region in regions)]

    def hourly(self, regions: set[str] | None = None) -> float | None:
        return min((p.usd for p in self.priced(regions)), default=None)

    def monthly(self, regions: set[str] | None = None) -> float | None:
        return min((p.monthly_usd for p in self.priced(regions)), default=None)


# What UpstreamCatalog.database() writes when a column is not given (tests/catalog/upstream.py).
DEFAULTS: dict[str, Any] = {
    "vcpus": 2,
    "memory_amount": 8192,
    "engine_versions": ["16", "17"],
    "ha": ["multi-zone", "none"],
    "ha_strategy": ["passive-standby", "none"],
    "max_read_replicas": 5,
    "storage_size": 0,
    "storage_extra_min": 20,
    "storage_extra_max": 65536,
    "continuous_backups": 7,
    "sla": 99.95,
    "security_features": ["ip-filtering", "enforced-tls"],
    "status": "ACTIVE",
    "auto_upgrade_versions": 1,
    "storage_extra_autosize": 1,
    "disk_encryption": 1,
    "scheduled_backups": 1,
}
FEATURES = [
    "storage_extra_autosize",
    "disk_encryption",
    "scheduled_backups",
    "connection_pool",
    "system_monitoring",
    "database_monitoring",
    "auto_upgrade_versions",
    "autotuning_advice",
    "autotuning_apply",
    "custom_config",
    "custom_extensions",
]


def _features(*values: int | None) -> dict[str, int | None]:
    return dict(zip(FEATURES, values, strict=True))


# Regions: aws r1, r2, r3 (US) and fra (DE); gcp r1 (US) and ew4 (DE); ovh gra (FR).
REGION_COUNTRY = {("aws", "fra"): "DE", ("gcp", "ew4"): "DE", ("ovh", "gra"): "FR"}
SERVERS = {
    ("aws", "m5.large"): dict(
        cpu_architecture="X86_64",
        cpu_allocation="DEDICATED",
        network_speed_baseline=0.75,
        network_speed_max=10,
        network_storage_speed_baseline=0.5,
        network_storage_speed_max=4.75,
    ),
    ("aws", "m7g.large"): dict(
        cpu_architecture="ARM64",
        cpu_allocation="DEDICATED",
        network_speed_baseline=1.5,
        network_speed_max=12.5,
        network_storage_speed_baseline=1.25,
        network_storage_speed_max=10,
    ),
    ("gcp", "n2"): dict(
        cpu_architecture="X86_64", cpu_allocation="SHARED", network_speed_baseline=2, network_speed_max=16
    ),
}
GCP_CAP = ({"lower": 0, "upper": 500, "price": 0.2}, {"lower": 500, "upper": "Infinity", "price": 0})
# In catalog order (the upstream file's), which breaks ties.
DATABASES = [
    Db(
        "aws",
        "db.m5.large",
        server="m5.large",
        prices=(
            Price(0.178),
            Price(0.356, ha="MULTI_ZONE", ha_strategy="PASSIVE_STANDBY"),
            Price(0.21, region="fra"),
        ),
        columns=dict(connection_pool=0, system_monitoring=1, database_monitoring=0, autotuning_advice=1)
        | dict(autotuning_apply=0, custom_config=1, custom_extensions=1),
    ),
    Db(
        "aws",
        "db.m7g.large",
        server="m7g.large",
        prices=(
            Price(0.15, ha="MULTI_ZONE", ha_strategy="READABLE_CLUSTER"),
            Price(0.14, region="r2", ha="MULTI_ZONE", ha_strategy="PASSIVE_STANDBY"),
        ),
        columns=dict(
            ha=["multi-zone"],
            ha_strategy=["readable-cluster", "passive-standby"],
            security_features=["ip-filtering", "enforced-tls", "audit-logging"],
            engine_versions=["15", "16", "17", "18"],
            storage_size=100,
            storage_extra_min=5,
            storage_extra_max=1000,
            continuous_backups=35,
            max_read_replicas=15,
            sla=99.99,
        )
        | _features(0, 1, 1, 1, 1, 1, 0, 0, 0, 0, None),
    ),
    Db(
        "aws",
        "db.big",
        prices=(Price(1.2),),
        columns=dict(
            vcpus=16,
            memory_amount=65536,
            ha=["none"],
            ha_strategy=["none"],
            security_features=["ip-filtering"],
            engine_versions=["17"],
            storage_size=None,
            storage_extra_min=None,
            storage_extra_max=None,
            continuous_backups=None,
            max_read_replicas=None,
            sla=None,
            status="PLANNED_FOR_RETIREMENT",
        )
        | _features(None, 0, None, None, None, None, None, None, None, None, None),
    ),
    Db(
        "gcp",
        "db-custom",
        server="n2",
        prices=(
            Price(0.2, currency="EUR", tiers=GCP_CAP),
            Price(0.4, currency="EUR", ha="SINGLE_ZONE", ha_strategy="READABLE_CLUSTER"),
            Price(0.25, region="ew4", currency="EUR"),
        ),
        columns=dict(
            vcpus=4,
            memory_amount=16384,
            ha=["single-zone", "none"],
            ha_strategy=["readable-cluster", "none"],
            security_features=["private-network"],
            engine_versions=["17"],
            storage_size=None,
            storage_extra_min=10,
            storage_extra_max=100,
            max_read_replicas=10,
        )
        | _features(1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0),
    ),
    Db("gcp", "db-retired", prices=(Price(0.3, status="INACTIVE"),), columns=dict(status="RETIRED")),
    Db("gcp", "db-novcpu", prices=(Price(0.05),), columns=dict(vcpus=None, memory_amount=None)),
    Db("gcp", "db-inactive", prices=(Price(0.03),), columns=dict(status="INACTIVE")),
    Db("aws", "db.unpriced", server="m5.large"),
    # The same cheapest price as db.m5.large: the catalog order puts it after.
    Db("ovh", "ovh-db", prices=(Price(0.178, region="gra"),), columns=dict(memory_amount=4096, storage_size=50)),
]
BY_ID = {db.id: db for db in DATABASES}

# Database storages and their prices ($ per GB-month): the cheapest data storage of a vendor (in the places asked)
# bills the extra storage; backups, inactive prices and ovh (none) do not.
GP3_MIN, GP3_R1, GP3_R2, GP3_FRA = 10, 0.10, 0.11, 0.15
SSD_MIN, SSD_R1, SSD_EW4 = 30, 0.2, 0.25
BENCHMARK = "pgbench:ro"
SCORES = [  # (vendor, database, score, config)
    ("aws", "db.m5.large", 1000.0, {"clients": 1}),
    ("aws", "db.m5.large", 1500.0, {"clients": 8}),
    ("aws", "db.m7g.large", 1200.0, {"clients": 1}),
    ("gcp", "db-custom", 800.0, {"clients": 8}),
]


def best_score(db: Db, config: dict | None = None) -> float | None:
    found = [s for v, d, s, c in SCORES if (v, d) == (db.vendor, db.id) and (config is None or c == config)]
    return max(found, default=None)


def databases_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.country("DE", "Europe")
    catalog.country("FR", "Europe")
    catalog.vendor("aws", regions=3)
    catalog.region("aws", "fra", country_id="DE")
    catalog.vendor("gcp", regions=1)
    catalog.region("gcp", "ew4", country_id="DE")
    catalog.vendor("ovh", country_id="FR", regions=0)
    catalog.region("ovh", "gra", country_id="FR")
    for (vendor_id, server_id), columns in SERVERS.items():
        catalog.server(vendor_id, server_id, **columns)
    for db in DATABASES:
        columns = {k: v for k, v in db.columns.items()}
        catalog.database(db.vendor, db.id, server_id=db.server, **columns)
        for p in db.prices:
            catalog.database_price(
                db.vendor,
                db.id,
                price=p.price,
                region_id=p.region,
                currency=p.currency,
                ha=p.ha,
                ha_strategy=p.ha_strategy,
                status=p.status,
                tiers=list(p.tiers),
            )
    catalog.database_storage("aws", "gp3", min_size=GP3_MIN)
    catalog.database_storage("aws", "io1", min_size=100)
    catalog.database_storage("aws", "gp2", min_size=1)
    catalog.database_storage("aws", "bak", scope="BACKUP", min_size=None, max_size=None)
    for region_id, price in (("r1", GP3_R1), ("r2", GP3_R2), ("fra", GP3_FRA)):
        catalog.database_storage_price("aws", "gp3", price=price, region_id=region_id)
    catalog.database_storage_price("aws", "io1", price=0.2)
    catalog.database_storage_price("aws", "gp2", price=0.001, status="INACTIVE")
    catalog.database_storage_price("aws", "bak", price=0.01)
    catalog.database_storage("gcp", "ssd", min_size=SSD_MIN)
    catalog.database_storage_price("gcp", "ssd", price=SSD_R1)
    catalog.database_storage_price("gcp", "ssd", price=SSD_EW4, region_id="ew4")
    catalog.benchmark(BENCHMARK)
    catalog.benchmark("pgbench:rw")
    for vendor_id, database_id, score, config in SCORES:
        catalog.score(vendor_id, database_id, BENCHMARK, score, config, resource_type="DATABASE")
    catalog.score("aws", "db.big", "pgbench:rw", 500.0, resource_type="DATABASE")
    # A server's score under a database's id: not the database's.
    catalog.score("aws", "db.big", BENCHMARK, 9999.0)
    return catalog


@pytest.fixture
def catalog(sync_upstream):
    sync_upstream(databases_catalog())


@pytest.fixture
def search(api) -> Callable[..., list[dict[str, Any]]]:
    """GET /databases with the given parameters (lists become repeated keys); asserts a 200."""

    def get(**params: Any) -> list[dict[str, Any]]:
        response = api.get("/databases", params)
        assert response.status_code == 200, response.content
        return response.json()

    return get


@pytest.fixture
def authenticated(api, django_user_model):
    api.force_login(django_user_model.objects.create_user("searcher"))
    return api


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["database_id"] for row in rows]


ORDERABLE = ("ACTIVE", "PLANNED_FOR_RETIREMENT")


def listed(
    keep: Callable[[Db], bool] = lambda db: True,
    *,
    statuses: tuple[str, ...] | None = ORDERABLE,
    price: Callable[[Db], float | None] = Db.hourly,
) -> list[str]:
    """The ids /databases lists by default (vcpus known, an orderable status, a price), kept by `keep`,
    cheapest first, ties in catalog order."""
    found = [
        db
        for db in DATABASES
        if db.get("vcpus") is not None
        and (statuses is None or db.get("status") in statuses)
        and price(db) is not None
        and keep(db)
    ]
    return [db.id for db in sorted(found, key=lambda db: price(db))]


def server(db: Db) -> dict[str, Any] | None:
    return SERVERS.get((db.vendor, db.server)) if db.server else None


def on_server(column: str, test: Callable[[Any], bool]) -> Callable[[Db], bool]:
    return lambda db: server(db) is not None and server(db).get(column) is not None and test(server(db)[column])


def column(name: str, test: Callable[[Any], bool]) -> Callable[[Db], bool]:
    return lambda db: db.get(name) is not None and test(db.get(name))


# --- Defaults ----------------------------------------------------------------------------------


def test_by_default_orderable_priced_databases_with_known_vcpus_are_listed_cheapest_first(catalog, search):
    rows = search()

    assert ids(rows) == listed()
    # Ties keep the catalog's order; retired, inactive, unpriced databases and those without vCPUs are left out.
    assert ids(rows).index("db.m5.large") + 1 == ids(rows).index("ovh-db")
    assert {"db-retired", "db-inactive", "db.unpriced", "db-novcpu"}.isdisjoint(ids(rows))
    assert "db.big" in ids(rows)  # planned for retirement: still orderable
    for row in rows:
        db = BY_ID[row["database_id"]]
        assert (row["min_price"], row["price"], row["min_price_ondemand"]) == (db.hourly(),) * 3
        assert row["min_price_ondemand_monthly"] == db.monthly()
        assert row["price_breakdown"] == {
            "compute_min_price": db.hourly(),
            "compute_min_price_ondemand": db.hourly(),
            "compute_min_price_ondemand_monthly": db.monthly(),
            "extra_storage_hourly": 0,
            "extra_storage_monthly": 0,
        }
        assert (row["selected_benchmark_score"], row["selected_benchmark_score_per_price"]) == (None, None)


def test_a_row_has_every_database_column_its_vendor_and_the_documented_fields(catalog, search):
    [row] = [row for row in search() if row["database_id"] == "db.m7g.large"]
    db = BY_ID["db.m7g.large"]

    assert list(row) == list(DatabaseSearchResultSerializer().fields)
    assert set(table_columns(Database)) <= set(row)
    assert set(row["vendor"]) == set(VendorSerializer().fields)
    assert (row["vendor"]["vendor_id"], row["server_id"]) == ("aws", db.server)
    for name in ("ha", "ha_strategy", "security_features", "engine_versions", "storage_size", "sla"):
        assert row[name] == db.get(name)
    assert (row["status"], row["engine"], row["custom_extensions"]) == ("active", "postgresql", None)
    assert (row["connection_pool"], row["auto_upgrade_versions"]) == (True, False)
    assert row["api_reference_object"] == {"instance_class": "db.m7g.large"}


# --- One parameter at a time: each keeps exactly the right rows ---------------------------------

FILTERS: list[tuple[dict[str, Any], Callable[[Db], bool]]] = [
    ({"partial_name_or_id": "M7G"}, lambda db: "m7g" in db.id),
    ({"partial_name_or_id": "db_"}, lambda db: "db_" in db.id),  # `_` is no wildcard: nothing
    ({"engine_version": "18"}, column("engine_versions", lambda v: "18" in v)),
    ({"engine_version": "1"}, lambda db: False),  # an element, not a substring
    ({"vcpus_min": 4}, column("vcpus", lambda v: v >= 4)),
    ({"vcpus_max": 2}, column("vcpus", lambda v: v <= 2)),
    ({"memory_min": 16}, column("memory_amount", lambda v: v >= 16 * 1024)),
    ({"architecture": "arm64"}, on_server("cpu_architecture", lambda v: v == "ARM64")),
    ({"architecture": ["arm64", "x86_64"]}, on_server("cpu_architecture", lambda v: True)),
    ({"cpu_allocation": "shared"}, on_server("cpu_allocation", lambda v: v == "SHARED")),
    ({"network_speed_baseline_min": 1}, on_server("network_speed_baseline", lambda v: v >= 1)),
    ({"network_speed_max_min": 12}, on_server("network_speed_max", lambda v: v >= 12)),
    ({"network_storage_speed_baseline_min": 1}, on_server("network_storage_speed_baseline", lambda v: v >= 1)),
    ({"network_storage_speed_max_min": 5}, on_server("network_storage_speed_max", lambda v: v >= 5)),
    ({"ha": "multi-zone"}, column("ha", lambda v: "multi-zone" in v)),
    ({"ha": ["multi-zone", "none"]}, column("ha", lambda v: {"multi-zone", "none"} <= set(v))),
    ({"ha": "SINGLE_ZONE"}, column("ha", lambda v: "single-zone" in v)),
    ({"ha_strategy": "readable-cluster"}, column("ha_strategy", lambda v: "readable-cluster" in v)),
    (
        {"ha_strategy": ["readable-cluster", "passive-standby"]},
        column("ha_strategy", lambda v: {"readable-cluster", "passive-standby"} <= set(v)),
    ),
    (
        {"security_features": ["enforced-tls", "audit-logging"]},
        column("security_features", lambda v: {"enforced-tls", "audit-logging"} <= set(v)),
    ),
    ({"security_features": "private-network"}, column("security_features", lambda v: "private-network" in v)),
    ({"max_read_replicas_min": 10}, column("max_read_replicas", lambda v: v >= 10)),
    ({"continuous_backups_min": 10}, column("continuous_backups", lambda v: v >= 10)),
    ({"continuous_backups_min": 0}, lambda db: True),  # 0 is no filter: unknown windows stay
    ({"sla_min": 99.99}, column("sla", lambda v: v >= 99.99)),
    ({"storage_size": 50}, column("storage_size", lambda v: v >= 50)),
    ({"vendor": "gcp"}, lambda db: db.vendor == "gcp"),
    ({"vendor": ["gcp", "ovh"]}, lambda db: db.vendor in ("gcp", "ovh")),
    *(({name: "true"}, column(name, lambda v: v == 1)) for name in FEATURES),
    *(({name: "false"}, column(name, lambda v: v == 0)) for name in FEATURES),
]


@pytest.mark.parametrize(("params", "keep"), FILTERS, ids=[json.dumps(params) for params, _ in FILTERS])
def test_each_filter_keeps_exactly_the_databases_it_describes(catalog, search, params, keep):
    assert ids(search(**params)) == listed(keep)


def test_each_filter_but_a_zero_backup_window_narrows_this_catalogs_list():
    narrowing = [params for params, keep in FILTERS if listed(keep) != listed()]

    assert [params for params, _ in FILTERS if params not in narrowing] == [{"continuous_backups_min": 0}]


def test_filters_combine(catalog, search):
    params = {"vendor": "aws", "ha": "multi-zone", "memory_min": 8, "security_features": "enforced-tls"}
    expected = listed(
        lambda db: (
            db.vendor == "aws"
            and "multi-zone" in db.get("ha")
            and db.get("memory_amount") >= 8192
            and "enforced-tls" in db.get("security_features")
        )
    )

    assert ids(search(**params)) == expected
    assert expected


# --- Statuses -------------------------------------------------------------------------------------


def test_only_active_lists_active_databases_only(catalog, search):
    assert ids(search(only_active="true")) == listed(statuses=("ACTIVE",))
    assert "db.big" not in ids(search(only_active="true"))


def test_only_active_false_keeps_the_orderable_default(catalog, search):
    assert ids(search(only_active="false")) == listed()


def test_only_orderable_false_lists_every_status_with_a_price(catalog, search):
    rows = search(only_orderable="false")

    assert ids(rows) == listed(statuses=None)
    assert "db-inactive" in ids(rows)


def test_without_a_status_filter_and_a_price_ordering_unpriced_databases_are_listed_too(catalog, search):
    rows = search(only_orderable="false", order_by="database_id", limit=-1)

    expected = sorted(
        (db for db in DATABASES if db.get("vcpus") is not None), key=lambda db: (db.id, DATABASES.index(db))
    )
    assert ids(rows) == [db.id for db in expected]
    unpriced = next(row for row in rows if row["database_id"] == "db.unpriced")
    assert (unpriced["min_price"], unpriced["price"]) == (None, None)
    assert set(unpriced["price_breakdown"].values()) == {None}


# --- Ordering ------------------------------------------------------------------------------------


def test_descending_order_keeps_ties_in_catalog_order(catalog, search):
    rows = search(order_dir="desc")

    expected = sorted(listed(), key=lambda i: (-BY_ID[i].hourly(), DATABASES.index(BY_ID[i])))
    assert ids(rows) == expected


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_database_column_orders_with_nulls_first_ascending_and_last_descending(catalog, search, direction):
    rows = search(order_by="sla", order_dir=direction)

    sign = -1 if direction == "desc" else 1
    in_catalog_order = [db for db in DATABASES if db.id in listed()]
    unknown = [db.id for db in in_catalog_order if db.get("sla") is None]
    # Ties by the catalog order, not by price.
    by_sla = [
        db.id
        for db in sorted(
            (db for db in in_catalog_order if db.get("sla") is not None), key=lambda db: sign * db.get("sla")
        )
    ]
    assert ids(rows) == (unknown + by_sla if direction == "asc" else by_sla + unknown)
    assert unknown and len(set(BY_ID[i].get("sla") for i in by_sla)) < len(by_sla)


def test_the_monthly_price_orders_by_the_month(catalog, search):
    assert ids(search(order_by="min_price_ondemand_monthly")) == listed(price=Db.monthly)
    # gcp's hourly price is capped at 500 hours: dearer by the hour than db.m5.large, cheaper by the month.
    assert listed(price=Db.monthly) != listed()


def test_upstreams_database_scores_no_database_has(catalog, search):
    assert ids(search(order_by="score")) == [db.id for db in DATABASES if db.id in listed()]
    assert search(order_by="score_per_price") == []


@pytest.mark.parametrize("order_by", ["nope", "min_price_spot", "cpu_cores"])
def test_an_unknown_order_by_is_a_400(catalog, api, order_by):
    response = api.get("/databases", {"order_by": order_by})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["order_by"]


# --- Benchmarks --------------------------------------------------------------------------------------


def test_the_selected_benchmark_score_is_the_databases_best(catalog, search):
    rows = search(benchmark_id=BENCHMARK)

    assert ids(rows) == listed()
    for row in rows:
        db = BY_ID[row["database_id"]]
        assert row["selected_benchmark_score"] == best_score(db)
        expected = None if best_score(db) is None else best_score(db) / db.hourly()
        assert row["selected_benchmark_score_per_price"] == pytest.approx(expected)
    # db.big has a server's score under its id, and another benchmark's: neither is its score.
    assert next(row for row in rows if row["database_id"] == "db.big")["selected_benchmark_score"] is None


def test_a_benchmark_config_selects_its_scores(catalog, search):
    config = {"clients": 1}
    rows = search(benchmark_id=BENCHMARK, benchmark_config=json.dumps(config))

    assert {row["database_id"]: row["selected_benchmark_score"] for row in rows} == {
        i: best_score(BY_ID[i], config) for i in listed()
    }


def test_ordering_by_the_selected_score_leaves_out_unscored_databases(catalog, search):
    rows = search(benchmark_id=BENCHMARK, order_by="selected_benchmark_score", order_dir="desc")
    per_price = search(benchmark_id=BENCHMARK, order_by="selected_benchmark_score_per_price", order_dir="desc")

    scored = [i for i in listed() if best_score(BY_ID[i]) is not None]
    assert ids(rows) == sorted(scored, key=lambda i: -best_score(BY_ID[i]))
    assert ids(per_price) == sorted(scored, key=lambda i: -best_score(BY_ID[i]) / BY_ID[i].hourly())


def test_benchmark_score_filters(catalog, search):
    at_least = sorted(s for *_, s, _ in SCORES)[1]
    per_price = 8500.0

    assert ids(search(benchmark_id=BENCHMARK, benchmark_score_min=at_least)) == listed(
        lambda db: (best_score(db) or 0) >= at_least
    )
    assert ids(search(benchmark_id=BENCHMARK, benchmark_score_per_price_min=per_price)) == listed(
        lambda db: best_score(db) is not None and best_score(db) / db.hourly() >= per_price
    )
    assert 0 < len(listed(lambda db: best_score(db) is not None and best_score(db) / db.hourly() >= per_price)) < 3


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"benchmark_score_min": 1},
            "benchmark_score_min",
            "benchmark_id is required when filtering by benchmark_score or benchmark_score_per_price",
        ),
        (
            {"benchmark_score_per_price_min": 1},
            "benchmark_score_per_price_min",
            "benchmark_id is required when filtering by benchmark_score or benchmark_score_per_price",
        ),
        (
            {"order_by": "selected_benchmark_score"},
            "order_by",
            "benchmark_id is required when ordering by benchmark_score or benchmark_score_per_price",
        ),
        (
            {"order_by": "selected_benchmark_score_per_price"},
            "order_by",
            "benchmark_id is required when ordering by benchmark_score or benchmark_score_per_price",
        ),
    ],
)
def test_benchmark_filters_and_orderings_need_a_benchmark_id(catalog, api, params, field, message):
    response = api.get("/databases", params)

    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}


def test_an_unknown_benchmark_is_a_400(catalog, api):
    response = api.get("/databases", {"benchmark_id": "pgbench:nope"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["benchmark_id"]


# --- Places: live on-demand prices there ------------------------------------------------------------

REGIONS_OF_COUNTRY = {
    country: {region for (_, region), of in REGION_COUNTRY.items() if of == country} for country in ("DE", "FR")
}


@pytest.mark.parametrize(
    ("params", "vendors", "regions"),
    [
        ({"countries": "DE"}, ("aws", "gcp", "ovh"), REGIONS_OF_COUNTRY["DE"]),
        ({"regions": "r2"}, ("aws", "gcp", "ovh"), {"r2"}),
        ({"vendor_regions": "gcp~r1"}, ("gcp",), {"r1"}),
    ],
)
def test_places_rank_by_the_live_prices_there_and_leave_out_databases_not_priced_there(
    catalog, search, params, vendors, regions
):
    rows = search(**params)

    expected = listed(lambda db: db.vendor in vendors, price=lambda db: db.hourly(regions))
    assert ids(rows) == expected
    assert expected and expected != listed()
    for row in rows:
        db = BY_ID[row["database_id"]]
        assert row["min_price"] == row["price_breakdown"]["compute_min_price"] == db.hourly(regions)
        assert row["min_price_ondemand_monthly"] == db.monthly(regions)


def test_place_filters_combine_with_and(catalog, search):
    assert search(regions="r1", countries="DE") == []


def test_unknown_places_are_a_400_naming_them(catalog, api):
    response = api.get("/databases", {"countries": "XX", "vendor_regions": "aws~nowhere"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"countries", "vendor_regions"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"countries": ["US", "DE"]}, "countries"),
        ({"regions": ["r1", "r2", "r3", "fra"]}, "regions"),
        ({"regions": ["r1", "r2"], "vendor_regions": ["aws~r3", "aws~fra"]}, "vendor_regions"),
    ],
)
def test_anonymous_callers_have_the_servers_place_limits(catalog, api, params, field):
    response = api.get("/databases", params)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert "without authentication" in response.json()["errors"][field][0]


def test_authenticated_callers_may_name_more_places(catalog, authenticated):
    response = authenticated.get("/databases", {"countries": ["US", "DE"]})

    assert response.status_code == 200
    us_and_de = {"r1", "r2", "r3"} | REGIONS_OF_COUNTRY["DE"]  # ovh's only region is in France
    assert ids(response.json()) == listed(price=lambda db: db.hourly(us_and_de))
    assert ids(response.json()) != listed()


# --- Extra storage: the billing rule --------------------------------------------------------------

# Per extra_storage_size: each listed database's monthly cost, from the fixture's storage prices. aws bills gp3
# (its cheapest active data storage: the cheaper backup storage and the inactive gp2 price do not count), gcp ssd;
# ovh has no database storage, so its database is left out.
STORAGE_CASES = {
    50: {
        "db.m5.large": 50 * GP3_R1,  # needed - bundled (0)
        "db.m7g.large": 0.0,  # the bundled 100 GB cover it
        "db.big": 50 * GP3_R1,  # no known maximum: not excluded
        "db-custom": 50 * SSD_R1,
    },
    15: {
        "db.m5.large": 20 * GP3_R1,  # its storage_extra_min (20) is the least billed
        "db.m7g.large": 0.0,
        "db.big": 15 * GP3_R1,  # above gp3's min_size (10)
        "db-custom": SSD_MIN * SSD_R1,  # the product's min_size (30) is the least billed
    },
    500: {
        "db.m5.large": 500 * GP3_R1,
        "db.m7g.large": (500 - 100) * GP3_R1,  # beyond its bundled 100 GB, within its 1000 GB maximum
        "db.big": 500 * GP3_R1,
        # db-custom: bundled (none) + storage_extra_max 100 < 500: excluded
    },
}


@pytest.mark.parametrize("size", sorted(STORAGE_CASES))
def test_extra_storage_is_billed_by_the_rule(catalog, search, size):
    costs = STORAGE_CASES[size]
    rows = search(extra_storage_size=size)

    def total(db: Db) -> float:
        return round_half_up(db.hourly() + costs[db.id] / HOURS, 4)

    assert ids(rows) == [db.id for db in sorted((BY_ID[i] for i in listed() if i in costs), key=total)]
    for row in rows:
        db, monthly = BY_ID[row["database_id"]], costs[row["database_id"]]
        assert row["min_price"] == row["min_price_ondemand"] == total(db)
        assert row["min_price_ondemand_monthly"] == round_half_up(db.monthly() + monthly, 2)
        assert row["price_breakdown"] == {
            "compute_min_price": db.hourly(),
            "compute_min_price_ondemand": db.hourly(),
            "compute_min_price_ondemand_monthly": db.monthly(),
            "extra_storage_hourly": round_half_up(monthly / HOURS, 4),
            "extra_storage_monthly": round_half_up(monthly, 2),
        }


def test_extra_storage_in_places_is_priced_there(catalog, search):
    rows = search(extra_storage_size=50, countries="DE")
    regions = REGIONS_OF_COUNTRY["DE"]
    costs = {"db.m5.large": 50 * GP3_FRA, "db-custom": 50 * SSD_EW4}

    assert {row["database_id"]: row["price_breakdown"]["extra_storage_monthly"] for row in rows} == {
        i: round_half_up(cost, 2) for i, cost in costs.items()
    }
    for row in rows:
        db = BY_ID[row["database_id"]]
        assert row["min_price"] == round_half_up(db.hourly(regions) + costs[db.id] / HOURS, 4)


def test_extra_storage_monthly_allocation_adds_the_month(catalog, search):
    rows = search(extra_storage_size=50, best_price_allocation="MONTHLY")

    costs = STORAGE_CASES[50]
    expected = sorted((BY_ID[i] for i in listed() if i in costs), key=lambda db: db.monthly() + costs[db.id])
    assert ids(rows) == [db.id for db in expected]
    for row in rows:
        db = BY_ID[row["database_id"]]
        assert row["min_price"] == row["price"] == round_half_up(db.monthly() + costs[db.id], 2)


def test_extra_storage_nowhere_priced_lists_nothing(catalog, search, api):
    assert search(extra_storage_size=50, countries="FR") == []
    response = api.get("/databases", {"extra_storage_size": 50, "countries": "FR", "add_total_count_header": "true"})
    assert response["X-Total-Count"] == "0"


@pytest.mark.parametrize("value", ["-1", "1.5", "lots"])
def test_a_bad_extra_storage_size_is_a_400(catalog, api, value):
    response = api.get("/databases", {"extra_storage_size": value})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["extra_storage_size"]


# --- Allocation and currency ---------------------------------------------------------------------------


def test_best_price_allocation(catalog, search):
    monthly = search(best_price_allocation="MONTHLY")
    ondemand = search(best_price_allocation="ONDEMAND_ONLY")

    assert ids(monthly) == listed(price=Db.monthly)
    assert all(row["min_price"] == row["price"] == BY_ID[row["database_id"]].monthly() for row in monthly)
    assert ondemand == search()


@pytest.mark.parametrize("value", ["SPOT_ONLY", "cheapest"])
def test_other_allocations_are_a_400(catalog, api, value):
    response = api.get("/databases", {"best_price_allocation": value})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["best_price_allocation"]


def test_prices_are_converted_to_the_currency_last(catalog, search):
    rate = exchange_rate("USD", "EUR")
    usd = {row["database_id"]: row for row in search(benchmark_id=BENCHMARK, extra_storage_size=15)}
    eur = search(benchmark_id=BENCHMARK, extra_storage_size=15, currency="EUR")

    assert ids(eur) == list(usd)
    for row in eur:
        base = usd[row["database_id"]]
        for name, digits in (("min_price", 4), ("min_price_ondemand", 4), ("min_price_ondemand_monthly", 2)):
            assert row[name] == round(base[name] * rate, digits)
        assert row["price"] == row["min_price"]
        for name, value in base["price_breakdown"].items():
            digits = 2 if name.endswith("monthly") else 4
            assert row["price_breakdown"][name] == (round(value * rate, digits) if value else value)
        # The score per price stays per USD, as upstream computes it.
        assert row["selected_benchmark_score_per_price"] == base["selected_benchmark_score_per_price"]


def test_an_unknown_currency_is_a_400(catalog, api):
    response = api.get("/databases", {"currency": "XXX"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["currency"]


# --- Paging ---------------------------------------------------------------------------------------------


def test_limit_page_and_the_total_count(catalog, api, search):
    response = api.get("/databases", {"limit": 2, "page": 2, "add_total_count_header": "true"})

    assert response.status_code == 200
    assert ids(response.json()) == listed()[2:4]
    assert response["X-Total-Count"] == str(len(listed()))
    assert ids(search(limit=-1)) == listed()
    assert "X-Total-Count" not in api.get("/databases")


def test_the_total_count_follows_the_filters(catalog, api):
    response = api.get("/databases", {"ha": "multi-zone", "limit": 1, "add_total_count_header": "true"})

    assert response["X-Total-Count"] == str(len(listed(lambda db: "multi-zone" in db.get("ha"))))


def test_the_default_limit_is_25(sync_upstream, search):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for number in range(30):
        catalog.database("v", f"db-{number:02}")
        catalog.database_price("v", f"db-{number:02}", price=1 + number / 100)
    sync_upstream(catalog)

    assert ids(search()) == [f"db-{number:02}" for number in range(25)]


# --- Bad values: a 400 naming the parameter ------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"vcpus_min": 0}, "vcpus_min"),
        ({"vcpus_max": 257}, "vcpus_max"),
        ({"memory_min": "lots"}, "memory_min"),
        ({"ha": "triple-zone"}, "ha"),
        ({"ha_strategy": "hope"}, "ha_strategy"),
        ({"security_features": "magic"}, "security_features"),
        ({"architecture": "z80"}, "architecture"),
        ({"disk_encryption": "perhaps"}, "disk_encryption"),
        ({"only_active": "maybe"}, "only_active"),
        ({"only_orderable": ""}, "only_orderable"),
        ({"max_read_replicas_min": "1.5"}, "max_read_replicas_min"),
        ({"vendor": "nobody"}, "vendor"),
        ({"order_dir": "sideways"}, "order_dir"),
        ({"limit": 0}, "limit"),
        ({"engine_version": "x" * 201}, "engine_version"),
        ({"gpu_min": 1}, "gpu_min"),  # a /servers parameter
    ],
)
def test_bad_values_are_a_400_with_a_json_body_naming_the_parameter(catalog, api, params, field):
    response = api.get("/databases", params)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body["errors"]) == [field]
    assert body["errors"][field][0]


# --- The OpenAPI document and the AI assist ------------------------------------------------------------

# Every parameter of the newest Spare Cores API's GET /databases.
DATABASES_PARAMETERS = {
    "partial_name_or_id", "engine_version", "vcpus_min", "vcpus_max", "memory_min", "architecture", "cpu_allocation",
    "network_speed_baseline_min", "network_speed_max_min", "network_storage_speed_baseline_min",
    "network_storage_speed_max_min", "benchmark_id", "benchmark_config", "benchmark_score_min",
    "benchmark_score_per_price_min", "ha", "ha_strategy", "max_read_replicas_min", "continuous_backups_min",
    "storage_extra_autosize", "disk_encryption", "scheduled_backups", "connection_pool", "system_monitoring",
    "database_monitoring", "auto_upgrade_versions", "autotuning_advice", "autotuning_apply", "custom_config",
    "custom_extensions", "security_features", "sla_min", "only_active", "only_orderable", "vendor", "regions",
    "vendor_regions", "countries", "storage_size", "extra_storage_size", "currency", "best_price_allocation", "limit",
    "page", "order_by", "order_dir", "add_total_count_header",
}  # fmt: skip


def test_the_openapi_document_lists_the_route_and_every_parameter(db, api):
    schema = json.loads(api.get("/openapi.json", HTTP_ACCEPT="application/json").content)
    operation = schema["paths"]["/databases"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert operation["operationId"] == "search_databases"
    assert operation["tags"] == ["Query Resources"]
    assert set(parameters) == DATABASES_PARAMETERS
    assert all(parameter.get("description", "").strip() for parameter in parameters.values())
    assert parameters["ha"]["schema"]["type"] == "array"
    assert sorted(parameters["ha"]["schema"]["items"]["enum"]) == sorted(choices.DatabaseHaLevel.values)
    assert sorted(parameters["best_price_allocation"]["schema"]["enum"]) == ["ANY", "MONTHLY", "ONDEMAND_ONLY"]
    assert parameters["disk_encryption"]["schema"]["type"] == "boolean"
    assert parameters["vcpus_min"]["schema"]["minimum"] == 1
    assert parameters["ha"]["schema"]["items"]["type"] == "string"
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
    assert schema["components"]["schemas"][ok]["items"]["$ref"] == "#/components/schemas/DatabaseSearchResult"


def test_the_ai_assist_fills_in_the_database_search(catalog, api, provider):  # noqa: F811
    arguments = {"ha": ["multi-zone"], "vendor": ["aws"], "security_features": ["audit-logging", "teleport"]}
    provider.call_tool(arguments, name="search_databases")

    response = api.get("/ai/assist_database_filters", {"text": "a highly available postgres on aws with audit logs"})

    assert response.status_code == 200
    assert response.json() == {"ha": ["multi-zone"], "vendor": ["aws"], "security_features": ["audit-logging"]}
    assert response["X-Dropped-Filters"] == "security_features"
    [tool] = provider.calls[0].body["tools"]
    assert tool["function"]["name"] == "search_databases"
    assert tool["function"]["parameters"] == ai.filters_json_schema(DatabaseFilterSet)
    assert {"ha", "only_orderable", "extra_storage_size"} <= set(tool["function"]["parameters"]["properties"])
    assert ids(api.get("/databases", response.json()).json()) == listed(
        lambda db: (
            db.vendor == "aws" and "multi-zone" in db.get("ha") and "audit-logging" in db.get("security_features")
        )
    )


def test_the_ai_assist_needs_text(catalog, api, provider):  # noqa: F811
    response = api.get("/ai/assist_database_filters")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["text"]
    assert provider.calls == []


# --- Queries per request ---------------------------------------------------------------------------------

QUERIES = [
    ({}, 1),
    ({"limit": -1, "currency": "EUR"}, 1),
    ({"add_total_count_header": "true"}, 2),  # + the count
    ({"vendor": ["aws", "gcp"], "ha": "multi-zone", "architecture": "arm64"}, 1),
    ({"countries": "DE", "benchmark_id": BENCHMARK, "order_by": "selected_benchmark_score"}, 1),
    ({"extra_storage_size": 50, "regions": "r1"}, 1),  # the storage costs: once per catalog and query
]


@pytest.mark.parametrize(("params", "queries"), QUERIES, ids=[json.dumps(params) for params, _ in QUERIES])
def test_queries_per_request_are_pinned(catalog, api, django_assert_num_queries, params, queries):
    api.get("/databases", params)  # the first request of a catalog reads what it validates against, the vendors

    with django_assert_num_queries(queries):
        response = api.get("/databases", params)
    assert response.status_code == 200
    assert response.json()
