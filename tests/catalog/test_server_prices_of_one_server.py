"""GET /server/{vendor}/{server}/prices: one server's active prices, as upstream stores them."""

import pytest

from apps.catalog.pricing import exchange_rate
from apps.catalog.selectors.prices import SERVER_PRICE_COLUMNS
from tests.catalog.upstream import UpstreamCatalog


@pytest.fixture
def catalog() -> UpstreamCatalog:
    """Vendor v with regions r1 (US), r2 (US), de1 (DE), fr1 (FR), jp1 (JP), ca1 (CA); server "small" priced in each."""
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=2)
    for region, country in [("de1", "DE"), ("fr1", "FR"), ("jp1", "JP"), ("ca1", "CA")]:
        catalog.country(country, continent="Somewhere")
        catalog.region("v", region, country_id=country)
    catalog.server("v", "small", api_reference="small-ref")
    catalog.server("v", "unpriced")
    catalog.price("v", "small", price=0.2, region_id="r2")
    catalog.price("v", "small", price=0.05, allocation="SPOT", region_id="r2")
    catalog.price("v", "small", price=0.1, region_id="r1")
    catalog.price("v", "small", price=0.09, region_id="de1", currency="EUR")
    catalog.price("v", "small", price=0.3, region_id="fr1", status="INACTIVE")
    catalog.price("v", "small", price=0.4, region_id="jp1")
    catalog.price("v", "small", price=0.5, region_id="ca1")
    return catalog


@pytest.fixture
def loaded(sync_upstream, catalog):
    return sync_upstream(catalog)


def prices(api, path="/server/v/small/prices", **params):
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_rows_are_the_active_prices_with_upstreams_columns(loaded, api):
    rows = prices(api)

    assert all(list(row) == SERVER_PRICE_COLUMNS for row in rows)
    assert all(row["server_id"] == "small" and row["status"] == "active" for row in rows)
    assert "fr1" not in {row["region_id"] for row in rows}  # its only price is inactive


def test_rows_are_ordered_by_region_zone_and_allocation(loaded, api):
    keys = [(row["region_id"], row["zone_id"], row["allocation"]) for row in prices(api)]

    assert keys == sorted(keys)
    assert ("r2", "r2z1", "ondemand") in keys and ("r2", "r2z1", "spot") in keys


def test_the_server_is_found_by_its_api_reference(loaded, api):
    assert prices(api, "/server/v/small-ref/prices") == prices(api)


def test_a_server_without_prices_has_none(loaded, api):
    assert prices(api, "/server/v/unpriced/prices") == []


def test_prices_stay_in_their_currency_when_it_is_asked_for(loaded, api):
    [german] = [row for row in prices(api, currency="EUR") if row["region_id"] == "de1"]

    assert (german["price"], german["currency"]) == (0.09, "EUR")


def test_the_default_currency_is_usd_and_other_prices_are_converted(loaded, api):
    rows = {row["region_id"]: row for row in prices(api) if row["allocation"] == "ondemand"}

    assert {row["currency"] for row in rows.values()} == {"USD"}
    assert rows["de1"]["price"] == round(0.09 * exchange_rate("EUR", "USD"), 4)
    assert rows["r1"]["price"] == 0.1


def test_currency_converts_the_price_tiers_too(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "tiered")
    tiers = [{"lower": 0, "upper": 672, "price": 0.02}, {"lower": 672, "upper": "Infinity", "price": 0}]
    catalog.price("v", "tiered", price=0.02, currency="EUR", tiers=tiers)
    sync_upstream(catalog)

    [row] = prices(api, "/server/v/tiered/prices", currency="GBP")

    rate = exchange_rate("EUR", "GBP")
    assert row["currency"] == "GBP"
    assert row["price"] == round(0.02 * rate, 4)
    assert [tier["price"] for tier in row["price_tiered"]] == [round(0.02 * rate, 4), 0.0]
    assert row["price_tiered"][1]["upper"] == "Infinity"


def test_countries_keep_the_prices_of_regions_in_that_country(loaded, api):
    rows = prices(api, countries="DE")

    assert {row["region_id"] for row in rows} == {"de1"}


def test_vendor_regions_keep_the_prices_of_those_regions(loaded, api):
    rows = prices(api, vendor_regions=["v~r1", "v~jp1"])

    assert {row["region_id"] for row in rows} == {"r1", "jp1"}


def test_countries_and_vendor_regions_narrow_together(loaded, api):
    rows = prices(api, countries="US", vendor_regions=["v~r1", "v~de1"])

    assert {row["region_id"] for row in rows} == {"r1"}


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"countries": "ZZ"}, "countries"),
        ({"vendor_regions": "v~nowhere"}, "vendor_regions"),
        ({"vendor_regions": "r1"}, "vendor_regions"),
        ({"currency": ""}, "currency"),
        ({"vcpus_min": "2"}, "vcpus_min"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(loaded, http, params, bad):
    response = http.get("/server/v/small/prices", params)

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("invalid", [bad])


def test_anonymous_callers_give_at_most_one_country(loaded, http):
    response = http.get("/server/v/small/prices", {"countries": ["US", "DE"]})

    assert response.status_code == 400
    assert response.json()["errors"]["countries"] == ["Max 1 country can be queried at a time without authentication."]


def test_anonymous_callers_give_at_most_three_regions(loaded, http):
    response = http.get("/server/v/small/prices", {"vendor_regions": ["v~r1", "v~r2", "v~de1", "v~jp1"]})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["vendor_regions"]


def test_authenticated_callers_give_as_many_places_as_they_like(loaded, api, django_user_model):
    api.force_login(django_user_model.objects.create_user("reader"))

    rows = prices(api, countries=["US", "DE"], vendor_regions=["v~r1", "v~r2", "v~de1", "v~jp1"])

    assert {row["region_id"] for row in rows} == {"r1", "r2", "de1"}


def test_the_anonymous_limit_holds_when_an_authenticated_answer_is_cached(
    loaded, api, http, settings, django_user_model
):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 60
    params = {"countries": ["US", "DE"]}
    api.force_login(django_user_model.objects.create_user("reader"))
    assert api.get("/server/v/small/prices", params).status_code == 200

    assert http.get("/server/v/small/prices", params).status_code == 400


@pytest.mark.parametrize("path", ["/server/v/nothing/prices", "/server/nowhere/small/prices"])
def test_an_unknown_server_is_a_json_404(loaded, http, path):
    response = http.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_server_id_with_a_slash_has_its_prices(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "gpu/large")
    catalog.server("v", "prices")
    catalog.price("v", "gpu/large", price=1.5)
    sync_upstream(catalog)

    [row] = prices(api, "/server/v/gpu/large/prices")

    assert (row["server_id"], row["price"]) == ("gpu/large", 1.5)
    # ... and the server detail still answers for a server named like the sub-resource.
    assert api.get("/server/v/prices").json()["server_id"] == "prices"


def test_prices_are_cached_by_shared_caches_for_less_long(loaded, api, settings):
    response = api.get("/server/v/small/prices")

    assert response["Cache-Control"].startswith(f"public, max-age={settings.KEEPER_PRICES_MAX_AGE_SECONDS},")


@pytest.mark.parametrize(
    ("params", "queries"),
    [
        ({}, 2),  # the server's id, its prices
        ({"currency": "EUR"}, 2),
        ({"countries": "US"}, 2),  # places validated from memory after the first request
        ({"countries": "US", "vendor_regions": "v~r1"}, 2),
    ],
)
def test_queries_are_pinned_whatever_the_number_of_prices(
    sync_upstream, api, django_assert_num_queries, params, queries
):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=20)
    catalog.server("v", "big")
    for number in range(1, 21):
        catalog.price("v", "big", price=0.01 * number, region_id=f"r{number}")
        catalog.price("v", "big", price=0.005 * number, allocation="SPOT", region_id=f"r{number}")
    sync_upstream(catalog)
    # The catalog version and the places are read once per process and sync.
    api.get("/server/v/big/prices", params)

    with django_assert_num_queries(queries):
        response = api.get("/server/v/big/prices", params)

    assert response.status_code == 200
    assert response.json()


def test_the_openapi_document_describes_every_parameter(db, api):
    schema = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()

    parameters = schema["paths"]["/server/{vendor}/{server}/prices"]["get"]["parameters"]

    assert {parameter["name"] for parameter in parameters} == {
        "vendor",
        "server",
        "countries",
        "vendor_regions",
        "currency",
    }
    assert all(parameter.get("description") for parameter in parameters)
