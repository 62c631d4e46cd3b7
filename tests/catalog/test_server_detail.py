"""GET /server/{vendor}/{server} and /v2/server/{vendor}/{server}: one server by id or API reference."""

import pytest

from apps.catalog.pricing import exchange_rate
from tests.catalog.upstream import UpstreamCatalog

DETAIL_PATHS = ["/server/{}/{}", "/v2/server/{}/{}"]
PRICES = ["price", "min_price", "min_price_spot", "min_price_ondemand"]


@pytest.mark.parametrize("template", DETAIL_PATHS)
def test_a_server_is_found_by_its_id(loaded_catalog, api, get_servers, template):
    [listed] = [row for row in get_servers(vendor="aws") if row["server_id"] == "m5.large"]

    response = api.get(template.format("aws", "m5.large"))

    assert response.status_code == 200
    assert response.json() == listed


@pytest.mark.parametrize("template", DETAIL_PATHS)
def test_a_server_is_found_by_its_api_reference(loaded_catalog, api, template):
    # sample_catalog: GCP's server "1234" is known by its API reference "n2-standard-8".
    by_reference = api.get(template.format("gcp", "n2-standard-8"))
    by_id = api.get(template.format("gcp", "1234"))

    assert by_reference.status_code == 200
    assert by_reference.json()["server_id"] == "1234"
    assert by_reference.json() == by_id.json()


def test_the_id_wins_over_another_servers_api_reference(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "alpha", api_reference="beta")
    catalog.server("v", "beta", api_reference="something-else")
    sync_upstream(catalog)

    assert api.get("/server/v/beta").json()["server_id"] == "beta"
    assert api.get("/server/v/alpha").json()["server_id"] == "alpha"


def test_a_server_id_with_a_slash_is_found(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "gpu/large", api_reference="gpu-large")
    sync_upstream(catalog)

    response = api.get("/server/v/gpu/large")

    assert response.status_code == 200
    assert response.json()["server_id"] == "gpu/large"


def test_the_same_id_at_another_vendor_is_not_found(loaded_catalog, http):
    assert http.get("/server/gcp/m5.large").status_code == 404


def test_the_row_has_the_search_row_shape_with_vendor_and_prices(loaded_catalog, api, get_servers):
    row = api.get("/server/hcloud/cax11").json()

    assert set(row) == set(get_servers()[0])
    assert row["vendor"]["vendor_id"] == "hcloud"
    assert row["price"] == row["min_price"]


@pytest.mark.parametrize("template", DETAIL_PATHS)
def test_currency_converts_the_prices(loaded_catalog, api, template):
    usd = api.get(template.format("aws", "m5.large")).json()

    eur = api.get(template.format("aws", "m5.large"), {"currency": "EUR"}).json()

    rate = exchange_rate("USD", "EUR")
    for column in PRICES:
        assert eur[column] == pytest.approx(usd[column] * rate, abs=1e-4), column
    assert eur["min_price_ondemand_monthly"] == pytest.approx(usd["min_price_ondemand_monthly"] * rate, abs=0.01)


def test_an_unknown_currency_is_a_400(loaded_catalog, http):
    response = http.get("/server/aws/m5.large", {"currency": "XXX"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["currency"]


def test_an_unknown_parameter_is_a_400(loaded_catalog, http):
    response = http.get("/server/aws/m5.large", {"vcpus_min": 2})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["vcpus_min"]


@pytest.mark.parametrize("template", DETAIL_PATHS)
@pytest.mark.parametrize(("vendor", "server"), [("aws", "no-such-server"), ("nosuchcloud", "m5.large")])
def test_an_unknown_server_or_vendor_is_a_json_404(loaded_catalog, http, template, vendor, server):
    response = http.get(template.format(vendor, server))

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert server in body["detail"] and vendor in body["detail"]
    assert body["code"] == "not_found"


def test_an_unknown_server_is_a_404_before_any_sync(db, http):
    assert http.get("/server/aws/m5.large").status_code == 404
