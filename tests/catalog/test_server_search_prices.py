"""`/servers` ranked by the prices that matter to the caller: places, allocation, traffic, extra storage, benchmarks."""

import pytest

from tests.catalog.upstream import UpstreamCatalog

HOURS = 730


def ids(rows: list[dict]) -> list[str]:
    return [row["server_id"] for row in rows]


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["server_id"]: row for row in rows}


@pytest.fixture
def two_places(sync_upstream):
    """Vendor v with a US region (r1) and a German one (de1); servers priced differently in each."""
    catalog = UpstreamCatalog()
    catalog.vendor("v", country_id="US")
    catalog.country("DE", continent="Europe")
    catalog.region("v", "de1", country_id="DE")
    catalog.server("v", "everywhere", vcpus=2)
    catalog.price("v", "everywhere", price=0.10, region_id="r1")
    catalog.price("v", "everywhere", price=0.30, region_id="de1")
    catalog.price("v", "everywhere", price=0.25, region_id="de1", allocation="SPOT")
    catalog.server("v", "us-only", vcpus=2)
    catalog.price("v", "us-only", price=0.05, region_id="r1")
    catalog.server("v", "de-only", vcpus=2)
    catalog.price("v", "de-only", price=0.20, region_id="de1")
    sync_upstream(catalog)
    return catalog


def test_countries_rank_by_the_prices_there_and_drop_servers_not_priced_there(two_places, get_servers):
    rows = get_servers(countries="DE")

    assert ids(rows) == ["de-only", "everywhere"]
    everywhere = by_id(rows)["everywhere"]
    assert (everywhere["min_price"], everywhere["min_price_spot"], everywhere["min_price_ondemand"]) == (
        0.25,
        0.25,
        0.3,
    )


def test_without_places_the_cheapest_price_anywhere_counts(two_places, get_servers):
    assert ids(get_servers()) == ["us-only", "everywhere", "de-only"]
    assert by_id(get_servers())["everywhere"]["min_price"] == 0.1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"regions": "de1"}, ["de-only", "everywhere"]),
        ({"regions": ["r1", "de1"]}, ["us-only", "everywhere", "de-only"]),
        ({"vendor_regions": "v~r1"}, ["us-only", "everywhere"]),
    ],
)
def test_regions_and_vendor_regions_narrow_the_prices(two_places, get_servers, params, expected):
    assert ids(get_servers(**params)) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"countries": "XX"}, "countries"),
        ({"regions": "nowhere"}, "regions"),
        ({"vendor_regions": "v-r1"}, "vendor_regions"),
    ],
)
def test_unknown_places_are_a_400_naming_them(two_places, api, params, field):
    response = api.get("/servers", params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_anonymous_callers_search_one_country_at_a_time(two_places, api, make_authenticated):
    anonymous = api.get("/servers", {"countries": ["US", "DE"]})
    authenticated = make_authenticated().get("/servers", {"countries": ["US", "DE"]})

    assert anonymous.status_code == 400
    assert "countries" in anonymous.json()["errors"]
    assert authenticated.status_code == 200


@pytest.fixture
def make_authenticated(api, django_user_model):
    def make():
        api.force_login(django_user_model.objects.create_user("searcher"))
        return api

    return make


# --- best_price_allocation: that allocation's price is the price ----------------------


@pytest.fixture
def allocations(sync_upstream):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("stress_ng:bestn")
    for server, spot, ondemand in (("a", 0.01, 0.50), ("b", 0.05, 0.10), ("c", None, 0.20)):
        catalog.server("v", server)
        catalog.score("v", server, "stress_ng:bestn", 1000.0)
        catalog.price("v", server, price=ondemand)
        if spot is not None:
            catalog.price("v", server, price=spot, allocation="SPOT")
    sync_upstream(catalog)


def test_ondemand_only_reports_orders_and_scores_by_the_ondemand_price(allocations, get_servers):
    rows = get_servers(best_price_allocation="ONDEMAND_ONLY")

    assert ids(rows) == ["b", "c", "a"]
    assert [row["min_price"] for row in rows] == [0.1, 0.2, 0.5]
    assert [row["price"] for row in rows] == [0.1, 0.2, 0.5]
    assert by_id(rows)["b"]["score_per_price"] == 10000.0


def test_spot_only_leaves_out_servers_without_a_spot_price(allocations, get_servers):
    assert ids(get_servers(best_price_allocation="SPOT_ONLY")) == ["a", "b"]


# --- Monthly traffic and extra storage add their cheapest cost -------------------------


@pytest.fixture
def extras(sync_upstream):
    catalog = UpstreamCatalog()
    catalog.vendor("cheap-traffic")
    catalog.vendor("dear-traffic")
    catalog.vendor("no-traffic")
    for vendor, traffic in (("cheap-traffic", 0.01), ("dear-traffic", 0.10)):
        catalog.traffic_price(vendor, price=traffic)
        catalog.traffic_price(vendor, price=traffic / 2, direction="IN")
        catalog.storage(vendor, "disk", min_size=10, max_size=1000, storage_type="SSD")
        catalog.storage_price(vendor, "disk", price=0.1)
    for vendor in ("cheap-traffic", "dear-traffic", "no-traffic"):
        catalog.server(vendor, "s", storage_size=0)
        catalog.price(vendor, "s", price=0.1)
    catalog.server("cheap-traffic", "big-disk", storage_size=200)
    catalog.price("cheap-traffic", "big-disk", price=0.1)
    sync_upstream(catalog)


def test_monthly_outbound_traffic_adds_its_cheapest_price_and_drops_vendors_without_one(extras, get_servers):
    rows = get_servers(monthly_outbound_traffic=100, order_by="min_price")

    assert [row["vendor_id"] for row in rows] == ["cheap-traffic", "cheap-traffic", "dear-traffic"]
    dear = [row for row in rows if row["vendor_id"] == "dear-traffic"][0]
    assert dear["min_price"] == round(0.1 + 100 * 0.10 / HOURS, 4)
    assert dear["min_price_ondemand_monthly"] == round(0.1 * HOURS + 100 * 0.10, 2)
    breakdown = dear["price_breakdown"]
    assert (breakdown["traffic_outbound_monthly"], breakdown["traffic_monthly"]) == (10.0, 10.0)
    assert breakdown["traffic_outbound_hourly"] == round(10 / HOURS, 4)
    assert breakdown["compute_min_price"] == 0.1


def test_inbound_and_outbound_traffic_add_up(extras, get_servers):
    [row] = [
        r
        for r in get_servers(monthly_inbound_traffic=100, monthly_outbound_traffic=100)
        if r["vendor_id"] == "dear-traffic"
    ]

    assert row["price_breakdown"]["traffic_monthly"] == 15.0
    assert row["price_breakdown"]["traffic_inbound_monthly"] == 5.0


def test_extra_storage_beyond_the_built_in_storage_is_added(extras, get_servers):
    rows = by_id(r for r in get_servers(extra_storage_size=100) if r["vendor_id"] == "cheap-traffic")

    assert rows["s"]["price_breakdown"]["extra_storage_monthly"] == 10.0
    assert rows["s"]["min_price"] == round(0.1 + 10 / HOURS, 4)
    # 200 GB built in already covers 100 GB.
    assert rows["big-disk"]["price_breakdown"]["extra_storage_monthly"] == 0.0


def test_extra_storage_of_a_type_no_vendor_offers_leaves_nothing(extras, get_servers):
    assert get_servers(extra_storage_size=100, extra_storage_type="hdd") == []


# --- A benchmark of the caller's choice --------------------------------------------------


@pytest.fixture
def benchmarked(sync_upstream):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("geekbench:score")
    for server, score, price in (("fast", 900.0, 0.3), ("slow", 100.0, 0.01), ("unscored", None, 0.02)):
        catalog.server("v", server)
        catalog.price("v", server, price=price)
        if score is not None:
            catalog.score("v", server, "geekbench:score", score, config={"cores": 1})
            catalog.score("v", server, "geekbench:score", score / 2, config={"cores": 2})
    sync_upstream(catalog)


def test_benchmark_id_returns_each_servers_best_score_of_it(benchmarked, get_servers):
    rows = by_id(get_servers(benchmark_id="geekbench:score"))

    assert rows["fast"]["selected_benchmark_score"] == 900.0
    assert rows["fast"]["selected_benchmark_score_per_price"] == 900.0 / 0.3
    assert rows["unscored"]["selected_benchmark_score"] is None


def test_benchmark_config_picks_one_configuration(benchmarked, get_servers):
    rows = by_id(get_servers(benchmark_id="geekbench:score", benchmark_config='{"cores": 2}'))

    assert rows["fast"]["selected_benchmark_score"] == 450.0


def test_ordering_by_the_selected_benchmark_leaves_out_servers_without_it(benchmarked, get_servers):
    by_score = get_servers(benchmark_id="geekbench:score", order_by="selected_benchmark_score", order_dir="desc")
    by_value = get_servers(
        benchmark_id="geekbench:score", order_by="selected_benchmark_score_per_price", order_dir="desc"
    )

    assert ids(by_score) == ["fast", "slow"]
    assert ids(by_value) == ["slow", "fast"]


def test_benchmark_score_minimums_filter_on_the_selected_benchmark(benchmarked, get_servers):
    assert ids(get_servers(benchmark_id="geekbench:score", benchmark_score_min=500)) == ["fast"]
    assert ids(get_servers(benchmark_id="geekbench:score", benchmark_score_per_price_min=5000)) == ["slow"]


@pytest.mark.parametrize(
    "params",
    [{"benchmark_score_min": 1}, {"benchmark_score_per_price_min": 1}, {"order_by": "selected_benchmark_score"}],
)
def test_the_benchmark_parameters_need_benchmark_id(benchmarked, api, params):
    response = api.get("/servers", params)

    assert response.status_code == 400
    assert "benchmark_id is required" in response.json()["errors"][next(iter(params))][0]


def test_an_unknown_benchmark_id_is_a_400(benchmarked, api):
    response = api.get("/servers", {"benchmark_id": "nope"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["benchmark_id"]


# --- Storage network speeds ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "column"),
    [
        ("network_storage_speed_baseline_min", "network_storage_speed_baseline"),
        ("network_storage_speed_max_min", "network_storage_speed_max"),
    ],
)
def test_storage_network_speed_minimums(sync_upstream, get_servers, parameter, column):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for server, speed in (("slow", 1.0), ("fast", 10.0), ("unknown", None)):
        catalog.server("v", server, **{column: speed})
        catalog.price("v", server, price=0.1)
    sync_upstream(catalog)

    assert ids(get_servers(**{parameter: 5})) == ["fast"]


def test_a_cached_answer_is_not_served_to_an_anonymous_caller_over_the_place_limit(
    two_places, api, make_authenticated, settings
):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 60
    from django.core.cache import caches

    caches["catalog"].clear()
    query = {"countries": ["US", "DE"]}
    assert make_authenticated().get("/servers", query).status_code == 200
    api.logout()

    assert api.get("/servers", query).status_code == 400
