"""The managed databases' price list and table dumps: GET /database_storage_prices (with `price_change_since`),
/table/database, /table/database_storage, /table/vendor_compliance_link and /table/database_price."""

from datetime import UTC, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.catalog.pricing import exchange_rate
from apps.catalog.serializers import VendorComplianceLinkSerializer, VendorSerializer
from apps.catalog.serializers_databases import (
    DatabasePriceSerializer,
    DatabaseSerializer,
    DatabaseStoragePriceRowSerializer,
    DatabaseStoragePriceSearchRowSerializer,
    DatabaseStorageSerializer,
)
from apps.catalog.serializers_prices import RegionWithCountrySerializer
from apps.catalog.version import catalog_version
from apps.keys.choices import Scope
from apps.keys.services import Actor, key_create
from tests.catalog.upstream import UpstreamCatalog

# (vendor, region, database storage, price, currency, status)
STORAGE_PRICES = [
    ("aws", "r1", "gp3", 0.115, "USD", "ACTIVE"),
    ("aws", "r2", "gp3", 0.138, "USD", "ACTIVE"),
    ("aws", "de1", "gp3", 0.12, "EUR", "ACTIVE"),
    ("aws", "r1", "io1", 0.125, "USD", "ACTIVE"),
    ("aws", "r2", "io1", 0.5, "USD", "INACTIVE"),
    ("aws", "r1", "backup", 0.095, "USD", "ACTIVE"),
    ("gcp", "g1", "ssd", 0.17, "USD", "ACTIVE"),
]
ACTIVE = [price for price in STORAGE_PRICES if price[5] == "ACTIVE"]


def tables_catalog() -> UpstreamCatalog:
    """aws (regions r1, r2 in the US, green r2; de1 in Germany; hipaa) and gcp (region g1; iso27001) with the
    database storages and STORAGE_PRICES, and a few databases and database prices."""
    catalog = UpstreamCatalog()
    catalog.vendor("aws", regions=0)
    catalog.region("aws", "r1")
    catalog.region("aws", "r2", green_energy=1)
    catalog.country("DE", continent="Europe")
    catalog.region("aws", "de1", country_id="DE")
    catalog.vendor("gcp", regions=0)
    catalog.region("gcp", "g1")
    catalog.compliance_framework("hipaa", vendors=("aws",))
    catalog.compliance_framework("iso27001", vendors=("gcp",))

    catalog.database_storage("aws", "gp3", min_size=20, max_size=65536, max_iops=16000)
    catalog.database_storage("aws", "io1", min_size=100, max_size=16384, max_iops=64000)
    catalog.database_storage("aws", "backup", scope="BACKUP", min_size=None, max_size=None, redundancy="LRS")
    catalog.database_storage("gcp", "ssd", min_size=10, max_size=65536, max_iops=None)
    for vendor, region, storage, price, currency, status in STORAGE_PRICES:
        catalog.database_storage_price(vendor, storage, price=price, region_id=region, currency=currency, status=status)

    catalog.database("aws", "db.a")
    catalog.database_price("aws", "db.a", price=0.1)
    catalog.database_price("aws", "db.a", price=0.07, allocation="RESERVED")
    catalog.database_price("aws", "db.a", price=0.2, region_id="r2", status="INACTIVE")
    catalog.database("aws", "db.retired", status="RETIRED")
    catalog.database("gcp", "db.b", ha=["none"], ha_strategy=["none"])
    catalog.database_price("gcp", "db.b", price=0.3, region_id="g1", currency="EUR")
    return catalog


@pytest.fixture
def loaded(sync_upstream):
    return sync_upstream(tables_catalog())


def get(api, path: str, **params: Any) -> Any:
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def prices(api, **params: Any) -> list[tuple]:
    rows = get(api, "/database_storage_prices", **params)
    return [(row["vendor_id"], row["region_id"], row["database_storage_id"], row["price"]) for row in rows]


def expected(rows: list[tuple], currency: str = "USD") -> list[tuple]:
    """The fixture's prices (in `currency`, 6 digits) in the order of their stored price (whatever its currency,
    as upstream orders them): what the search answers by default."""
    return [
        (vendor, region, storage, price if cur == currency else round(price * exchange_rate(cur, currency), 6))
        for vendor, region, storage, price, cur, _ in sorted(rows, key=lambda row: row[3])
    ]


# --- /database_storage_prices --------------------------------------------------------------------------


def test_a_row_is_the_price_with_its_region_country_vendor_and_database_storage(loaded, api):
    rows = get(api, "/database_storage_prices", vendor_regions="aws~de1")

    [row] = rows
    assert list(row) == list(DatabaseStoragePriceRowSerializer().fields)
    assert list(row["region"]) == list(RegionWithCountrySerializer().fields)
    assert list(row["vendor"]) == list(VendorSerializer().fields)
    assert list(row["database_storage"]) == list(DatabaseStorageSerializer().fields)
    assert (row["vendor_id"], row["region_id"], row["database_storage_id"], row["unit"]) == (
        "aws",
        "de1",
        "gp3",
        "GB/month",
    )
    assert (row["region"]["country"]["country_id"], row["vendor"]["vendor_id"]) == ("DE", "aws")
    assert (row["database_storage"]["scope"], row["database_storage"]["max_iops"]) == ("data", 16000)


def test_the_active_prices_are_listed_by_price_in_usd(loaded, api):
    assert prices(api) == expected(ACTIVE)


def test_currency_converts_to_six_digits(loaded, api):
    rows = get(api, "/database_storage_prices", currency="EUR")

    assert {row["currency"] for row in rows} == {"EUR"}
    assert [(row["vendor_id"], row["region_id"], row["database_storage_id"], row["price"]) for row in rows] == expected(
        ACTIVE, "EUR"
    )


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ({"vendor": "gcp"}, lambda p: p[0] == "gcp"),
        ({"vendor": ["gcp", "aws"]}, lambda p: True),
        ({"green_energy": "true"}, lambda p: p[1] == "r2"),
        ({"green_energy": "false"}, lambda p: True),
        # min_size <= 100 <= max_size: io1 starts at 100; backup has no sizes.
        ({"storage_min": 100}, lambda p: p[2] in ("gp3", "io1", "ssd")),
        ({"storage_min": 20000}, lambda p: p[2] in ("gp3", "ssd")),
        ({"storage_min": 15}, lambda p: p[2] == "ssd"),
        ({"compliance_framework": "iso27001"}, lambda p: p[0] == "gcp"),
        ({"regions": ["r1", "g1"]}, lambda p: p[1] in ("r1", "g1")),
        ({"vendor_regions": ["aws~r2", "gcp~g1"]}, lambda p: (p[0], p[1]) in (("aws", "r2"), ("gcp", "g1"))),
        ({"countries": "DE"}, lambda p: p[1] == "de1"),
        # Anonymous callers may name as many places as they like here, as on /storage_prices.
        ({"countries": ["US", "DE"]}, lambda p: True),
        ({"regions": ["r1", "r2", "de1", "g1"]}, lambda p: True),
    ],
)
def test_each_filter_keeps_its_prices(loaded, api, params, kept):
    assert prices(api, **params) == expected([price for price in ACTIVE if kept(price)])


def test_order_by_any_column_of_the_price_its_region_or_its_storage(loaded, api):
    by_price = expected(ACTIVE)

    assert prices(api, order_dir="desc") == by_price[::-1]
    # Nulls last in both directions: backup and ssd have no max_iops.
    assert [row[2] for row in prices(api, order_by="max_iops", order_dir="desc")][:4] == ["io1", "gp3", "gp3", "gp3"]
    assert [row[2] for row in prices(api, order_by="max_iops")][:4] == ["gp3", "gp3", "gp3", "io1"]
    assert [row[2] for row in prices(api, order_by="database_storage_id")] == sorted(p[2] for p in ACTIVE)
    # A name the price and its relations share is the price's own.
    assert [row[0] for row in prices(api, order_by="vendor_id", order_dir="desc")][0] == "gcp"
    assert [row[1] for row in prices(api, order_by="green_energy", order_dir="desc")][0] == "r2"


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"order_by": "nope"}, "order_by"),
        ({"order_by": "name"}, "order_by"),  # a region's and a database storage's: ambiguous
        ({"order_dir": "up"}, "order_dir"),
        ({"currency": "XXX"}, "currency"),
        ({"vendor": "nope"}, "vendor"),
        ({"storage_min": "big"}, "storage_min"),
        ({"countries": "ZZ"}, "countries"),
        ({"limit": 0}, "limit"),
        ({"price_change_since": "soon"}, "price_change_since"),
        ({"storage_type": "ssd"}, "storage_type"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(loaded, http, params, bad):
    response = http.get("/database_storage_prices", params)

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("invalid", [bad])


def test_limit_defaults_to_ten_with_pages_and_a_total(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for number in range(12):
        catalog.database_storage("v", f"d{number:02}")
        catalog.database_storage_price("v", f"d{number:02}", price=0.01 * (number + 1))
    sync_upstream(catalog)

    assert len(get(api, "/database_storage_prices")) == 10
    assert len(get(api, "/database_storage_prices", limit=-1)) == 12
    assert [row["database_storage_id"] for row in get(api, "/database_storage_prices", limit=5, page=3)] == [
        "d10",
        "d11",
    ]
    response = api.get("/database_storage_prices", {"limit": 1, "add_total_count_header": "true"})
    assert response["X-Total-Count"] == "12"


@pytest.mark.parametrize(("params", "queries"), [({}, 1), ({"countries": "US", "currency": "EUR"}, 1)])
def test_queries_are_pinned(loaded, api, django_assert_num_queries, settings, params, queries):
    settings.KEEPER_CATALOG_VERSION_TTL_SECONDS = 3600
    catalog_version()
    api.get("/database_storage_prices", params)  # the related rows are read once per catalog version

    with django_assert_num_queries(queries):
        response = api.get("/database_storage_prices", params)

    assert response.status_code == 200


# --- price_change_since ---------------------------------------------------------------------------------


def changed_catalog() -> UpstreamCatalog:
    """`tables_catalog()` re-crawled: aws gp3 in r1 0.115 -> 0.11, gcp ssd 0.17 -> 0.18, de1 gp3 0.12 -> 0.13 EUR."""
    catalog = tables_catalog()
    for storage, region, price in [("gp3", "r1", 0.11), ("ssd", "g1", 0.18), ("gp3", "de1", 0.13)]:
        catalog.db.execute(
            "UPDATE database_storage_price SET price = ? WHERE database_storage_id = ? AND region_id = ?",
            [price, storage, region],
        )
    catalog.db.execute("UPDATE database_storage_price SET observed_at = '2026-02-01 06:00:00.000000'")
    return catalog


@pytest.fixture
def history(sync_upstream):
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with time_machine.travel(today - timedelta(days=20), tick=False):
        sync_upstream(tables_catalog())
    with time_machine.travel(today - timedelta(days=10), tick=False):
        sync_upstream(changed_catalog())


def test_price_change_since_keeps_the_changed_prices_with_their_previous_price(history, api):
    since = (timezone.now() - timedelta(days=15)).date().isoformat()

    rows = get(api, "/database_storage_prices", price_change_since=since)

    assert [list(row) for row in rows] == [list(DatabaseStoragePriceSearchRowSerializer().fields)] * 3
    rate = exchange_rate("EUR", "USD")
    assert [(row["region_id"], row["price"], row["previous_price"]) for row in rows] == [
        ("r1", 0.11, 0.115),
        ("de1", round(0.13 * rate, 6), round(0.12 * rate, 6)),
        ("g1", 0.18, 0.17),
    ]


def test_price_change_since_with_other_filters_and_currency(history, api):
    since = (timezone.now() - timedelta(days=15)).date().isoformat()

    rows = get(api, "/database_storage_prices", price_change_since=since, vendor="aws", currency="EUR")

    rate = exchange_rate("USD", "EUR")
    assert [(row["region_id"], row["price"], row["previous_price"], row["currency"]) for row in rows] == [
        ("r1", round(0.11 * rate, 6), round(0.115 * rate, 6), "EUR"),
        ("de1", 0.13, 0.12, "EUR"),
    ]


def test_price_change_since_a_later_time_finds_none(history, api):
    assert get(api, "/database_storage_prices", price_change_since=timezone.now().isoformat()) == []


def test_rows_gain_no_previous_price_by_default(history, api):
    rows = get(api, "/database_storage_prices")

    assert [list(row) for row in rows] == [list(DatabaseStoragePriceRowSerializer().fields)] * len(rows)


# --- whole tables -------------------------------------------------------------------------------------


def test_the_database_table_has_every_database_whatever_its_status(loaded, api):
    rows = get(api, "/table/database")

    assert [list(row) for row in rows] == [list(DatabaseSerializer().fields)] * 3
    assert [(row["vendor_id"], row["database_id"], row["status"]) for row in rows] == [
        ("aws", "db.a", "active"),
        ("aws", "db.retired", "retired"),
        ("gcp", "db.b", "active"),
    ]
    assert rows[2]["ha"] == ["none"]


def test_the_database_storage_table(loaded, api):
    rows = get(api, "/table/database_storage")

    assert [list(row) for row in rows] == [list(DatabaseStorageSerializer().fields)] * 4
    assert [(row["vendor_id"], row["database_storage_id"], row["scope"], row["min_size"]) for row in rows] == [
        ("aws", "backup", "backup", None),
        ("aws", "gp3", "data", 20),
        ("aws", "io1", "data", 100),
        ("gcp", "ssd", "data", 10),
    ]


def test_the_vendor_compliance_link_table(loaded, api):
    rows = get(api, "/table/vendor_compliance_link")

    assert [list(row) for row in rows] == [list(VendorComplianceLinkSerializer().fields)] * 2
    assert [(row["vendor_id"], row["compliance_framework_id"], row["status"]) for row in rows] == [
        ("aws", "hipaa", "active"),
        ("gcp", "iso27001", "active"),
    ]


def test_whole_tables_take_no_parameters(loaded, http):
    response = http.get("/table/database", {"vendor": "aws"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["vendor"]


# --- /table/database_price ----------------------------------------------------------------------------


@pytest.fixture
def signed_in(api, django_user_model):
    api.force_authenticate(django_user_model.objects.create_user("someone"))
    return api


def table(api, **params: Any) -> list[tuple]:
    rows = get(api, "/table/database_price", **params)
    assert [list(row) for row in rows] == [list(DatabasePriceSerializer().fields)] * len(rows)
    return [(row["vendor_id"], row["region_id"], row["database_id"], row["allocation"], row["price"]) for row in rows]


def test_anonymous_callers_get_a_json_401(loaded, http):
    for params in ({}, {"vendor": "aws"}, {"currency": "XXX"}):
        response = http.get("/table/database_price", params)

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert response["Cache-Control"] == "private, no-store"


def test_an_api_key_reads_the_table(loaded, api, django_user_model):
    owner = django_user_model.objects.create_user("keyholder")
    key = key_create(owner=owner, name="dump", actor=Actor("test-setup"), scope=Scope.READ).value

    response = api.get("/table/database_price", HTTP_X_API_KEY=key)

    assert response.status_code == 200
    assert len(response.json()) == 3


def test_the_rows_are_the_active_prices_in_their_own_currency(loaded, signed_in):
    assert table(signed_in) == [
        ("aws", "r1", "db.a", "ondemand", 0.1),
        ("aws", "r1", "db.a", "reserved", 0.07),
        ("gcp", "g1", "db.b", "ondemand", 0.3),
    ]
    assert [row["currency"] for row in get(signed_in, "/table/database_price")] == ["USD", "USD", "EUR"]


def test_only_active_false_adds_the_inactive_prices(loaded, signed_in):
    assert ("aws", "r2", "db.a", "ondemand", 0.2) in table(signed_in, only_active="false")
    assert len(table(signed_in, only_active="false")) == 4


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ({"vendor": "gcp"}, [("gcp", "g1", "db.b", "ondemand", 0.3)]),
        ({"region": "g1"}, [("gcp", "g1", "db.b", "ondemand", 0.3)]),
        ({"vendor_regions": "aws~r1", "allocation": "reserved"}, [("aws", "r1", "db.a", "reserved", 0.07)]),
        ({"allocation": "ONDEMAND", "vendor": "aws"}, [("aws", "r1", "db.a", "ondemand", 0.1)]),
    ],
)
def test_the_filters(loaded, signed_in, params, kept):
    assert table(signed_in, **params) == kept


def test_currency_converts_every_price_to_four_digits(loaded, signed_in):
    rows = get(signed_in, "/table/database_price", currency="EUR")

    rate = exchange_rate("USD", "EUR")
    assert [(row["price"], row["currency"]) for row in rows] == [
        (round(0.1 * rate, 4), "EUR"),
        (round(0.07 * rate, 4), "EUR"),
        (0.3, "EUR"),
    ]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"allocation": "weekly"}, "allocation"),
        ({"vendor_regions": "x"}, "vendor_regions"),
    ],
)
def test_a_bad_parameter_is_a_400_for_an_authenticated_caller(loaded, signed_in, params, bad):
    response = signed_in.get("/table/database_price", params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [bad]


def test_the_table_is_private_to_shared_caches_and_cached_per_audience(loaded, signed_in, http, settings):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 60

    first = signed_in.get("/table/database_price")
    again = signed_in.get("/table/database_price")

    assert first.status_code == again.status_code == 200
    assert first["Cache-Control"].startswith("private")
    assert again.content == first.content and again["ETag"] == first["ETag"]
    # What an authenticated caller was answered is never an anonymous caller's.
    assert http.get("/table/database_price").status_code == 401


# --- OpenAPI ------------------------------------------------------------------------------------------


def test_every_route_and_parameter_is_documented(db, api):
    schema = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()

    def parameters(path: str, tag: str) -> set[str]:
        operation = schema["paths"][path]["get"]
        assert operation["tags"] == [tag]
        assert all(parameter.get("description") for parameter in operation.get("parameters", []))
        return {parameter["name"] for parameter in operation.get("parameters", [])}

    assert parameters("/database_storage_prices", "Query Resources") == {
        "vendor", "green_energy", "storage_min", "compliance_framework", "regions", "vendor_regions", "countries",
        "limit", "page", "order_by", "order_dir", "currency", "add_total_count_header", "price_change_since",
    }  # fmt: skip
    assert parameters("/table/database_price", "Table dumps") == {
        "vendor", "region", "vendor_regions", "allocation", "only_active", "currency",
    }  # fmt: skip
    for name in ("database", "database_storage", "vendor_compliance_link"):
        assert parameters(f"/table/{name}", "Table dumps") == set()
    assert "401" in schema["paths"]["/table/database_price"]["get"]["responses"]
