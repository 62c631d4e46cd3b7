"""GET /servers rows: their shape and the values derived at sync time (prices in USD, monthly prices, scores)."""

import pytest

from apps.catalog.pricing import HOURS_PER_MONTH, exchange_rate
from apps.catalog.serializers import ServerSearchResultSerializer, VendorSerializer
from tests.catalog.upstream import UpstreamCatalog, sample_catalog

DERIVED = [
    "score",
    "score1",
    "price",
    "min_price",
    "min_price_spot",
    "min_price_ondemand",
    "min_price_ondemand_monthly",
    "score_per_price",
    "selected_benchmark_score",
    "selected_benchmark_score_per_price",
    "price_breakdown",
]


def only(rows: list[dict], server_id: str) -> dict:
    [row] = [row for row in rows if row["server_id"] == server_id]
    return row


def test_a_row_has_the_upstream_server_columns_the_vendor_and_the_derived_values(loaded_catalog, get_servers):
    upstream = sample_catalog()

    rows = get_servers(limit=-1)

    assert rows
    for row in rows:
        assert set(row) == {*upstream.columns("server"), "vendor", *DERIVED}
        assert set(row["vendor"]) == set(upstream.columns("vendor"))
        assert row["vendor"]["vendor_id"] == row["vendor_id"]


def test_the_documented_row_shape_matches_the_rows(loaded_catalog, get_servers):
    [row, *_] = get_servers()

    assert set(ServerSearchResultSerializer().fields) == set(row)
    assert set(VendorSerializer().fields) == set(row["vendor"])


def test_the_nested_vendor_carries_the_vendor_columns(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("hcloud", country_id="DE", name="Hetzner Cloud", city="Gunzenhausen", founding_year=1997)
    catalog.server("hcloud", "cx22")
    catalog.price("hcloud", "cx22", price=0.006)
    sync_upstream(catalog)

    [row] = get_servers()

    vendor = row["vendor"]
    assert (vendor["vendor_id"], vendor["name"], vendor["country_id"]) == ("hcloud", "Hetzner Cloud", "DE")
    assert (vendor["city"], vendor["founding_year"]) == ("Gunzenhausen", 1997)


def test_min_prices_are_the_cheapest_active_prices_across_regions_and_zones(sync_upstream, get_servers):
    ondemand = {("r1", "r1z1"): 0.50, ("r1", "r1z2"): 0.45, ("r2", "r2z1"): 0.30}
    spot = {("r1", "r1z1"): 0.20, ("r2", "r2z2"): 0.15}
    catalog = UpstreamCatalog()
    catalog.vendor("aws", regions=0)
    catalog.region("aws", "r1", zones=2)
    catalog.region("aws", "r2", zones=2)
    catalog.server("aws", "m5.large")
    for (region, zone), price in ondemand.items():
        catalog.price("aws", "m5.large", price=price, region_id=region, zone_id=zone)
    for (region, zone), price in spot.items():
        catalog.price("aws", "m5.large", price=price, allocation="SPOT", region_id=region, zone_id=zone)
    # Inactive prices are history, not offers.
    catalog.price("aws", "m5.large", price=0.01, allocation="SPOT", region_id="r2", zone_id="r2z1", status="INACTIVE")
    catalog.price("aws", "m5.large", price=0.02, region_id="r2", zone_id="r2z2", status="INACTIVE")
    sync_upstream(catalog)

    [row] = get_servers()

    assert row["min_price_ondemand"] == min(ondemand.values())
    assert row["min_price_spot"] == min(spot.values())
    assert row["min_price"] == min([*ondemand.values(), *spot.values()])
    assert row["price"] == row["min_price"]
    assert row["min_price_ondemand_monthly"] == pytest.approx(min(ondemand.values()) * HOURS_PER_MONTH, abs=0.01)


def test_prices_in_other_currencies_are_converted_to_usd(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("hcloud", country_id="DE", regions=2)
    catalog.server("hcloud", "cx22")
    eur, usd = 0.0060, 0.0070
    catalog.price("hcloud", "cx22", price=eur, currency="EUR", region_id="r1")
    catalog.price("hcloud", "cx22", price=usd, currency="USD", region_id="r2")
    sync_upstream(catalog)

    [row] = get_servers()

    eur_in_usd = eur * exchange_rate("EUR", "USD")
    assert row["min_price"] == pytest.approx(min(eur_in_usd, usd), abs=1e-4)
    assert row["min_price_ondemand_monthly"] == pytest.approx(min(eur_in_usd, usd) * HOURS_PER_MONTH, abs=0.01)


def test_monthly_price_is_730_hours_capped_by_the_price_tiers(sync_upstream, get_servers):
    hourly = 0.0063
    capped_at = 672
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "capped")
    catalog.price(
        "v",
        "capped",
        price=hourly,
        tiers=[
            {"lower": 0, "upper": capped_at, "price": hourly},
            {"lower": capped_at, "upper": "Infinity", "price": 0},
        ],
    )
    catalog.server("v", "uncapped")
    catalog.price("v", "uncapped", price=hourly)
    sync_upstream(catalog)

    rows = get_servers()

    assert only(rows, "capped")["min_price_ondemand_monthly"] == pytest.approx(capped_at * hourly, abs=0.01)
    assert only(rows, "uncapped")["min_price_ondemand_monthly"] == pytest.approx(HOURS_PER_MONTH * hourly, abs=0.01)


def test_monthly_price_of_a_tiered_eur_price_is_converted_to_usd(loaded_catalog, get_servers):
    # sample_catalog: hcloud cax11 costs 0.0063 EUR/hour, billed for at most 672 hours a month.
    [row] = get_servers(vendor="hcloud")

    expected = 672 * 0.0063 * exchange_rate("EUR", "USD")
    assert row["min_price_ondemand_monthly"] == pytest.approx(expected, abs=0.01)
    assert row["min_price_ondemand"] == pytest.approx(0.0063 * exchange_rate("EUR", "USD"), abs=1e-4)


def test_spot_prices_have_no_monthly_price(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "spot")
    catalog.price("v", "spot", price=0.1, allocation="SPOT")
    sync_upstream(catalog)

    [row] = get_servers()

    assert (row["min_price_spot"], row["min_price_ondemand"], row["min_price_ondemand_monthly"]) == (0.1, None, None)


def test_scores_come_from_stress_ng_bestn_and_best1(sync_upstream, get_servers):
    bestn, best1 = 16000.0, 2100.0
    price = 0.3885
    catalog = UpstreamCatalog()
    catalog.vendor("gcp")
    for benchmark in ("stress_ng:bestn", "stress_ng:best1", "geekbench:score"):
        catalog.benchmark(benchmark)
    catalog.server("gcp", "1234")
    catalog.price("gcp", "1234", price=price)
    catalog.score("gcp", "1234", "stress_ng:bestn", bestn)
    catalog.score("gcp", "1234", "stress_ng:best1", best1)
    catalog.score("gcp", "1234", "geekbench:score", 99999.0)
    sync_upstream(catalog)

    [row] = get_servers()

    assert (row["score"], row["score1"]) == (bestn, best1)
    assert row["score_per_price"] == pytest.approx(bestn / price, abs=1e-3)


def test_a_server_without_scores_has_no_score_per_price(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "unscored")
    catalog.price("v", "unscored", price=0.1)
    sync_upstream(catalog)

    [row] = get_servers()

    assert (row["score"], row["score1"], row["score_per_price"]) == (None, None, None)


def test_a_server_without_active_prices_has_no_prices(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("stress_ng:bestn")
    catalog.server("v", "unpriced")
    catalog.score("v", "unpriced", "stress_ng:bestn", 1000.0)
    catalog.price("v", "unpriced", price=0.1, status="INACTIVE")
    sync_upstream(catalog)

    [row] = get_servers(only_orderable="false", order_by="server_id")

    assert {column: row[column] for column in DERIVED} == {
        "score": 1000.0,
        "score1": None,
        "price": None,
        "min_price": None,
        "min_price_spot": None,
        "min_price_ondemand": None,
        "min_price_ondemand_monthly": None,
        "score_per_price": None,
        "selected_benchmark_score": None,
        "selected_benchmark_score_per_price": None,
        "price_breakdown": {
            "compute_min_price": None,
            "compute_min_price_spot": None,
            "compute_min_price_ondemand": None,
            "compute_min_price_ondemand_monthly": None,
            "traffic_inbound_hourly": None,
            "traffic_inbound_monthly": None,
            "traffic_outbound_hourly": None,
            "traffic_outbound_monthly": None,
            "traffic_hourly": None,
            "traffic_monthly": None,
            "extra_storage_hourly": None,
            "extra_storage_monthly": None,
        },
    }


def test_the_sample_catalog_rows_carry_its_prices_and_scores(loaded_catalog, get_servers):
    rows = get_servers(limit=-1)

    m5 = only(rows, "m5.large")
    assert (m5["min_price"], m5["min_price_spot"], m5["min_price_ondemand"]) == (0.035, 0.035, 0.096)
    assert (m5["score"], m5["score1"]) == (4000, 2100)
    assert m5["score_per_price"] == pytest.approx(4000 / 0.035, abs=1e-3)
    t3 = only(rows, "t3.micro")
    # The spot price is in another region than the on-demand one.
    assert (t3["min_price"], t3["min_price_spot"], t3["min_price_ondemand"]) == (0.0031, 0.0031, 0.0104)
