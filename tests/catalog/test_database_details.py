"""One managed database's resources: GET /database/{vendor}/{database}, its /prices, /benchmarks and
/price_history, and `price_change_since` on its prices."""

from datetime import UTC, timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.catalog.pricing import exchange_rate
from apps.catalog.serializers_databases import (
    DatabasePriceHistorySerializer,
    DatabasePriceOfDatabaseSerializer,
    DatabasePriceSerializer,
    DatabaseSerializer,
)
from apps.catalog.serializers_details import BenchmarkScoreSerializer
from apps.catalog.version import catalog_version
from tests.catalog.upstream import UpstreamCatalog

RECRAWLED = "2026-02-01 06:00:00.000000"


def details_catalog() -> UpstreamCatalog:
    """Vendor aws with regions r1 and r2 (US), de1 (DE), fr1 (FR); vendor gcp with r1 (US).

    aws db.m5.large (API reference m5-ref) priced in every region, one price in EUR, one inactive; a retired
    database; "alpha" whose API reference is the id of another database, "shared"; a gcp database with the
    same id as an aws one."""
    catalog = UpstreamCatalog()
    catalog.vendor("aws", regions=2)
    for region, country in [("de1", "DE"), ("fr1", "FR")]:
        catalog.country(country, continent="Europe")
        catalog.region("aws", region, country_id=country)
    catalog.vendor("gcp")

    catalog.database("aws", "db.m5.large", api_reference="m5-ref")
    catalog.database_price("aws", "db.m5.large", price=0.178, region_id="r2")
    catalog.database_price("aws", "db.m5.large", price=0.356, ha="MULTI_ZONE", ha_strategy="PASSIVE_STANDBY")
    catalog.database_price("aws", "db.m5.large", price=0.171)
    catalog.database_price(
        "aws",
        "db.m5.large",
        price=0.05,
        region_id="r2",
        ha="MULTI_ZONE",
        ha_strategy="PASSIVE_STANDBY",
        status="INACTIVE",
    )
    catalog.database_price(
        "aws",
        "db.m5.large",
        price=0.2,
        region_id="de1",
        currency="EUR",
        tiers=[{"lower": 0, "upper": 500, "price": 0.2}, {"lower": 500, "upper": "Infinity", "price": 0}],
    )
    catalog.database_price("aws", "db.m5.large", price=0.21, region_id="fr1")

    catalog.database("aws", "db.retired", status="RETIRED", vcpus=None, memory_amount=None)
    catalog.database_price("aws", "db.retired", price=0.3, status="INACTIVE")
    catalog.database("aws", "alpha", api_reference="shared")
    catalog.database("aws", "shared", api_reference="beta")
    catalog.database("gcp", "db.m5.large", api_reference="gcp-ref")
    catalog.database_price("gcp", "db.m5.large", price=0.9)
    return catalog


@pytest.fixture
def loaded(sync_upstream):
    return sync_upstream(details_catalog())


def get(api, path: str, **params):
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def keys(rows: list[dict]) -> list[tuple]:
    return [(row["region_id"], row["allocation"], row["ha"], row["ha_strategy"], row["price"]) for row in rows]


# --- /database/{vendor}/{database} -------------------------------------------------------------------


def test_a_database_has_every_upstream_column(loaded, api):
    row = get(api, "/database/aws/db.m5.large")

    assert list(row) == list(DatabaseSerializer().fields)
    assert (row["vendor_id"], row["database_id"], row["api_reference"]) == ("aws", "db.m5.large", "m5-ref")
    assert (row["engine_versions"], row["ha"], row["security_features"]) == (
        ["16", "17"],
        ["multi-zone", "none"],
        ["ip-filtering", "enforced-tls"],
    )
    assert (row["status"], row["disk_encryption"], row["sla"]) == ("active", True, 99.95)


def test_a_database_is_found_by_its_api_reference(loaded, api):
    assert get(api, "/database/aws/m5-ref") == get(api, "/database/aws/db.m5.large")


def test_an_id_wins_over_an_api_reference(loaded, api):
    assert get(api, "/database/aws/shared")["database_id"] == "shared"
    assert get(api, "/database/aws/beta")["database_id"] == "shared"


def test_the_vendor_names_whose_database_it_is(loaded, api):
    assert get(api, "/database/gcp/db.m5.large")["api_reference"] == "gcp-ref"
    assert get(api, "/database/gcp/gcp-ref")["vendor_id"] == "gcp"


def test_a_retired_database_is_found(loaded, api):
    row = get(api, "/database/aws/db.retired")

    assert (row["database_id"], row["status"], row["vcpus"]) == ("db.retired", "retired", None)


@pytest.mark.parametrize(
    "path",
    [
        "/database/aws/nope",
        "/database/nowhere/db.m5.large",
        "/database/gcp/m5-ref",
        "/database/aws/nope/prices",
        "/database/aws/nope/benchmarks",
        "/database/aws/nope/price_history",
    ],
)
def test_an_unknown_database_is_a_json_404_saying_so(loaded, http, path):
    response = http.get(path)

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert "Database" in body["detail"] and "not found" in body["detail"]


def test_the_detail_takes_no_parameters(loaded, http):
    response = http.get("/database/aws/db.m5.large", {"currency": "EUR"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["currency"]


# --- /database/{vendor}/{database}/prices ------------------------------------------------------------


def test_prices_are_the_active_ones_in_upstreams_order(loaded, api):
    rows = get(api, "/database/aws/db.m5.large/prices")

    assert [list(row) for row in rows] == [list(DatabasePriceSerializer().fields)] * len(rows)
    # By region, allocation, HA level and strategy; the inactive price in r2 is left out.
    assert keys(rows) == [
        ("de1", "ondemand", "none", "none", round(0.2 * exchange_rate("EUR", "USD"), 4)),
        ("fr1", "ondemand", "none", "none", 0.21),
        ("r1", "ondemand", "multi-zone", "passive-standby", 0.356),
        ("r1", "ondemand", "none", "none", 0.171),
        ("r2", "ondemand", "none", "none", 0.178),
    ]
    assert {(row["vendor_id"], row["database_id"], row["unit"], row["status"]) for row in rows} == {
        ("aws", "db.m5.large", "hour", "active")
    }


def test_prices_are_found_by_the_api_reference(loaded, api):
    assert get(api, "/database/aws/m5-ref/prices") == get(api, "/database/aws/db.m5.large/prices")


def test_a_database_without_active_prices_has_none(loaded, api):
    assert get(api, "/database/aws/db.retired/prices") == []


def test_prices_stay_in_their_currency_when_it_is_asked_for(loaded, api):
    rows = get(api, "/database/aws/db.m5.large/prices", currency="EUR")

    de1 = next(row for row in rows if row["region_id"] == "de1")
    assert (de1["price"], de1["currency"], de1["price_tiered"][0]["price"]) == (0.2, "EUR", 0.2)
    r2 = next(row for row in rows if row["region_id"] == "r2")
    assert (r2["price"], r2["currency"]) == (round(0.178 * exchange_rate("USD", "EUR"), 4), "EUR")


def test_the_price_tiers_are_converted_too(loaded, api):
    rows = get(api, "/database/aws/db.m5.large/prices", currency="USD")

    de1 = next(row for row in rows if row["region_id"] == "de1")
    assert de1["currency"] == "USD"
    assert [tier["price"] for tier in de1["price_tiered"]] == [round(0.2 * exchange_rate("EUR", "USD"), 4), 0]


def test_countries_and_vendor_regions_narrow_the_prices(loaded, api):
    assert {row["region_id"] for row in get(api, "/database/aws/db.m5.large/prices", countries="DE")} == {"de1"}
    assert {row["region_id"] for row in get(api, "/database/aws/db.m5.large/prices", countries="US")} == {"r1", "r2"}
    rows = get(api, "/database/aws/db.m5.large/prices", vendor_regions=["aws~r1", "aws~fr1"])
    assert keys(rows) == [
        ("fr1", "ondemand", "none", "none", 0.21),
        ("r1", "ondemand", "multi-zone", "passive-standby", 0.356),
        ("r1", "ondemand", "none", "none", 0.171),
    ]
    assert get(api, "/database/aws/db.m5.large/prices", countries="US", vendor_regions="aws~fr1") == []


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"countries": "ZZ"}, "countries"),
        ({"vendor_regions": "aws-r1"}, "vendor_regions"),
        ({"vendor_regions": "aws~nowhere"}, "vendor_regions"),
        ({"regions": "r1"}, "regions"),
        ({"price_change_since": "yesterday"}, "price_change_since"),
        ({"vcpus_min": "2"}, "vcpus_min"),
    ],
)
def test_a_bad_price_parameter_is_a_400_naming_it(loaded, http, params, bad):
    response = http.get("/database/aws/db.m5.large/prices", params)

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("invalid", [bad])


def test_anonymous_callers_give_at_most_one_country_and_three_regions(loaded, http):
    countries = http.get("/database/aws/db.m5.large/prices", {"countries": ["US", "DE"]})
    regions = http.get(
        "/database/aws/db.m5.large/prices", {"vendor_regions": ["aws~r1", "aws~r2", "aws~de1", "aws~fr1"]}
    )

    assert countries.status_code == regions.status_code == 400
    assert countries.json()["errors"]["countries"] == ["Max 1 country can be queried at a time without authentication."]
    assert list(regions.json()["errors"]) == ["vendor_regions"]
    assert (
        http.get("/database/aws/db.m5.large/prices", {"vendor_regions": ["aws~r1", "aws~r2", "aws~de1"]}).status_code
        == 200
    )


def test_authenticated_callers_give_as_many_places_as_they_like(loaded, api, django_user_model):
    api.force_login(django_user_model.objects.create_user("reader"))

    rows = get(api, "/database/aws/db.m5.large/prices", countries=["US", "DE"])

    assert {row["region_id"] for row in rows} == {"r1", "r2", "de1"}


def test_prices_are_cached_by_shared_caches_for_less_long(loaded, api, settings):
    response = api.get("/database/aws/db.m5.large/prices")

    assert response["Cache-Control"].startswith(f"public, max-age={settings.KEEPER_PRICES_MAX_AGE_SECONDS},")


def test_a_database_id_with_a_slash_has_its_resources(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.database("v", "pg/large")
    catalog.database("v", "prices")
    catalog.database_price("v", "pg/large", price=1.5)
    sync_upstream(catalog)

    [row] = get(api, "/database/v/pg/large/prices")

    assert (row["database_id"], row["price"]) == ("pg/large", 1.5)
    assert get(api, "/database/v/pg/large")["database_id"] == "pg/large"
    assert get(api, "/database/v/prices")["database_id"] == "prices"


@pytest.mark.parametrize(
    ("path", "params", "queries"),
    [
        ("/database/aws/db.m5.large", {}, 1),  # the database by id or API reference, whole
        ("/database/aws/db.m5.large/prices", {}, 2),  # the database's id, its prices
        ("/database/aws/db.m5.large/prices", {"countries": "US", "currency": "EUR"}, 2),
        ("/database/aws/db.m5.large/benchmarks", {}, 2),  # the database's id, its scores
    ],
)
def test_queries_are_pinned(loaded, api, django_assert_num_queries, settings, path, params, queries):
    settings.KEEPER_CATALOG_VERSION_TTL_SECONDS = 3600
    catalog_version()
    api.get(path, params)  # the places are validated from memory after the first request

    with django_assert_num_queries(queries):
        response = api.get(path, params)

    assert response.status_code == 200


# --- /database/{vendor}/{database}/benchmarks --------------------------------------------------------


def _score(catalog: UpstreamCatalog, resource_type: str, resource_id: str, benchmark_id: str, score: float, **more):
    catalog.insert(
        "benchmark_score",
        vendor_id="aws",
        benchmark_id=benchmark_id,
        resource_type=resource_type,
        resource_id=resource_id,
        config=more.pop("config", "{}"),
        score=score,
        status=more.pop("status", "ACTIVE"),
        observed_at="2026-01-15 21:49:48.232080",
        **more,
    )


# Inserted out of the display order: pgbench's concurrency 16 before 1, engine 17 before 16 (whose
# configurations' text would sort the other way), the main benchmark (geekbench:score) last.
SCORES = [
    ("pgbench:tps", 900.0, '{"concurrency": 16, "mode": "read"}', '{"database_engine_version": "16"}'),
    ("pgbench:tps", 100.0, '{"concurrency": 1, "mode": "read"}', '{"database_engine_version": "17"}'),
    ("pgbench:tps", 110.0, '{"concurrency": 1, "mode": "write"}', '{"database_engine_version": "16"}'),
    ("geekbench:score", 1500.0, '{"cores": "Single-Core Performance"}', None),
]


@pytest.fixture
def benchmarked(sync_upstream):
    catalog = details_catalog()
    for benchmark_id in ("pgbench:tps", "geekbench:score"):
        catalog.benchmark(benchmark_id)
    catalog.server("aws", "m5.large")
    for benchmark_id, score, config, environment in SCORES:
        for resource_type, resource_id in (("DATABASE", "db.m5.large"), ("SERVER", "m5.large")):
            _score(catalog, resource_type, resource_id, benchmark_id, score, config=config, environment=environment)
    # Neither listed: an inactive score of the database, a server's score under the database's id.
    _score(catalog, "DATABASE", "db.m5.large", "geekbench:score", 1.0, config='{"cores": 2}', status="INACTIVE")
    _score(catalog, "SERVER", "db.m5.large", "geekbench:score", 2.0, config='{"cores": 4}')
    return sync_upstream(catalog)


def scored(rows: list[dict]) -> list[tuple]:
    return [(row["benchmark_id"], row["score"], row["config"], row["environment"]) for row in rows]


def test_benchmarks_are_the_databases_active_scores(benchmarked, api):
    rows = get(api, "/database/aws/db.m5.large/benchmarks")

    assert [list(row) for row in rows] == [list(BenchmarkScoreSerializer().fields)] * 4
    assert {(row["resource_type"], row["resource_id"]) for row in rows} == {("database", "db.m5.large")}
    assert sorted(row["score"] for row in rows) == sorted(score for _, score, _, _ in SCORES)


def test_benchmarks_are_in_the_sort_order_of_a_servers(benchmarked, api):
    rows = get(api, "/database/aws/db.m5.large/benchmarks")
    server_rows = get(api, "/server/aws/m5.large/benchmarks")

    assert scored(rows) == scored(server_rows)
    # The newest order: main benchmarks first, then pgbench by concurrency, then by engine version.
    assert [(row["benchmark_id"], row["config"].get("concurrency")) for row in rows] == [
        ("geekbench:score", None),
        ("pgbench:tps", 1),
        ("pgbench:tps", 1),
        ("pgbench:tps", 16),
    ]
    assert [row["environment"]["database_engine_version"] for row in rows[1:3]] == ["16", "17"]


def test_benchmarks_are_found_by_the_api_reference(benchmarked, api):
    assert get(api, "/database/aws/m5-ref/benchmarks") == get(api, "/database/aws/db.m5.large/benchmarks")


def test_a_database_without_scores_has_none(benchmarked, api):
    assert get(api, "/database/aws/alpha/benchmarks") == []


# --- history: /database/{vendor}/{database}/price_history and price_change_since ----------------------


def changed_catalog() -> UpstreamCatalog:
    """`details_catalog()` re-crawled: aws db.m5.large's prices r1 (no HA) 0.171 -> 0.18, de1 0.2 -> 0.19 EUR
    (its tiers too), r2 (no HA) removed, fr1 inactive, r2 multi-zone active again at 0.07 (was 0.05, inactive);
    gcp's 0.9 -> 0.95."""
    catalog = details_catalog()
    db = catalog.db
    where = "vendor_id = 'aws' AND database_id = 'db.m5.large'"
    db.execute(f"UPDATE database_price SET price = 0.18 WHERE {where} AND region_id = 'r1' AND ha = 'NONE'")
    db.execute(f"DELETE FROM database_price WHERE {where} AND region_id = 'r2' AND ha = 'NONE'")
    db.execute(f"UPDATE database_price SET status = 'INACTIVE' WHERE {where} AND region_id = 'fr1'")
    db.execute(f"UPDATE database_price SET price = 0.07, status = 'ACTIVE' WHERE {where} AND region_id = 'r2'")
    tiers = '[{"lower": 0, "upper": 500, "price": 0.19}, {"lower": 500, "upper": "Infinity", "price": 0}]'
    db.execute(f"UPDATE database_price SET price = 0.19, price_tiered = ? WHERE {where} AND region_id = 'de1'", [tiers])
    db.execute("UPDATE database_price SET price = 0.95 WHERE vendor_id = 'gcp'")
    for table in catalog.tables():
        db.execute(f'UPDATE "{table}" SET observed_at = ?', [RECRAWLED])
    return catalog


@pytest.fixture
def history(sync_upstream):
    """The catalog synced 20 days ago, the changed copy 10 days ago (each at midnight UTC)."""
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with time_machine.travel(today - timedelta(days=20), tick=False):
        first = sync_upstream(details_catalog())
    with time_machine.travel(today - timedelta(days=10), tick=False):
        second = sync_upstream(changed_catalog())
    return first.finished_at.astimezone(UTC).isoformat(), second.finished_at.astimezone(UTC).isoformat()


def segment(start: str, end: str | None, price: float, monthly: float | None) -> dict:
    return {"from": start, "until": end, "price": price, "price_monthly": monthly}


def usd(hourly_eur: float, monthly_eur: float) -> tuple[float, float]:
    rate = exchange_rate("EUR", "USD")
    return round(hourly_eur * rate, 4), round(monthly_eur * rate, 2)


def test_price_history_is_a_series_per_region_allocation_and_ha(history, api):
    first, second = history

    rows = get(api, "/database/aws/db.m5.large/price_history")

    assert [list(row) for row in rows] == [list(DatabasePriceHistorySerializer().fields)] * len(rows)
    assert [
        (row["region_id"], row["country_id"], row["ha"], row["ha_strategy"], row["unit"], row["prices"]) for row in rows
    ] == [
        # In EUR, converted; its tiers cap the month at 500 hours.
        (
            "de1",
            "DE",
            "none",
            "none",
            "hour",
            [segment(first, second, *usd(0.2, 100.0)), segment(second, None, *usd(0.19, 95.0))],
        ),
        ("fr1", "FR", "none", "none", "hour", [segment(first, second, 0.21, 153.3)]),
        ("r1", "US", "multi-zone", "passive-standby", "hour", [segment(first, None, 0.356, 259.88)]),
        (
            "r1",
            "US",
            "none",
            "none",
            "hour",
            [segment(first, second, 0.171, 124.83), segment(second, None, 0.18, 131.4)],
        ),
        # Inactive until the second sync, then active at its new price.
        ("r2", "US", "multi-zone", "passive-standby", "hour", [segment(second, None, 0.07, 51.1)]),
        # Removed at the second sync.
        ("r2", "US", "none", "none", "hour", [segment(first, second, 0.178, 129.94)]),
    ]
    assert {(row["allocation"], row["currency"]) for row in rows} == {("ondemand", "USD")}


def test_price_history_filters_and_currency(history, api):
    first, second = history

    assert [row["region_id"] for row in get(api, "/database/aws/db.m5.large/price_history", countries="DE")] == ["de1"]
    assert [
        (row["region_id"], row["ha"]) for row in get(api, "/database/aws/db.m5.large/price_history", regions="r2")
    ] == [("r2", "multi-zone"), ("r2", "none")]
    assert get(api, "/database/aws/db.m5.large/price_history", allocation="spot") == []
    later = (timezone.now() - timedelta(days=5)).date().isoformat()
    rows = get(api, "/database/aws/db.m5.large/price_history", since=later, regions="r1")
    assert [row["prices"] for row in rows] == [
        [segment(first, None, 0.356, 259.88)],
        [segment(second, None, 0.18, 131.4)],
    ]
    [euros] = get(api, "/database/aws/db.m5.large/price_history", countries="DE", currency="EUR")
    assert euros["currency"] == "EUR"
    assert [s["price"] for s in euros["prices"]] == [0.2, 0.19]


def test_price_history_is_found_by_the_api_reference(history, api):
    assert get(api, "/database/aws/m5-ref/price_history") == get(api, "/database/aws/db.m5.large/price_history")


def test_a_removed_database_keeps_its_history(sync_upstream, api, history):
    first, second = history
    gone = changed_catalog()
    gone.db.execute("DELETE FROM database WHERE vendor_id = 'gcp'")
    gone.db.execute("DELETE FROM database_price WHERE vendor_id = 'gcp'")
    with time_machine.travel(timezone.now() - timedelta(days=5), tick=False):
        third = sync_upstream(gone)

    assert [row["prices"] for row in get(api, "/database/gcp/db.m5.large/price_history")] == [
        [
            segment(first, second, 0.9, 657.0),
            segment(second, third.finished_at.astimezone(UTC).isoformat(), 0.95, 693.5),
        ]
    ]


@pytest.mark.parametrize(
    ("params", "bad"),
    [({"since": "soon"}, "since"), ({"allocation": "weekly"}, "allocation"), ({"currency": "XXX"}, "currency")],
)
def test_price_history_errors_name_the_parameter(history, http, params, bad):
    response = http.get("/database/aws/db.m5.large/price_history", params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [bad]


def test_price_change_since_keeps_the_changed_prices_with_their_previous_price(history, api):
    first, _ = history
    since = (timezone.now() - timedelta(days=15)).date().isoformat()

    rows = get(api, "/database/aws/db.m5.large/prices", price_change_since=since)

    assert [list(row) for row in rows] == [list(DatabasePriceOfDatabaseSerializer().fields)] * 3
    de1_before = round(0.2 * exchange_rate("EUR", "USD"), 4)
    assert [(row["region_id"], row["ha"], row["price"], row["previous_price"]) for row in rows] == [
        ("de1", "none", round(0.19 * exchange_rate("EUR", "USD"), 4), de1_before),
        ("r1", "none", 0.18, 0.171),
        # Reactivated at another price: its price changed too.
        ("r2", "multi-zone", 0.07, 0.05),
    ]
    assert get(api, "/database/aws/db.m5.large/prices", price_change_since=first)[0]["previous_price"] == de1_before


def test_price_change_since_keeps_its_currency_and_places(history, api):
    since = (timezone.now() - timedelta(days=15)).date().isoformat()

    rows = get(api, "/database/aws/db.m5.large/prices", price_change_since=since, currency="EUR", countries="DE")

    assert [(row["price"], row["previous_price"], row["currency"]) for row in rows] == [(0.19, 0.2, "EUR")]


def test_price_change_since_a_later_time_finds_none(history, api):
    assert get(api, "/database/aws/db.m5.large/prices", price_change_since=timezone.now().isoformat()) == []


def test_prices_gain_no_previous_price_by_default(history, api):
    rows = get(api, "/database/aws/db.m5.large/prices")

    assert [list(row) for row in rows] == [list(DatabasePriceSerializer().fields)] * len(rows)


def test_price_change_since_costs_one_query_more(history, api, django_assert_num_queries, settings):
    settings.KEEPER_CATALOG_VERSION_TTL_SECONDS = 3600
    catalog_version()
    since = (timezone.now() - timedelta(days=15)).date().isoformat()
    api.get("/database/aws/db.m5.large/prices", {"price_change_since": since})

    with django_assert_num_queries(3):  # the database's id, its changed prices, their previous prices
        response = api.get("/database/aws/db.m5.large/prices", {"price_change_since": since})

    assert response.status_code == 200 and len(response.json()) == 3


# --- OpenAPI -----------------------------------------------------------------------------------------


def test_every_route_and_parameter_is_documented(db, api):
    schema = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()

    def parameters(path: str) -> set[str]:
        operation = schema["paths"][path]["get"]
        assert operation["tags"] == ["Database Details"]
        assert all(parameter.get("description") for parameter in operation["parameters"])
        return {parameter["name"] for parameter in operation["parameters"]}

    assert parameters("/database/{vendor}/{database}") == {"vendor", "database"}
    assert parameters("/database/{vendor}/{database}/prices") == {
        "vendor", "database", "countries", "vendor_regions", "currency", "price_change_since",
    }  # fmt: skip
    assert parameters("/database/{vendor}/{database}/benchmarks") == {"vendor", "database"}
    assert parameters("/database/{vendor}/{database}/price_history") == {
        "vendor", "database", "regions", "countries", "allocation", "currency", "since",
    }  # fmt: skip
    responses = schema["paths"]["/database/{vendor}/{database}"]["get"]["responses"]
    assert {"200", "404"} <= set(responses)


# --- route costs ---------------------------------------------------------------------------------------


def test_the_database_routes_cost_their_seeded_credits(loaded, api, settings, fresh_state, no_redis, django_user_model):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1

    history = api.get("/database/aws/db.m5.large/price_history")
    prices = api.get("/database/aws/db.m5.large/prices")

    assert history.status_code == prices.status_code == 200
    # Its route pattern is the one migration throttling.0006 seeds at 3; the others cost the default.
    assert (history["X-RateLimit-Cost"], prices["X-RateLimit-Cost"]) == ("3", "1")
    api.force_authenticate(django_user_model.objects.create_user("reader"))
    assert api.get("/table/database_price")["X-RateLimit-Cost"] == "10"
