"""The catalog history's API: `/changes`, `/syncs`, `/server/{vendor}/{server}/price_history`, and
`/server_prices?price_change_since=`."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.catalog.models import SyncRun
from apps.catalog.serializers_history import CatalogChangeSerializer, PriceHistorySerializer, SyncSerializer
from apps.catalog.serializers_prices import ServerPriceRowSerializer, ServerPriceSearchRowSerializer
from apps.catalog.version import catalog_version
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import sample_catalog


@dataclass
class History:
    first: SyncRun
    second: SyncRun

    @property
    def first_at(self) -> str:
        return iso(self.first.finished_at)

    @property
    def second_at(self) -> str:
        return iso(self.second.finished_at)


def iso(moment: datetime) -> str:
    """As the API writes a time (orjson: RFC 3339, +00:00, no empty microseconds)."""
    return moment.astimezone(UTC).isoformat()


@pytest.fixture
def history(sync_upstream) -> History:
    """The sample catalog synced 20 days ago, the changed copy 10 days ago (each at midnight UTC)."""
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with time_machine.travel(today - timedelta(days=20), tick=False):
        first = sync_upstream(sample_catalog())
    with time_machine.travel(today - timedelta(days=10), tick=False):
        second = sync_upstream(changed_catalog())
    return History(first, second)


def get(api, path: str, **params) -> list:
    response = api.get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def segment(start: str, end: str | None, price: float, monthly: float | None) -> dict:
    return {"from": start, "until": end, "price": price, "price_monthly": monthly}


# --- /changes -----------------------------------------------------------------------------------------


def test_changes_are_listed_newest_first_with_their_sync_and_time(history, api):
    rows = get(api, "/changes", limit=3)

    assert [list(row) for row in rows] == [list(CatalogChangeSerializer().fields)] * 3
    assert rows[0] == {
        "id": rows[0]["id"],
        "sync": history.second.pk,
        "time": history.second_at,
        "table": "benchmark_score",
        "kind": "changed",
        "key": {"vendor_id": "gcp", "server_id": "1234", "benchmark_id": "stress_ng:bestn"},
        "field": "score",
        "old": 16000,
        "new": 17000,
        "currency": None,
    }
    assert rows[0]["id"] > rows[1]["id"] > rows[2]["id"]


def test_a_price_change_keeps_its_currency(history, api):
    rows = get(api, "/changes", table="server_price", kind="removed")

    assert [(row["key"]["server_id"], row["old"]["price"], row["currency"]) for row in rows] == [
        ("cax11", 0.0063, "EUR")
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"table": "server"}, 5),
        ({"table": ["zone", "region"]}, 2),
        ({"kind": "added"}, 3),
        ({"kind": ["status", "removed"]}, 5),
        ({"vendor": "hcloud"}, 3),
        ({"vendor": "aws", "server": "p3.8xlarge"}, 2),
        ({"server": ["1234", "cax11"]}, 6),
        ({"region": "r3"}, 3),
        ({"field": "price"}, 2),
        ({"field": "status", "table": "server_price"}, 1),
        ({"kind": "CHANGED"}, 6),  # enumerations in any case, as every catalog filter takes them
    ],
)
def test_changes_filters(history, api, params, expected):
    rows = get(api, "/changes", limit=1000, **params)

    assert len(rows) == expected
    for name, values in params.items():
        values = [v.lower() for v in ([values] if isinstance(values, str) else values)]
        column = {"vendor": "vendor_id", "server": "server_id", "region": "region_id"}.get(name)
        for row in rows:
            found = row["key"].get(column) if column else row[name]
            assert found in values, (name, row)


def test_since_and_until_take_a_sync_id(history, sync_upstream, api):
    third = sync_upstream(sample_catalog())

    assert {row["sync"] for row in get(api, "/changes", since=history.second.pk, limit=1000)} == {third.pk}
    assert {row["sync"] for row in get(api, "/changes", until=history.second.pk, limit=1000)} == {history.second.pk}
    assert get(api, "/changes", since=third.pk) == []


def test_since_and_until_take_a_time_or_a_date(history, sync_upstream, api):
    with time_machine.travel(history.second.finished_at + timedelta(days=5), tick=False):
        third = sync_upstream(sample_catalog())
    between = history.second.finished_at + timedelta(days=1)

    assert {row["sync"] for row in get(api, "/changes", since=iso(between), limit=1000)} == {third.pk}
    assert {row["sync"] for row in get(api, "/changes", until=iso(between), limit=1000)} == {history.second.pk}
    assert {row["sync"] for row in get(api, "/changes", since=history.second_at, limit=1000)} == {
        history.second.pk,
        third.pk,
    }
    assert {row["sync"] for row in get(api, "/changes", since=between.date().isoformat(), limit=1000)} == {third.pk}
    as_offset = between.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"  # two hours earlier in UTC
    assert {row["sync"] for row in get(api, "/changes", since=as_offset, limit=1000)} == {third.pk}


def test_changes_are_paginated(history, api):
    everything = get(api, "/changes", limit=1000)

    response = api.get("/changes", {"limit": 5, "page": 2, "add_total_count_header": "true"})

    assert response.status_code == 200
    assert response["X-Total-Count"] == str(len(everything)) == "14"
    assert response.json() == everything[5:10]
    assert len(get(api, "/changes")) == 14  # default 25 a page


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"kind": "renamed"}, "kind"),
        ({"table": "server_description"}, "table"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # no offset: ambiguous
        ({"until": "2026-13-01"}, "until"),
        ({"since": "0"}, "since"),
        ({"since": ""}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"page": "0"}, "page"),
        ({"vendors": "aws"}, "vendors"),
    ],
)
def test_bad_changes_parameters_are_a_400_naming_them(history, api, params, parameter):
    response = api.get("/changes", params)

    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [parameter]
    assert body["code"] == "invalid"


def test_changes_before_any_sync_are_an_empty_list(db, api):
    assert get(api, "/changes") == []
    assert get(api, "/syncs") == []


def test_changes_are_cacheable_as_prices_are(history, api):
    response = api.get("/changes")

    assert response["Cache-Control"] == "public, max-age=120, stale-while-revalidate=720"
    assert api.get("/changes", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


# --- /syncs -------------------------------------------------------------------------------------------


def test_syncs_list_the_loaded_catalogs_with_their_change_counts(history, api):
    for status in ("SKIPPED", "FAILED", "RUNNING"):  # these loaded nothing: not listed
        SyncRun.objects.create(source="elsewhere", status=status, finished_at=timezone.now())
    rows = get(api, "/syncs")

    assert [list(row) for row in rows] == [list(SyncSerializer().fields)] * 2
    assert [row["id"] for row in rows] == [history.second.pk, history.first.pk]
    assert rows[0]["changes"] == history.second.changes
    assert rows[0]["changes"]["server_price"] == {"removed": 1, "status": 1, "changed": 2, "added": 1}
    assert rows[1]["changes"] is None, "the first sync compared nothing"
    assert rows[0]["time"] == history.second_at
    assert rows[0]["data_hash"] == history.second.data_hash
    assert rows[0]["rows"]["server"] == 5
    assert [row["id"] for row in get(api, "/syncs", since=history.first.pk)] == [history.second.pk]
    assert [row["id"] for row in get(api, "/syncs", until=history.first_at)] == []


# --- /server/{vendor}/{server}/price_history ----------------------------------------------------------


def test_price_history_is_a_series_per_region_zone_and_allocation(history, api):
    rows = get(api, "/server/aws/m5.large/price_history")

    assert [list(row) for row in rows] == [list(PriceHistorySerializer().fields)] * 3
    assert rows == [
        {
            "region_id": "r1",
            "zone_id": "r1z1",
            "country_id": "US",
            "allocation": "ondemand",
            "operating_system": "Linux",
            "unit": "hour",
            "currency": "USD",
            "prices": [
                {"from": history.first_at, "until": history.second_at, "price": 0.096, "price_monthly": 70.08},
                {"from": history.second_at, "until": None, "price": 0.1, "price_monthly": 73.0},
            ],
        },
        {
            "region_id": "r1",
            "zone_id": "r1z1",
            "country_id": "US",
            "allocation": "spot",
            "operating_system": "Linux",
            "unit": "hour",
            "currency": "USD",
            "prices": [{"from": history.first_at, "until": None, "price": 0.035, "price_monthly": None}],
        },
        {
            "region_id": "r3",
            "zone_id": "r3z1",
            "country_id": "US",
            "allocation": "ondemand",
            "operating_system": "Linux",
            "unit": "hour",
            "currency": "USD",
            "prices": [{"from": history.second_at, "until": None, "price": 0.11, "price_monthly": 80.3}],
        },
    ]


def test_a_price_that_went_inactive_ends_there(history, api):
    rows = get(api, "/server/aws/t3.micro/price_history")

    assert [(row["region_id"], row["allocation"], row["prices"]) for row in rows] == [
        ("r1", "ondemand", [segment(history.first_at, None, 0.0104, 7.59)]),
        ("r2", "spot", [segment(history.first_at, history.second_at, 0.0031, None)]),
    ]


def test_a_removed_server_keeps_its_history(history, api):
    rows = get(api, "/server/hcloud/cax11/price_history", currency="EUR")

    assert [(row["region_id"], row["allocation"], row["prices"]) for row in rows] == [
        # Hetzner's tiers cap the month at 672 hours.
        ("r1", "ondemand", [segment(history.first_at, history.second_at, 0.0063, 4.23)]),
    ]


def test_price_history_in_another_currency(history, api):
    usd = get(api, "/server/aws/m5.large/price_history", allocation="ondemand", regions="r1")
    eur = get(api, "/server/aws/m5.large/price_history", allocation="ondemand", regions="r1", currency="EUR")

    assert eur[0]["currency"] == "EUR"
    for dollars, euros in zip(usd[0]["prices"], eur[0]["prices"]):
        assert 0.5 < euros["price"] / dollars["price"] < 1.5
        assert euros["price"] != dollars["price"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"allocation": "spot"}, [("r1", "spot")]),
        ({"allocation": "ONDEMAND"}, [("r1", "ondemand"), ("r3", "ondemand")]),
        ({"regions": "r3"}, [("r3", "ondemand")]),
        ({"regions": ["r1", "r3"], "allocation": "ondemand"}, [("r1", "ondemand"), ("r3", "ondemand")]),
        ({"countries": "US"}, [("r1", "ondemand"), ("r1", "spot"), ("r3", "ondemand")]),
        ({"countries": "DE"}, []),
    ],
)
def test_price_history_filters(history, api, params, expected):
    rows = get(api, "/server/aws/m5.large/price_history", **params)

    assert [(row["region_id"], row["allocation"]) for row in rows] == expected


def test_since_keeps_the_prices_in_effect_then(history, api):
    after_second = (history.second.finished_at + timedelta(days=1)).date().isoformat()

    rows = get(api, "/server/aws/m5.large/price_history", since=after_second, regions="r1", allocation="ondemand")

    assert rows[0]["prices"] == [{"from": history.second_at, "until": None, "price": 0.1, "price_monthly": 73.0}]
    assert get(api, "/server/aws/t3.micro/price_history", since=after_second, allocation="spot") == []


def test_the_server_is_found_by_its_api_reference(history, api):
    assert get(api, "/server/gcp/n2-standard-8/price_history") == get(api, "/server/gcp/1234/price_history")


@pytest.mark.parametrize(
    ("path", "params", "status", "parameter"),
    [
        ("/server/aws/nope/price_history", {}, 404, None),
        ("/server/nope/m5.large/price_history", {}, 404, None),
        ("/server/aws/m5.large/price_history", {"since": "soon"}, 400, "since"),
        ("/server/aws/m5.large/price_history", {"allocation": "weekly"}, 400, "allocation"),
        ("/server/aws/m5.large/price_history", {"currency": "XXX"}, 400, "currency"),
        ("/server/aws/m5.large/price_history", {"region": "r1"}, 400, "region"),
    ],
)
def test_price_history_errors(history, api, path, params, status, parameter):
    response = api.get(path, params)

    assert response.status_code == status
    body = response.json()
    assert body["detail"]
    if parameter:
        assert list(body["errors"]) == [parameter]


def test_with_history_off_a_price_is_known_since_the_last_sync(sync_upstream, api, settings):
    settings.KEEPER_HISTORY_DAYS = 0
    sync_upstream(sample_catalog())
    second = sync_upstream(changed_catalog())

    rows = get(api, "/server/aws/m5.large/price_history", regions="r1", allocation="ondemand")

    assert rows[0]["prices"] == [{"from": iso(second.finished_at), "until": None, "price": 0.1, "price_monthly": 73.0}]


# --- /server_prices?price_change_since= ---------------------------------------------------------------


def test_price_change_since_keeps_the_changed_prices_with_their_previous_price(history, api):
    since = (history.first.finished_at + timedelta(days=1)).date().isoformat()

    rows = get(api, "/server_prices", price_change_since=since)

    assert list(rows[0]) == list(ServerPriceSearchRowSerializer().fields)
    assert [(row["server_id"], row["allocation"], row["price"], row["previous_price"]) for row in rows] == [
        ("1234", "spot", 0.09, 0.0971),
        ("m5.large", "ondemand", 0.1, 0.096),
    ]


def test_price_change_since_a_later_time_finds_none(history, api):
    later = (history.second.finished_at + timedelta(seconds=1)).isoformat()

    assert get(api, "/server_prices", price_change_since=later) == []


def test_previous_prices_are_converted_to_the_currency(history, api):
    since = history.first_at

    rows = get(api, "/server_prices", price_change_since=since, currency="EUR", allocation="ondemand")

    assert [row["currency"] for row in rows] == ["EUR"]
    assert 0.5 < rows[0]["previous_price"] / 0.096 < 1.5 and rows[0]["previous_price"] != 0.096


def test_server_price_rows_gain_nothing_by_default(history, api):
    rows = get(api, "/server_prices")

    assert [list(row) for row in rows] == [list(ServerPriceRowSerializer().fields)] * len(rows)


def test_a_bad_price_change_since_is_a_400_naming_it(history, api):
    response = api.get("/server_prices", {"price_change_since": "last week"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["price_change_since"]


# --- OpenAPI and query counts -------------------------------------------------------------------------


def test_every_new_parameter_is_documented(db, api):
    schema = api.get("/openapi.json").json()

    def parameters(path: str) -> set[str]:
        return {p["name"] for p in schema["paths"][path]["get"]["parameters"]}

    assert parameters("/changes") == {
        "since", "until", "table", "kind", "vendor", "server", "region", "field", "limit", "page",
        "add_total_count_header",
    }  # fmt: skip
    assert parameters("/syncs") == {"since", "until", "limit", "page", "add_total_count_header"}
    assert parameters("/server/{vendor}/{server}/price_history") == {
        "vendor", "server", "regions", "countries", "allocation", "currency", "since",
    }  # fmt: skip
    assert "price_change_since" in parameters("/server_prices")


QUERIES = [
    # The page (the sync's time joined); + the count.
    ("/changes", {}, 1),
    ("/changes", {"add_total_count_header": "true"}, 2),
    ("/changes", {"since": "2026-01-01", "table": "server_price", "vendor": "aws", "limit": 100}, 1),
    ("/syncs", {}, 1),
    # The server's name, its prices, their changes, where the history starts, the regions' countries.
    ("/server/aws/m5.large/price_history", {}, 5),
    ("/server/aws/m5.large/price_history", {"countries": "US", "currency": "EUR", "since": "2026-01-01"}, 5),
]


@pytest.mark.parametrize(("path", "params", "queries"), QUERIES, ids=[f"{p}{sorted(q)}" for p, q, _ in QUERIES])
def test_queries_per_request_are_pinned(history, api, django_assert_num_queries, settings, path, params, queries):
    settings.KEEPER_CATALOG_VERSION_TTL_SECONDS = 3600  # a slow machine must not see it expire mid-test
    catalog_version()  # read at most once a second per process, not per request
    api.get(path, params)

    with django_assert_num_queries(queries):
        response = api.get(path, params)
    assert response.status_code == 200


def test_price_change_since_costs_one_query_more(history, api, settings):
    settings.KEEPER_CATALOG_VERSION_TTL_SECONDS = 3600
    catalog_version()
    api.get("/server_prices")
    with CaptureQueriesContext(connection) as plain:
        api.get("/server_prices")
    with CaptureQueriesContext(connection) as changed:
        response = api.get("/server_prices", {"price_change_since": history.first_at})

    assert response.status_code == 200 and len(response.json()) == 2
    assert len(changed) == len(plain) + 1, "the previous prices of the page"
