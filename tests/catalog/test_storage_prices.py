"""GET /storage_prices: rows, one test per parameter and per error, ordering, paging, query counts."""

from typing import Any

import pytest

from apps.catalog.pricing import exchange_rate
from apps.catalog.serializers import StorageSerializer, VendorSerializer
from apps.catalog.serializers_prices import RegionWithCountrySerializer, StoragePriceRowSerializer
from tests.catalog.upstream import UpstreamCatalog


@pytest.fixture
def get_prices(api):
    def get(**params: Any) -> list[dict[str, Any]]:
        response = api.get("/storage_prices", params)
        assert response.status_code == 200, response.content
        return response.json()

    return get


def stored(rows: list[dict]) -> list[str]:
    return [row["storage_id"] for row in rows]


def storages_catalog(storages: dict[str, dict[str, Any]], *, price: float = 0.1) -> UpstreamCatalog:
    """One vendor with the given storages ({storage_id: column values}), each with a price in r1."""
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for storage_id, fields in storages.items():
        catalog.storage("v", storage_id, **fields)
        catalog.storage_price("v", storage_id, price=price)
    return catalog


def test_a_row_is_the_price_with_its_region_country_vendor_and_storage(sync_upstream, get_prices):
    catalog = storages_catalog({"gp3": {"storage_type": "SSD", "min_size": 1, "max_size": 16384}})
    sync_upstream(catalog)

    (row,) = get_prices()

    assert list(row) == list(StoragePriceRowSerializer().fields)
    assert list(row["region"]) == list(RegionWithCountrySerializer().fields)
    assert list(row["vendor"]) == list(VendorSerializer().fields)
    assert list(row["storage"]) == list(StorageSerializer().fields)
    assert (row["vendor_id"], row["region_id"], row["storage_id"], row["unit"]) == ("v", "r1", "gp3", "GB/month")
    assert (row["price"], row["currency"], row["status"]) == (0.1, "USD", "active")
    assert row["storage"]["storage_type"] == "ssd"
    assert row["region"]["country"]["country_id"] == "US"


def test_only_active_prices_are_listed(sync_upstream, get_prices):
    catalog = storages_catalog({"live": {}})
    catalog.storage("v", "gone")
    catalog.storage_price("v", "gone", price=0.1, status="INACTIVE")
    sync_upstream(catalog)

    assert stored(get_prices()) == ["live"]


def test_currency_converts_price_and_tiers_to_six_digits(sync_upstream, get_prices, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.storage("v", "hdd")
    catalog.storage_price("v", "hdd", price=0.0440, currency="EUR", tiers=[{"lower": 0, "upper": 100, "price": 0.05}])
    sync_upstream(catalog)

    (row,) = get_prices(currency="USD")
    rate = exchange_rate("EUR", "USD")

    assert (row["price"], row["currency"]) == (round(0.044 * rate, 6), "USD")
    assert row["price_tiered"][0]["price"] == round(0.05 * rate, 6)
    assert get_prices()[0]["price"] == row["price"]  # USD by default
    assert api.get("/storage_prices", {"currency": "XXX"}).status_code == 400


def test_storage_min_keeps_products_whose_size_range_includes_it(sync_upstream, get_prices):
    sync_upstream(
        storages_catalog(
            {"small": {"min_size": 1, "max_size": 100}, "big": {"min_size": 50, "max_size": 10000}, "unsized": {}}
        )
    )

    assert set(stored(get_prices(storage_min=80))) == {"small", "big"}
    assert set(stored(get_prices(storage_min=500))) == {"big"}


def test_storage_type_matches_any_value_in_either_spelling(sync_upstream, get_prices):
    sync_upstream(
        storages_catalog({"h": {"storage_type": "HDD"}, "s": {"storage_type": "SSD"}, "n": {"storage_type": "NETWORK"}})
    )

    assert set(stored(get_prices(storage_type=["hdd", "NETWORK"]))) == {"h", "n"}


def test_vendor_and_compliance_framework_filter_the_vendor(sync_upstream, get_prices, api):
    catalog = UpstreamCatalog()
    for vendor_id in ("a", "b"):
        catalog.vendor(vendor_id)
        catalog.storage(vendor_id, f"{vendor_id}-disk")
        catalog.storage_price(vendor_id, f"{vendor_id}-disk", price=0.1)
    catalog.compliance_framework("hipaa", vendors=("a",))
    sync_upstream(catalog)

    assert stored(get_prices(vendor="b")) == ["b-disk"]
    assert stored(get_prices(compliance_framework="hipaa")) == ["a-disk"]
    assert api.get("/storage_prices", {"vendor": "nope"}).status_code == 400


def test_places_and_green_energy_filter_the_region(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.country("DE", "Europe")
    catalog.vendor("v", regions=0)
    catalog.region("v", "us", green_energy=0)
    catalog.region("v", "de", country_id="DE", green_energy=1)
    catalog.storage("v", "disk")
    for region_id in ("us", "de"):
        catalog.storage_price("v", "disk", price=0.1, region_id=region_id)
    sync_upstream(catalog)

    assert [row["region_id"] for row in get_prices(countries="DE")] == ["de"]
    assert [row["region_id"] for row in get_prices(regions="us")] == ["us"]
    assert [row["region_id"] for row in get_prices(vendor_regions="v~de")] == ["de"]
    assert [row["region_id"] for row in get_prices(green_energy="true")] == ["de"]
    assert len(get_prices(green_energy="false")) == 2


def test_a_price_in_a_region_whose_country_is_missing_is_kept(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=0)
    catalog.region("v", "gap", country_id="TH")
    catalog.storage("v", "disk")
    catalog.storage_price("v", "disk", price=0.1, region_id="gap")
    sync_upstream(catalog)

    (row,) = get_prices()

    assert row["region"]["country"] is None


def test_sorted_by_price_by_default_and_by_any_unambiguous_column(sync_upstream, get_prices, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for storage_id, price, iops in [("mid", 0.2, 3000), ("low", 0.1, None), ("high", 0.3, 16000)]:
        catalog.storage("v", storage_id, max_iops=iops)
        catalog.storage_price("v", storage_id, price=price)
    sync_upstream(catalog)

    assert stored(get_prices()) == ["low", "mid", "high"]
    assert stored(get_prices(order_dir="desc")) == ["high", "mid", "low"]
    assert stored(get_prices(order_by="max_iops", order_dir="desc")) == ["high", "mid", "low"]  # nulls last
    assert stored(get_prices(order_by="storage_id")) == ["high", "low", "mid"]
    for name in ("nope", "name"):  # unknown; a region and a storage both have a name
        assert api.get("/storage_prices", {"order_by": name}).status_code == 400


def test_limit_defaults_to_ten_and_minus_one_lists_all(sync_upstream, get_prices, api):
    sync_upstream(storages_catalog({f"d{n:02}": {} for n in range(12)}))

    assert len(get_prices()) == 10
    assert len(get_prices(limit=-1)) == 12
    assert stored(get_prices(limit=5, page=3)) == ["d10", "d11"]
    assert api.get("/storage_prices", {"limit": 1, "add_total_count_header": "true"})["X-Total-Count"] == "12"


@pytest.mark.parametrize(
    ("params", "queries"), [({}, 1), ({"limit": -1, "currency": "EUR"}, 1), ({"countries": "US"}, 1)]
)
def test_queries_per_request_are_pinned(sync_upstream, api, django_assert_num_queries, monkeypatch, params, queries):
    # Only the endpoint's own queries: the response cache's catalog version lookup (ETag) is counted
    # by tests/catalog/test_query_counts.py.
    monkeypatch.setattr("apps.catalog.caching.catalog_version", lambda: "1:test")
    catalog = UpstreamCatalog()
    for v in range(3):
        catalog.vendor(f"v{v}", regions=3)
        for s in range(5):
            catalog.storage(f"v{v}", f"d{s}")
            for r in range(1, 4):
                catalog.storage_price(f"v{v}", f"d{s}", price=0.01 * (s + r), region_id=f"r{r}")
    sync_upstream(catalog)

    # One statement: the page's ids, then their rows (vendor, region, country and storage joined). Parameters
    # naming catalog rows are validated from memory once the catalog's first request has read them.
    api.get("/storage_prices", params)
    with django_assert_num_queries(queries):
        response = api.get("/storage_prices", params)

    assert response.status_code == 200 and response.json()
