"""`GET /changes.atom`: `/changes` as an Atom feed, with its filters, its errors, its caching and its cost."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import feedparser
import pytest
import time_machine
from django.utils import timezone

from apps.throttling.models import RouteCost
from apps.throttling.services import route_costs_changed
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import sample_catalog

ATOM_NS = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def two_syncs(sync_upstream):
    """The sample catalog synced 20 days ago, the changed copy 10 days ago: the second records the changes."""
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with time_machine.travel(today - timedelta(days=20), tick=False):
        first = sync_upstream(sample_catalog())
    with time_machine.travel(today - timedelta(days=10), tick=False):
        second = sync_upstream(changed_catalog())
    return first, second


def feed(api, **params):
    response = api.get("/changes.atom", params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    return parsed


def changes(api, **params) -> list[dict]:
    response = api.get("/changes", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"limit": 1000},
        {"table": "server", "limit": 1000},
        {"kind": ["status", "removed"], "limit": 1000},
        {"vendor": "aws", "server": "p3.8xlarge"},
        {"field": "price"},
        {"limit": 5, "page": 2},
    ],
)
def test_the_feed_has_the_entries_of_changes_for_the_same_filters(two_syncs, api, params):
    rows = changes(api, **params)
    parsed = feed(api, **params)

    assert rows  # each filter matches some changes of the fixture
    assert [entry.id for entry in parsed.entries] == [f"urn:keeper:change:{row['id']}" for row in rows]
    for entry, row in zip(parsed.entries, rows):
        assert datetime.fromisoformat(entry.updated) == datetime.fromisoformat(row["time"])
        assert [tag.term for tag in entry.tags] == [row["table"], row["kind"]]
        assert entry.title.startswith(f"{row['table']} {row['kind']}")
        assert "/".join(str(part) for part in row["key"].values()) in entry.title
        assert entry.link == f"http://testserver/changes?since={row['sync'] - 1}&until={row['sync']}"


def test_a_changed_price_says_its_old_and_new_value_and_currency(two_syncs, api):
    rows = changes(api, table="server_price", kind="changed", field="price")
    parsed = feed(api, table="server_price", kind="changed", field="price")

    assert len(parsed.entries) == len(rows) > 0
    for entry, row in zip(parsed.entries, rows):
        assert entry.summary == f"price: {row['old']} -> {row['new']} {row['currency']} (sync {row['sync']})."


def test_the_feed_names_itself_and_links_to_the_same_query_of_changes(two_syncs, api):
    parsed = feed(api, vendor="aws", kind="added")

    assert parsed.feed.title == "Keeper: catalog changes"
    assert parsed.feed.link == "http://testserver/changes?vendor=aws&kind=added"
    assert parsed.feed.id == parsed.feed.link
    newest = changes(api, vendor="aws", kind="added")[0]["time"]
    assert datetime.fromisoformat(parsed.feed.updated) == datetime.fromisoformat(newest)


def test_the_feed_is_well_formed_atom_xml(two_syncs, api):
    root = ElementTree.fromstring(api.get("/changes.atom").content)

    assert root.tag == f"{ATOM_NS}feed"
    entries = root.findall(f"{ATOM_NS}entry")
    assert len(entries) == len(changes(api))
    for entry in entries:
        for child in ("id", "title", "updated", "link"):
            assert entry.find(f"{ATOM_NS}{child}") is not None


def test_before_any_sync_the_feed_has_no_entries(db, api):
    parsed = feed(api)

    assert parsed.entries == []


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"kind": "renamed"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "1001"}, "limit"),
        ({"vendors": "aws"}, "vendors"),
    ],
)
def test_a_bad_filter_is_the_json_400_of_changes(two_syncs, api, params, parameter):
    from_feed = api.get("/changes.atom", params, HTTP_ACCEPT="application/atom+xml")
    from_changes = api.get("/changes", params)

    assert from_feed.status_code == from_changes.status_code == 400
    assert from_feed["Content-Type"] == "application/json"
    assert from_feed.json() == from_changes.json()
    assert list(from_feed.json()["errors"]) == [parameter]


def test_a_feed_reader_asking_for_atom_gets_atom(two_syncs, api):
    response = api.get("/changes.atom", HTTP_ACCEPT="application/atom+xml, application/xml;q=0.9")

    assert response.status_code == 200
    assert feedparser.parse(response.content).version == "atom10"


def test_the_feed_is_cached_and_revalidated_as_changes_is(two_syncs, api, settings):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 300
    first = api.get("/changes.atom", {"table": "server"})
    again = api.get("/changes.atom", {"table": "server"})

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert first["Cache-Control"] == api.get("/changes")["Cache-Control"]
    assert api.get("/changes.atom", {"table": "server"}, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert first["ETag"] != api.get("/changes", {"table": "server"})["ETag"]


def test_the_total_count_header_is_kept_as_changes_keeps_it(two_syncs, api):
    response = api.get("/changes.atom", {"limit": 2, "add_total_count_header": "true"})

    assert response["X-Total-Count"] == str(len(changes(api, limit=1000)))


def test_the_feed_costs_what_changes_costs(db):
    route_costs_changed()
    costs = dict(RouteCost.objects.filter(route__in=["/changes", "/changes.atom"]).values_list("route", "cost"))

    assert costs["/changes.atom"] == costs["/changes"]


def test_the_feed_is_not_in_the_openapi_document(db, api):
    paths = api.get("/openapi.json").json()["paths"]

    assert "/changes" in paths
    assert "/changes.atom" not in paths
