"""GET /events: the caller's events (staff: all), newest first, paged, with `since` and `type`; events older than
KEEPER_EVENTS_DAYS are pruned by the daily task."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.keys import services as key_services
from keeper.events.models import Event, WebhookDelivery, WebhookEndpoint
from keeper.events.services import record_event
from keeper.events.tasks import prune_events
from keeper.events.types import EventType
from tests.keys.helpers import owner_actor, x_api_key

pytestmark = pytest.mark.django_db
START = timezone.now().replace(microsecond=0) - timedelta(days=2)


def _client(username: str, *, staff: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(username=username, password=None, is_staff=staff)
    client = APIClient()
    if staff:
        client.force_login(user)
    else:
        client.credentials(**x_api_key(key_services.key_create(owner=user, name="k", actor=owner_actor(user))))
    return client


@pytest.fixture
def events() -> list[Event]:
    """Five events a minute apart: alice's, bob's and a staff-only one, oldest first."""
    made = []
    with time_machine.travel(START, tick=False) as clock:
        for owner, type in [
            ("alice", EventType.KEY_EXPIRING),
            ("bob", EventType.KEY_EXPIRING),
            ("alice", EventType.WATCH_CHANGED),
            ("", EventType.SYNC_COMPLETED),
            ("alice", EventType.KEY_REVOKED),
        ]:
            made.append(record_event(owner, type, {"n": len(made)}, subject=f"key:{len(made)}"))
            clock.shift(timedelta(minutes=1))
    return made


def ids(answer) -> list[str]:
    assert answer.status_code == 200, answer.content
    return [event["id"] for event in answer.json()]


def test_a_caller_reads_its_own_events_newest_first(events):
    alice = _client("alice")
    answer = alice.get("/events")
    assert ids(answer) == [events[4].public_id, events[2].public_id, events[0].public_id]
    assert answer.json()[0] == {
        "id": events[4].public_id,
        "type": "key.revoked",
        "owner": "alice",
        "subject": "key:4",
        "data": {"n": 4},
        "created_at": events[4].created_at.isoformat().replace("+00:00", "Z"),
    }
    assert ids(_client("bob").get("/events")) == [events[1].public_id]
    assert ids(_client("carol").get("/events")) == []


def test_staff_read_every_event(events):
    assert ids(_client("root", staff=True).get("/events")) == [event.public_id for event in reversed(events)]


def test_events_are_filtered_by_time_and_type_and_paged(events):
    alice = _client("alice")
    since = events[2].created_at.isoformat()
    assert ids(alice.get("/events", {"since": since})) == [events[4].public_id]
    assert ids(alice.get("/events", {"type": "key.expiring"})) == [events[0].public_id]
    both = alice.get("/events", {"type": ["key.expiring", "key.revoked"]})
    assert ids(both) == [events[4].public_id, events[0].public_id]
    page = alice.get("/events", {"limit": 1, "page": 2, "add_total_count_header": "true"})
    assert ids(page) == [events[2].public_id] and page["X-Total-Count"] == "3"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [({"type": "key.nope"}, "type"), ({"since": "yesterday"}, "since"), ({"limit": 0}, "limit"), ({"x": 1}, "x")],
)
def test_bad_parameters_are_400s_naming_them(events, query, parameter):
    answer = _client("alice").get("/events", query)
    assert answer.status_code == 400 and answer["Content-Type"].startswith("application/json")
    assert parameter in answer.json()["errors"]


def test_anonymous_callers_get_a_401(api):
    answer = api.get("/events")
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"


def test_events_older_than_the_kept_days_are_pruned_with_their_deliveries(events, settings):
    settings.KEEPER_EVENTS_DAYS = 1
    endpoint = WebhookEndpoint.objects.create(owner="alice", url="https://93.184.216.34/", event_types=["key.expiring"])
    WebhookDelivery.objects.create(endpoint=endpoint, event=events[0])
    with time_machine.travel(START + timedelta(days=1, minutes=2, seconds=30), tick=False):
        recent = record_event("alice", EventType.KEY_EXPIRED, {})
        assert prune_events.apply(throw=True).get() == {"deleted": 3}
    assert list(Event.objects.order_by("created_at").values_list("public_id", flat=True)) == [
        events[3].public_id,
        events[4].public_id,
        recent.public_id,
    ]
    assert not WebhookDelivery.objects.filter(event_id=events[0].pk).exists()


def test_listing_events_costs_the_same_queries_for_one_or_many():
    alice = _client("alice")
    record_event("alice", EventType.KEY_EXPIRING, {})

    def counted() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert alice.get("/events").status_code == 200
        return len(queries)

    counted()  # the key's first use writes its bookkeeping
    one = counted()
    for _ in range(4):
        record_event("alice", EventType.KEY_EXPIRING, {})
    assert counted() == one and len(alice.get("/events").json()) == 5
