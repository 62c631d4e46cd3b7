"""GET /server_prices: rows, one test per parameter and per error, ordering, paging, query counts.

Each test builds the prices it needs and derives the expectation from them."""

from typing import Any

import pytest

from apps.catalog.pricing import exchange_rate
from apps.catalog.serializers import CountrySerializer, VendorSerializer, ZoneSerializer
from apps.catalog.serializers_prices import (
    PricedServerSerializer,
    RegionWithCountrySerializer,
    ServerPriceRowSerializer,
)
from tests.catalog.upstream import UpstreamCatalog

MIB_PER_GB = 1024


def keys(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(row["server_id"], row["region_id"], row["allocation"]) for row in rows]


def servers(rows: list[dict]) -> set[str]:
    return {row["server_id"] for row in rows}


def priced(servers: dict[str, dict[str, Any]], *, vendor_id: str = "v", price: float = 0.1) -> UpstreamCatalog:
    """One vendor, the given servers ({server_id: column values}), one on-demand price each."""
    catalog = UpstreamCatalog()
    catalog.vendor(vendor_id)
    for server_id, fields in servers.items():
        catalog.server(vendor_id, server_id, **fields)
        catalog.price(vendor_id, server_id, price=price)
    return catalog


@pytest.fixture
def get_prices(api):
    def get(**params: Any) -> list[dict[str, Any]]:
        response = api.get("/server_prices", params)
        assert response.status_code == 200, response.content
        return response.json()

    return get


@pytest.fixture
def refused(api):
    def get(**params: Any) -> dict[str, Any]:
        response = api.get("/server_prices", params)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "invalid"
        return body["errors"]

    return get


# Rows


def test_a_row_is_the_price_with_vendor_region_country_zone_and_server(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("aws")
    catalog.server("aws", "m5.large", vcpus=2)
    catalog.price("aws", "m5.large", price=0.096)
    sync_upstream(catalog)

    (row,) = get_prices()

    assert list(row) == list(ServerPriceRowSerializer().fields)
    assert list(row["vendor"]) == list(VendorSerializer().fields)
    assert list(row["region"]) == list(RegionWithCountrySerializer().fields)
    assert list(row["region"]["country"]) == list(CountrySerializer().fields)
    assert list(row["zone"]) == list(ZoneSerializer().fields)
    assert list(row["server"]) == list(PricedServerSerializer().fields)
    assert (row["vendor_id"], row["region_id"], row["zone_id"], row["server_id"]) == ("aws", "r1", "r1z1", "m5.large")
    assert (row["allocation"], row["unit"], row["price"], row["currency"]) == ("ondemand", "hour", 0.096, "USD")
    assert row["price_monthly"] == round(0.096 * 730, 2)
    assert row["region"]["country"]["country_id"] == "US"
    assert row["zone"]["zone_id"] == "r1z1"
    assert row["server"]["vcpus"] == 2


def test_the_server_carries_its_cheapest_prices_and_the_score_per_price_of_this_price(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=2)
    catalog.benchmark("stress_ng:bestn")
    catalog.server("v", "s")
    catalog.price("v", "s", price=0.2)
    catalog.price("v", "s", price=0.05, allocation="SPOT", region_id="r2")
    catalog.score("v", "s", "stress_ng:bestn", 1000)
    sync_upstream(catalog)

    rows = {row["allocation"]: row for row in get_prices()}

    for row in rows.values():
        server = row["server"]
        assert (server["min_price"], server["min_price_spot"], server["min_price_ondemand"]) == (0.05, 0.05, 0.2)
        assert server["price"] == server["min_price"]
        assert server["min_price_ondemand_monthly"] == round(0.2 * 730, 2)
        assert server["score"] == 1000
        assert server["score_per_price"] == round(1000 / row["price"], 6)


def test_a_price_in_a_region_whose_country_is_missing_is_kept_with_a_null_country(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.region("v", "gap", country_id="TH")  # no TH row
    catalog.server("v", "s")
    catalog.price("v", "s", price=0.1, region_id="gap")
    sync_upstream(catalog)

    (row,) = get_prices()

    assert row["region"]["country_id"] == "TH"
    assert row["region"]["country"] is None


def test_a_price_whose_zone_is_missing_is_kept_with_a_null_zone(sync_upstream, get_prices):
    catalog = priced({"s": {}})
    catalog.price("v", "s", price=0.2, zone_id="nozone")
    sync_upstream(catalog)

    rows = {row["zone_id"]: row for row in get_prices()}

    assert rows["nozone"]["zone"] is None
    assert rows["r1z1"]["zone"]["zone_id"] == "r1z1"


# Currency


def test_currency_converts_the_price_its_tiers_and_the_servers_prices(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("hcloud", country_id="DE")
    catalog.server("hcloud", "cax11")
    tiers = [{"lower": 0, "upper": 672, "price": 0.0063}, {"lower": 672, "upper": "Infinity", "price": 0}]
    catalog.price("hcloud", "cax11", price=0.0063, currency="EUR", tiers=tiers)
    sync_upstream(catalog)

    (native,) = get_prices()
    (usd,) = get_prices(currency="USD")
    (huf,) = get_prices(currency="HUF")

    assert (native["price"], native["currency"]) == (round(0.0063 * exchange_rate("EUR", "USD"), 4), "USD")
    eur_to_huf = exchange_rate("EUR", "HUF")
    assert (huf["price"], huf["currency"]) == (round(0.0063 * eur_to_huf, 4), "HUF")
    assert huf["price_monthly"] == round(round(672 * 0.0063, 2) * eur_to_huf, 2)
    assert [tier["price"] for tier in huf["price_tiered"]] == [round(0.0063 * eur_to_huf, 4), 0]
    usd_to_huf = exchange_rate("USD", "HUF")
    assert huf["server"]["min_price"] == round(usd["server"]["min_price"] * usd_to_huf, 4)
    assert huf["server"]["min_price_ondemand_monthly"] == round(
        usd["server"]["min_price_ondemand_monthly"] * usd_to_huf, 2
    )


def test_a_price_in_the_requested_currency_is_left_as_it_is(sync_upstream, get_prices):
    catalog = priced({})
    catalog.server("v", "eur")
    catalog.price("v", "eur", price=0.012345, currency="EUR")
    sync_upstream(catalog)

    (row,) = get_prices(currency="EUR")

    assert (row["price"], row["currency"]) == (0.012345, "EUR")


def test_score_per_price_is_per_usd_for_prices_in_other_currencies(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("stress_ng:bestn")
    catalog.server("v", "s")
    catalog.price("v", "s", price=0.5, currency="EUR")
    catalog.score("v", "s", "stress_ng:bestn", 1000)
    sync_upstream(catalog)

    (row,) = get_prices(currency="EUR")

    assert row["server"]["score_per_price"] == round(1000 / (0.5 * exchange_rate("EUR", "USD")), 6)


def test_an_unknown_currency_is_refused(sync_upstream, refused):
    sync_upstream(priced({"s": {}}))

    assert "currency" in refused(currency="XXX")


# Filters


def test_partial_name_or_id_matches_the_servers_names_case_insensitively(sync_upstream, get_prices):
    sync_upstream(
        priced(
            {
                "gpux-1": {},
                "n": {"name": "Big GPUX"},
                "r": {"api_reference": "gpux.r"},
                "d": {"display_name": "GpuX"},
                "x": {},
            }
        )
    )

    assert servers(get_prices(partial_name_or_id="gpux")) == {"gpux-1", "n", "r", "d"}


def test_vcpus_min_defaults_to_one(sync_upstream, get_prices):
    sync_upstream(priced({"none": {"vcpus": 0}, "one": {"vcpus": 1}}))

    assert servers(get_prices()) == {"one"}


def test_vcpus_min_and_max_bound_the_servers_vcpus(sync_upstream, get_prices):
    sync_upstream(priced({f"c{n}": {"vcpus": n} for n in (1, 2, 4, 8)}))

    assert servers(get_prices(vcpus_min=4)) == {"c4", "c8"}
    assert servers(get_prices(vcpus_max=2)) == {"c1", "c2"}
    assert servers(get_prices(vcpus_min=2, vcpus_max=4)) == {"c2", "c4"}


def test_vcpus_out_of_range_are_refused(sync_upstream, refused):
    sync_upstream(priced({"s": {}}))

    assert "vcpus_min" in refused(vcpus_min=0)
    assert "vcpus_max" in refused(vcpus_max=257)


def test_architecture_matches_any_value_in_either_spelling(sync_upstream, get_prices):
    sync_upstream(priced({"intel": {"cpu_architecture": "X86_64"}, "arm": {"cpu_architecture": "ARM64"}}))

    assert servers(get_prices(architecture="arm64")) == {"arm"}
    assert servers(get_prices(architecture=["ARM64", "x86_64"])) == {"arm", "intel"}


def test_cpu_manufacturer_and_family_match_any_value(sync_upstream, get_prices):
    sync_upstream(
        priced(
            {
                "xeon": {"cpu_manufacturer": "Intel", "cpu_family": "Xeon"},
                "epyc": {"cpu_manufacturer": "AMD", "cpu_family": "EPYC"},
                "altra": {"cpu_manufacturer": "Ampere", "cpu_family": "Altra"},
            }
        )
    )

    assert servers(get_prices(cpu_manufacturer=["AMD", "Ampere"])) == {"epyc", "altra"}
    assert servers(get_prices(cpu_family="Xeon")) == {"xeon"}


def test_cpu_allocation_matches_any_value(sync_upstream, get_prices):
    sync_upstream(priced({"s": {"cpu_allocation": "SHARED"}, "d": {"cpu_allocation": "DEDICATED"}}))

    assert servers(get_prices(cpu_allocation="Shared")) == {"s"}


def test_hw_virt_keeps_servers_with_or_without_it(sync_upstream, get_prices):
    sync_upstream(priced({"yes": {"hw_virt": 1}, "no": {"hw_virt": 0}, "unknown": {}}))

    assert servers(get_prices(hw_virt="true")) == {"yes"}
    assert servers(get_prices(hw_virt="false")) == {"no"}


def test_memory_min_is_in_gb(sync_upstream, get_prices):
    sync_upstream(priced({f"m{gb}": {"memory_amount": gb * MIB_PER_GB} for gb in (1, 4, 16)}))

    assert servers(get_prices(memory_min=4)) == {"m4", "m16"}
    assert servers(get_prices(memory_min=3.5)) == {"m4", "m16"}


def test_storage_size_and_type_filter_the_built_in_storage(sync_upstream, get_prices):
    sync_upstream(
        priced(
            {
                "none": {},
                "ssd": {"storage_size": 100, "storage_type": "SSD"},
                "nvme": {"storage_size": 500, "storage_type": "NVME_SSD"},
            }
        )
    )

    assert servers(get_prices(storage_size=200)) == {"nvme"}
    assert servers(get_prices(storage_type="nvme ssd")) == {"nvme"}
    assert servers(get_prices(storage_type=["ssd", "NVME_SSD"])) == {"ssd", "nvme"}


def test_gpu_filters_read_the_accelerator_columns(sync_upstream, get_prices):
    sync_upstream(
        priced(
            {
                "cpu": {},
                "v100": {
                    "accelerator_count": 4,
                    "accelerator_memory_min": 16 * MIB_PER_GB,
                    "accelerator_memory_total": 64 * MIB_PER_GB,
                    "accelerator_manufacturer": "NVIDIA",
                    "accelerator_family": "Volta",
                    "accelerator_model": "V100",
                },
                "mi": {
                    "accelerator_count": 1,
                    "accelerator_memory_min": 128 * MIB_PER_GB,
                    "accelerator_memory_total": 128 * MIB_PER_GB,
                    "accelerator_manufacturer": "AMD",
                    "accelerator_family": "Instinct",
                    "accelerator_model": "MI300X",
                },
            }
        )
    )

    assert servers(get_prices(gpu_min=2)) == {"v100"}
    assert servers(get_prices(gpu_memory_min=32)) == {"mi"}
    assert servers(get_prices(gpu_memory_total=64)) == {"v100", "mi"}
    assert servers(get_prices(gpu_manufacturer="NVIDIA")) == {"v100"}
    assert servers(get_prices(gpu_family=["Volta", "Instinct"])) == {"v100", "mi"}
    assert servers(get_prices(gpu_model="MI300X")) == {"mi"}


def scored_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("stress_ng:bestn")
    for server_id, price, score in [("cheap", 0.01, 1000), ("dear", 1.0, 5000), ("unscored", 0.02, None)]:
        catalog.server("v", server_id)
        catalog.price("v", server_id, price=price)
        if score is not None:
            catalog.score("v", server_id, "stress_ng:bestn", score)
    return catalog


def test_benchmark_score_stressng_cpu_min_is_a_minimum_score(sync_upstream, get_prices):
    sync_upstream(scored_catalog())

    assert servers(get_prices(benchmark_score_stressng_cpu_min=2000)) == {"dear"}
    assert servers(get_prices(benchmark_score_stressng_cpu_min=1000)) == {"cheap", "dear"}


def test_benchmark_score_per_price_is_the_score_per_usd_hour_of_each_price(sync_upstream, get_prices):
    sync_upstream(scored_catalog())

    # cheap: 1000 / 0.01 = 100,000; dear: 5000 / 1.0 = 5,000; unscored has none.
    assert servers(get_prices(benchmark_score_per_price_stressng_cpu_min=10_000)) == {"cheap"}
    assert servers(get_prices(benchmark_score_per_price_stressng_cpu_min=5_000)) == {"cheap", "dear"}


def test_price_max_is_in_the_requested_currency(sync_upstream, get_prices):
    catalog = priced({})
    for server_id, price, currency in [("usd", 0.10, "USD"), ("eur", 0.10, "EUR"), ("dear", 0.50, "USD")]:
        catalog.server("v", server_id)
        catalog.price("v", server_id, price=price, currency=currency)
    sync_upstream(catalog)

    in_usd = {"usd": 0.10, "eur": 0.10 * exchange_rate("EUR", "USD"), "dear": 0.50}
    limit = (0.10 + in_usd["eur"]) / 2 if in_usd["eur"] > 0.10 else 0.10
    assert servers(get_prices(price_max=limit)) == {s for s, p in in_usd.items() if p <= limit}
    in_eur = {server: price * exchange_rate("USD", "EUR") for server, price in in_usd.items()}
    assert servers(get_prices(price_max=0.2, currency="EUR")) == {s for s, p in in_eur.items() if p <= 0.2}


def test_only_active_hides_inactive_prices_and_servers_by_default(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=2)
    catalog.server("v", "live")
    catalog.price("v", "live", price=0.1)
    catalog.price("v", "live", price=0.2, region_id="r2", status="INACTIVE")
    catalog.server("v", "retired", status="INACTIVE")
    catalog.price("v", "retired", price=0.3)
    sync_upstream(catalog)

    assert keys(get_prices()) == [("live", "r1", "ondemand")]
    assert keys(get_prices(only_active="true")) == [("live", "r1", "ondemand")]
    assert len(get_prices(only_active="false")) == 3


def test_green_energy_true_keeps_green_regions_and_false_filters_nothing(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=0)
    catalog.region("v", "green", green_energy=1)
    catalog.region("v", "grey", green_energy=0)
    catalog.region("v", "unknown")
    for region_id in ("green", "grey", "unknown"):
        catalog.server("v", region_id)
        catalog.price("v", region_id, price=0.1, region_id=region_id)
    sync_upstream(catalog)

    assert servers(get_prices(green_energy="true")) == {"green"}
    # As upstream: false is "no filter" (a switch in the Navigator), not "only non-green regions".
    assert servers(get_prices(green_energy="false")) == {"green", "grey", "unknown"}


def test_allocation_keeps_one_allocation_in_either_spelling(sync_upstream, get_prices):
    catalog = priced({"s": {}})
    catalog.price("v", "s", price=0.03, allocation="SPOT")
    sync_upstream(catalog)

    assert keys(get_prices(allocation="spot")) == [("s", "r1", "spot")]
    assert keys(get_prices(allocation="ONDEMAND")) == [("s", "r1", "ondemand")]


def test_an_unknown_allocation_is_refused(sync_upstream, refused):
    sync_upstream(priced({"s": {}}))

    assert "allocation" in refused(allocation="monthly")


def test_vendor_matches_any_of_the_vendors_and_unknown_ones_are_refused(sync_upstream, get_prices, refused):
    catalog = UpstreamCatalog()
    for vendor_id in ("a", "b", "c"):
        catalog.vendor(vendor_id)
        catalog.server(vendor_id, f"{vendor_id}-s")
        catalog.price(vendor_id, f"{vendor_id}-s", price=0.1)
    sync_upstream(catalog)

    assert servers(get_prices(vendor=["a", "c"])) == {"a-s", "c-s"}
    assert "vendor" in refused(vendor="nope")


def test_compliance_framework_keeps_the_vendors_implementing_it(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    for vendor_id in ("a", "b"):
        catalog.vendor(vendor_id)
        catalog.server(vendor_id, f"{vendor_id}-s")
        catalog.price(vendor_id, f"{vendor_id}-s", price=0.1)
    catalog.compliance_framework("hipaa", vendors=("b",))
    sync_upstream(catalog)

    assert servers(get_prices(compliance_framework="hipaa")) == {"b-s"}


def test_places_filter_the_prices_region(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.country("DE", "Europe")
    catalog.vendor("v", regions=1)
    catalog.region("v", "de", country_id="DE")
    for region_id in ("r1", "de"):
        catalog.server("v", f"s-{region_id}")
        catalog.price("v", f"s-{region_id}", price=0.1, region_id=region_id)
    sync_upstream(catalog)

    assert servers(get_prices(regions="de")) == {"s-de"}
    assert servers(get_prices(vendor_regions="v~r1")) == {"s-r1"}
    assert servers(get_prices(countries="DE")) == {"s-de"}


def test_anonymous_callers_may_give_several_countries_here_as_upstream(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.country("DE", "Europe")
    catalog.vendor("v")
    catalog.server("v", "s")
    catalog.price("v", "s", price=0.1)
    sync_upstream(catalog)

    assert servers(get_prices(countries=["US", "DE"])) == {"s"}


def test_unknown_parameters_are_refused(sync_upstream, refused):
    sync_upstream(priced({"s": {}}))

    assert refused(best_price_allocation="ANY") == {"best_price_allocation": ["Unknown query parameter."]}


# Ordering and paging


def test_prices_are_sorted_by_price_with_ties_in_catalog_order(sync_upstream, get_prices):
    catalog = priced({})
    for server_id, price in [("b", 0.2), ("a", 0.3), ("tie2", 0.1), ("tie1", 0.1)]:
        catalog.server("v", server_id)
        catalog.price("v", server_id, price=price)
    sync_upstream(catalog)

    assert [row["server_id"] for row in get_prices()] == ["tie2", "tie1", "b", "a"]
    assert [row["server_id"] for row in get_prices(order_dir="desc")] == ["a", "b", "tie2", "tie1"]


def test_order_by_a_server_or_region_column(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=0)
    for number, (server_id, vcpus, lat) in enumerate([("x", 8, 10.0), ("y", 2, 30.0), ("z", 4, 20.0)]):
        catalog.region("v", f"r{number}", lat=lat)
        catalog.server("v", server_id, vcpus=vcpus)
        catalog.price("v", server_id, price=0.1, region_id=f"r{number}")
    sync_upstream(catalog)

    assert [row["server_id"] for row in get_prices(order_by="vcpus")] == ["y", "z", "x"]
    assert [row["server_id"] for row in get_prices(order_by="lat", order_dir="desc")] == ["y", "z", "x"]


def test_order_by_a_column_of_the_price_its_server_and_region_share_sorts_by_the_prices(sync_upstream, get_prices):
    catalog = UpstreamCatalog()
    for vendor_id in ("b", "a"):
        catalog.vendor(vendor_id)
        catalog.server(vendor_id, "s")
        catalog.price(vendor_id, "s", price=0.1)
    sync_upstream(catalog)

    # Upstream refuses these as ambiguous; the price's own column is the obvious reading.
    assert [row["vendor_id"] for row in get_prices(order_by="vendor_id")] == ["a", "b"]


def test_order_by_refuses_names_that_are_not_a_column_or_that_server_and_region_share(sync_upstream, refused):
    sync_upstream(priced({"s": {}}))

    assert "order_by" in refused(order_by="nope")
    assert "order_by" in refused(order_by="display_name")


def test_values_missing_for_the_sort_column_come_last_in_both_directions(sync_upstream, get_prices):
    catalog = priced({"s": {}}, price=0.5)
    catalog.price("v", "s", price=0.01, allocation="SPOT")  # no monthly price
    sync_upstream(catalog)

    assert [row["allocation"] for row in get_prices(order_by="price_monthly")] == ["ondemand", "spot"]
    assert [row["allocation"] for row in get_prices(order_by="price_monthly", order_dir="desc")] == ["ondemand", "spot"]


def test_order_by_score_leaves_out_servers_without_a_score(sync_upstream, get_prices):
    sync_upstream(scored_catalog())

    assert [row["server_id"] for row in get_prices(order_by="score")] == ["cheap", "dear"]
    assert [row["server_id"] for row in get_prices(order_by="score", order_dir="desc")] == ["dear", "cheap"]


def test_order_by_score_per_price_sorts_by_the_score_per_usd_of_each_price(sync_upstream, get_prices):
    sync_upstream(scored_catalog())

    rows = get_prices(order_by="score_per_price", order_dir="desc")

    assert [row["server_id"] for row in rows] == ["cheap", "dear"]
    assert rows[0]["server"]["score_per_price"] > rows[1]["server"]["score_per_price"]


def test_order_by_a_servers_cheapest_price(sync_upstream, get_prices):
    catalog = priced({})
    for server_id, price in [("mid", 0.2), ("low", 0.1), ("high", 0.3)]:
        catalog.server("v", server_id)
        catalog.price("v", server_id, price=price)
    sync_upstream(catalog)

    assert [row["server_id"] for row in get_prices(order_by="min_price", order_dir="desc")] == ["high", "mid", "low"]


def test_limit_defaults_to_25_and_pages_follow_the_order(sync_upstream, get_prices):
    catalog = priced({})
    for number in range(30):
        catalog.server("v", f"s{number:02}")
        catalog.price("v", f"s{number:02}", price=0.01 * (number + 1))
    sync_upstream(catalog)

    first = get_prices()
    assert [row["server_id"] for row in first] == [f"s{n:02}" for n in range(25)]
    assert [row["server_id"] for row in get_prices(limit=10, page=3)] == [f"s{n:02}" for n in range(20, 30)]
    assert get_prices(limit=10, page=4) == []


def test_limit_is_1_to_250(sync_upstream, refused):
    sync_upstream(priced({"s": {}}))

    assert "limit" in refused(limit=251)
    assert "limit" in refused(limit=-1)
    assert "limit" in refused(limit=0)


def test_add_total_count_header_counts_every_matching_price(sync_upstream, api):
    catalog = priced({f"s{n}": {"vcpus": n} for n in range(1, 8)})
    sync_upstream(catalog)

    response = api.get("/server_prices", {"limit": 2, "vcpus_min": 3, "add_total_count_header": "true"})

    assert response["X-Total-Count"] == "5"
    assert len(response.json()) == 2
    assert "X-Total-Count" not in api.get("/server_prices").headers


# Query counts


@pytest.fixture
def own_queries(monkeypatch):
    """Counts only the endpoint's own queries: the response cache's catalog version lookup (ETag) is
    counted by tests/catalog/test_query_counts.py."""
    monkeypatch.setattr("apps.catalog.caching.catalog_version", lambda: "1:test")


def catalog_of_size(vendors: int, servers_per_vendor: int) -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.benchmark("stress_ng:bestn")
    for v in range(vendors):
        catalog.vendor(f"v{v}", regions=2)
        for s in range(servers_per_vendor):
            catalog.server(f"v{v}", f"s{s}", vcpus=1 + s % 8)
            catalog.score(f"v{v}", f"s{s}", "stress_ng:bestn", 100.0 * (s + 1))
            catalog.price(f"v{v}", f"s{s}", price=0.01 * (s + 1))
            catalog.price(f"v{v}", f"s{s}", price=0.005 * (s + 1), allocation="SPOT", region_id="r2")
    catalog.compliance_framework("hipaa", vendors=("v0",))
    return catalog


# One statement: the page's price ids (sorted on the narrow key alone), then their rows with vendor,
# region, country, zone and server joined; one more for the count. Counting the matching servers
# (ServerPriceFilterSet's server conditions: join or EXISTS) is done once per catalog and conditions,
# by the first request here. Parameters naming catalog rows (vendor, compliance framework, places) are
# validated from memory once the catalog's first request has read them.
QUERIES = [
    ({}, 1),
    ({"limit": 250, "currency": "EUR"}, 1),
    ({"vcpus_min": 2, "order_by": "score_per_price"}, 1),
    ({"add_total_count_header": "true"}, 2),
    ({"memory_min": 1}, 1),  # the matching servers counted by the first request (selectors/prices.py)
    ({"vendor": ["v0", "v1"]}, 1),
    ({"compliance_framework": "hipaa"}, 1),
    ({"regions": "r1", "vendor_regions": "v0~r1", "countries": "US"}, 1),
]


@pytest.mark.parametrize("size", [(2, 2), (6, 40)], ids=["small", "large"])
@pytest.mark.parametrize(("params", "queries"), QUERIES, ids=[str(sorted(p)) for p, _ in QUERIES])
def test_queries_per_request_are_pinned_whatever_the_page_size(
    sync_upstream, api, django_assert_num_queries, own_queries, size, params, queries
):
    sync_upstream(catalog_of_size(*size))
    api.get("/server_prices", params)  # the first request of a catalog reads the ids it validates against

    with django_assert_num_queries(queries):
        response = api.get("/server_prices", params)

    assert response.status_code == 200, response.content
    assert response.json()


def test_an_empty_page_reads_no_rows(sync_upstream, api, django_assert_num_queries, own_queries):
    sync_upstream(priced({"s": {}}))

    # The catalog's version (read once per KEEPER_CATALOG_VERSION_TTL_SECONDS), the count that chooses how to
    # apply the server conditions (once per catalog version), then the (empty) page.
    with django_assert_num_queries(3):
        assert api.get("/server_prices", {"vcpus_min": 200}).json() == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["cheap-small", "big"]),
        ({"vcpus_min": 2}, ["big"]),
        ({"vcpus_min": 1, "memory_min": 0.5}, ["cheap-small", "big"]),
    ],
)
def test_server_conditions_give_the_same_rows_joined_or_checked_per_price(sync_upstream, get_prices, params, expected):
    # Broad searches check each price's server (EXISTS), narrow ones join the servers: same answer.
    catalog = priced({})
    catalog.server("v", "cheap-small", vcpus=1, memory_amount=1024)
    catalog.price("v", "cheap-small", price=0.01)
    catalog.server("v", "big", vcpus=8, memory_amount=32768)
    catalog.price("v", "big", price=0.5)
    catalog.server("v", "retired", vcpus=8, status="INACTIVE")
    catalog.price("v", "retired", price=0.02)
    sync_upstream(catalog)

    assert [row["server_id"] for row in get_prices(**params)] == expected


def page_plan(api, params: dict[str, Any]) -> list[str]:
    """SQLite's plan of the search's page (the narrow part of its one statement), as EXPLAIN QUERY PLAN's lines."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert api.get("/server_prices", params).status_code == 200
    statement = next(query["sql"] for query in captured.captured_queries if query["sql"].startswith("WITH page"))
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {statement.replace('%', '%%')}")
        lines = cursor.fetchall()
    # The lines under the page's node (id, parent, unused, detail), at any depth.
    inside = {next(row[0] for row in lines if row[3].startswith("MATERIALIZE page"))}
    for node, parent, _, _ in lines:
        if parent in inside:
            inside.add(node)
    return [detail for node, parent, _, detail in lines if parent in inside]


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"vendor": "v0", "allocation": "spot", "vcpus_min": 2}, "server_price_allocation_price"),
        ({"vendor": "v0", "order_dir": "desc"}, "server_price_vendor_price"),
        ({}, "server_price_price"),
    ],
    ids=["vendor-allocation", "vendor", "none"],
)
def test_a_page_is_read_in_price_order_from_an_index_not_sorted(sync_upstream, api, params, index):
    """SQLite walks the prices of the vendor (and allocation) in price order and stops after a page, checking
    each price's server as it goes, instead of sorting every price of the vendor (issue 16, item 7: this
    sort made `?vendor=aws&allocation=spot&vcpus_min=4` 100 times slower than the unfiltered search)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL plans with statistics")
    sync_upstream(catalog_of_size(2, 4))

    plan = page_plan(api, params)

    assert any(index in line for line in plan), plan
    # Sorting only the ties of a price by id (descending by price, ascending by id) is no sort of all.
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_when_few_servers_match_each_ones_prices_are_read_from_the_server_index(sync_upstream, api):
    """Joined from the servers (a quarter of them match here), each server's prices come from the index that
    starts with the server, not from a vendor's index scanned once per server (which the new vendor indexes
    would otherwise make SQLite choose: minutes instead of a fraction of a second on the sample)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL plans with statistics")
    sync_upstream(catalog_of_size(2, 8))

    for params in ({"vcpus_min": 8}, {"vcpus_min": 8, "vendor": "v0", "allocation": "spot"}, {"order_by": "vcpus"}):
        plan = page_plan(api, params)

        assert any("SEARCH p USING INDEX server_price_server" in line for line in plan), (params, plan)
