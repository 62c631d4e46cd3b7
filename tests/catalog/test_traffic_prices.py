"""GET /traffic_prices: rows, the monthly traffic cost under tiers, one test per parameter and per error."""

from typing import Any

import pytest

from apps.catalog.pricing import exchange_rate
from apps.catalog.serializers_prices import RegionWithCountrySerializer, TrafficPriceRowSerializer
from tests.catalog.upstream import UpstreamCatalog

# 0-100 GB free, then 0.09 up to 10 TB, then 0.07.
TIERS = [
    {"lower": 0, "upper": 100, "price": 0},
    {"lower": 100, "upper": 10240, "price": 0.09},
    {"lower": 10240, "upper": "Infinity", "price": 0.07},
]


@pytest.fixture
def get_prices(api):
    def get(**params: Any) -> list[dict[str, Any]]:
        response = api.get("/traffic_prices", params)
        assert response.status_code == 200, response.content
        return response.json()

    return get


def regions(rows: list[dict]) -> list[str]:
    return [row["region_id"] for row in rows]


def traffic_catalog(prices: dict[str, float], **fields: Any) -> UpstreamCatalog:
    """One vendor with an outbound price per region ({region_id: price})."""
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=0)
    for region_id, price in prices.items():
        catalog.region("v", region_id)
        catalog.traffic_price("v", price=price, region_id=region_id, **fields)
    return catalog


def test_a_row_is_the_price_with_its_region_country_vendor_and_monthly_cost(sync_upstream, get_prices):
    sync_upstream(traffic_catalog({"r1": 0.09}))

    (row,) = get_prices()

    assert list(row) == list(TrafficPriceRowSerializer().fields)
    assert list(row["region"]) == list(RegionWithCountrySerializer().fields)
    assert (row["region_id"], row["direction"], row["unit"], row["price"]) == ("r1", "outbound", "GB/month", 0.09)
    assert row["vendor"]["vendor_id"] == "v"
    assert row["price_monthly_traffic"] == 0.09  # 1 GB by default


def test_direction_defaults_to_outbound_and_takes_several(sync_upstream, get_prices, api):
    catalog = traffic_catalog({"r1": 0.09})
    catalog.traffic_price("v", price=0.0, direction="IN", region_id="r1")
    sync_upstream(catalog)

    assert [row["direction"] for row in get_prices()] == ["outbound"]
    assert [row["direction"] for row in get_prices(direction="inbound")] == ["inbound"]
    assert {row["direction"] for row in get_prices(direction=["inbound", "outbound"])} == {"inbound", "outbound"}
    assert api.get("/traffic_prices", {"direction": "sideways"}).status_code == 400


def test_monthly_traffic_is_priced_under_the_tiers(sync_upstream, get_prices):
    sync_upstream(traffic_catalog({"tiered": 0.09}, tiers=TIERS))

    def cost(gb: float) -> float:
        return get_prices(monthly_traffic=gb)[0]["price_monthly_traffic"]

    assert cost(50) == 0
    assert cost(1000) == round((1000 - 100) * 0.09, 6)
    assert cost(20000) == round((10240 - 100) * 0.09 + (20000 - 10240) * 0.07, 6)


def test_monthly_traffic_without_tiers_is_at_the_unit_price(sync_upstream, get_prices, api):
    sync_upstream(traffic_catalog({"flat": 0.01}))

    assert get_prices(monthly_traffic=300)[0]["price_monthly_traffic"] == round(300 * 0.01, 6)
    assert get_prices(monthly_traffic=0)[0]["price_monthly_traffic"] == 0
    assert api.get("/traffic_prices", {"monthly_traffic": -1}).status_code == 400


def test_currency_converts_price_tiers_and_the_monthly_cost(sync_upstream, get_prices):
    sync_upstream(traffic_catalog({"eu": 0.09}, tiers=TIERS, currency="EUR"))

    (row,) = get_prices(currency="HUF", monthly_traffic=1000)
    rate = exchange_rate("EUR", "HUF")

    tier_prices = [round(float(tier["price"]) * rate, 6) for tier in TIERS]
    assert (row["price"], row["currency"]) == (round(0.09 * rate, 6), "HUF")
    assert [tier["price"] for tier in row["price_tiered"]] == tier_prices
    assert row["price_monthly_traffic"] == round(900 * tier_prices[1], 6)


def test_an_unknown_currency_is_refused(sync_upstream, api):
    sync_upstream(traffic_catalog({"r1": 0.09}))

    assert api.get("/traffic_prices", {"currency": "XXX"}).status_code == 400


def test_only_active_prices_are_listed(sync_upstream, get_prices):
    catalog = traffic_catalog({"live": 0.09})
    catalog.region("v", "gone")
    catalog.traffic_price("v", price=0.09, region_id="gone", status="INACTIVE")
    sync_upstream(catalog)

    assert regions(get_prices()) == ["live"]


def test_vendor_compliance_places_and_green_energy(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.country("DE", "Europe")
    catalog.vendor("a", regions=0)
    catalog.region("a", "us")
    catalog.region("a", "de", country_id="DE", green_energy=1)
    catalog.vendor("b")
    catalog.compliance_framework("iso27001", vendors=("b",))
    for vendor_id, region_id in [("a", "us"), ("a", "de"), ("b", "r1")]:
        catalog.traffic_price(vendor_id, price=0.05, region_id=region_id)
    sync_upstream(catalog)

    assert set(regions(get_prices(vendor="a"))) == {"us", "de"}
    assert regions(get_prices(compliance_framework="iso27001")) == ["r1"]
    assert regions(get_prices(countries="DE")) == ["de"]
    assert set(regions(get_prices(regions=["us", "r1"]))) == {"us", "r1"}
    assert regions(get_prices(vendor_regions="b~r1")) == ["r1"]
    assert regions(get_prices(green_energy="true")) == ["de"]


def test_sorted_by_price_by_default_or_by_a_column_and_paged(sync_upstream, get_prices, api):
    sync_upstream(traffic_catalog({"c": 0.05, "a": 0.10, "b": 0.01}))

    assert regions(get_prices()) == ["b", "c", "a"]
    assert regions(get_prices(order_dir="desc")) == ["a", "c", "b"]
    assert regions(get_prices(order_by="region_id")) == ["a", "b", "c"]
    assert regions(get_prices(limit=1, page=2)) == ["c"]
    assert api.get("/traffic_prices", {"order_by": "nope"}).status_code == 400
    assert api.get("/traffic_prices", {"limit": 1, "add_total_count_header": "true"})["X-Total-Count"] == "3"


def test_limit_defaults_to_ten(sync_upstream, get_prices):
    sync_upstream(traffic_catalog({f"r{n:02}": 0.01 * n for n in range(12)}))

    assert len(get_prices()) == 10
    assert len(get_prices(limit=-1)) == 12


@pytest.mark.parametrize(("params", "queries"), [({}, 1), ({"limit": -1, "currency": "EUR"}, 1), ({"vendor": "v"}, 1)])
def test_queries_per_request_are_pinned(sync_upstream, api, django_assert_num_queries, monkeypatch, params, queries):
    # Only the endpoint's own queries: the response cache's catalog version lookup (ETag) is counted
    # by tests/catalog/test_query_counts.py.
    monkeypatch.setattr("apps.catalog.caching.catalog_version", lambda: "1:test")
    sync_upstream(traffic_catalog({f"r{n}": 0.01 * n for n in range(1, 20)}, tiers=TIERS))

    # One statement: the page's ids, then their rows (vendor, region and country joined). Parameters naming catalog rows
    # are validated from memory once the catalog's first request has read them.
    api.get("/traffic_prices", params)
    with django_assert_num_queries(queries):
        response = api.get("/traffic_prices", params)

    assert response.status_code == 200 and response.json()
