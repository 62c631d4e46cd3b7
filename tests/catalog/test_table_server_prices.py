"""GET /table/server_prices: the bulk dump, for authenticated callers only."""

import orjson
import pytest
from django.contrib.auth.models import User

from apps.catalog.models import ServerPrice
from apps.catalog.pricing import exchange_rate
from apps.catalog.selectors import prices as selectors
from apps.catalog.serializers_prices import ServerPriceTableRowSerializer
from keeper.api.renderers import ORJSONRenderer
from tests.catalog.upstream import UpstreamCatalog


def table_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("a", regions=2)
    catalog.vendor("b")
    catalog.server("a", "s")
    catalog.price("a", "s", price=0.1)
    catalog.price("a", "s", price=0.03, allocation="SPOT", region_id="r2")
    catalog.price("a", "s", price=0.2, region_id="r2", status="INACTIVE")
    catalog.server("b", "t")
    catalog.price("b", "t", price=0.05, currency="EUR")
    return catalog


@pytest.fixture
def signed_in(api, db):
    api.force_authenticate(User.objects.create_user("someone"))
    return api


def rows(api, **params) -> list[dict]:
    response = api.get("/table/server_prices", params)
    body = b"".join(response.streaming_content)  # streamed, a chunk at a time (keeper/server.py)
    assert response.status_code == 200, body
    return orjson.loads(body)


def test_anonymous_callers_get_a_401(sync_upstream, api):
    sync_upstream(table_catalog())

    response = api.get("/table/server_prices")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_rows_are_the_active_prices_alone(sync_upstream, signed_in):
    sync_upstream(table_catalog())

    found = rows(signed_in)

    assert all(list(row) == list(ServerPriceTableRowSerializer().fields) for row in found)
    assert [(row["vendor_id"], row["region_id"], row["allocation"]) for row in found] == [
        ("a", "r1", "ondemand"),
        ("a", "r2", "spot"),
        ("b", "r1", "ondemand"),
    ]
    assert {row["currency"] for row in found} == {"USD", "EUR"}  # in their own currency by default


def test_only_active_false_includes_inactive_prices(sync_upstream, signed_in):
    sync_upstream(table_catalog())

    assert len(rows(signed_in, only_active="false")) == 4


def test_vendor_region_vendor_regions_and_allocation_filter(sync_upstream, signed_in):
    sync_upstream(table_catalog())

    assert {row["vendor_id"] for row in rows(signed_in, vendor="b")} == {"b"}
    assert {(row["vendor_id"], row["region_id"]) for row in rows(signed_in, region="r1")} == {("a", "r1"), ("b", "r1")}
    assert [row["region_id"] for row in rows(signed_in, vendor_regions="a~r2")] == ["r2"]
    assert [row["allocation"] for row in rows(signed_in, allocation="spot")] == ["spot"]


def test_currency_converts_the_prices(sync_upstream, signed_in):
    sync_upstream(table_catalog())

    converted = {row["vendor_id"]: row for row in rows(signed_in, currency="USD", vendor="b")}

    assert (converted["b"]["price"], converted["b"]["currency"]) == (
        round(0.05 * exchange_rate("EUR", "USD"), 4),
        "USD",
    )


@pytest.mark.parametrize("params", [{"currency": "XXX"}, {"region": "nowhere"}, {"regions": "r1"}, {"limit": "5"}])
def test_bad_and_unknown_parameters_are_refused(sync_upstream, signed_in, params):
    sync_upstream(table_catalog())

    assert signed_in.get("/table/server_prices", params).status_code == 400


def test_a_large_table_is_read_in_chunks_in_one_query_per_chunk(
    sync_upstream, signed_in, django_assert_num_queries, monkeypatch
):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=3)
    for s in range(10):
        catalog.server("v", f"s{s}")
        for r in (1, 2, 3):
            catalog.price("v", f"s{s}", price=0.01 * s, region_id=f"r{r}")
    sync_upstream(catalog)
    monkeypatch.setattr(selectors, "TABLE_CHUNK_ROWS", 7)

    with django_assert_num_queries(1):
        found = rows(signed_in)

    assert len(found) == 30
    assert len({(row["server_id"], row["region_id"]) for row in found}) == 30


def test_rows_read_exactly_as_the_orm_reads_them(sync_upstream, signed_in):
    # The dump reads the cursor itself (JSON passed through, timestamps marked UTC): same values.
    catalog = table_catalog()
    tiers = [{"lower": 0, "upper": 672, "price": 0.0063}, {"lower": 672, "upper": "Infinity", "price": 0}]
    catalog.price("b", "t", price=0.0063, currency="EUR", region_id="r1", zone_id="r1z2", tiers=tiers)
    sync_upstream(catalog)

    expected = orjson.loads(
        ORJSONRenderer().render(
            list(ServerPrice.objects.filter(status="active").order_by("id").values(*selectors.SERVER_PRICE_COLUMNS))
        )
    )

    assert rows(signed_in) == expected
    assert any(row["price_tiered"] == tiers for row in expected)
