"""What keys were used for (GET /keys/{id}/usage, GET /keys/usage) and the live change stream (GET /keys/watch)."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from apps.keys import views
from apps.keys.choices import Scope
from apps.keys.models import AuditEvent, KeyUsageDay
from apps.keys.services import Actor, key_delete, key_revoke, key_rotate, key_update
from apps.keys.usage import usage_buffer
from keeper.api.streams import StreamSlots
from tests.keys.helpers import bearer

pytestmark = pytest.mark.django_db

DAY_1 = datetime(2031, 3, 3, 10, 0, tzinfo=UTC)
DAY_2 = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def flush_each_request(settings) -> None:
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 0


@pytest.fixture
def as_alice(api, alice, settings):
    settings.SESSION_COOKIE_AGE = 20 * 365 * 24 * 3600  # the tests travel years ahead
    api.force_login(alice)
    return api


@pytest.fixture
def two_days_of_use(api, make_key, flush_each_request):
    """alice's key: 3 fine calls on day 1; on day 2 a fine call, a bad one (400) and one over its pool (429)."""
    issued = make_key(credits_per_minute=5)
    with time_machine.travel(DAY_1, tick=False):
        for _ in range(3):
            assert api.get("/regions", **bearer(issued)).status_code == 200
    with time_machine.travel(DAY_2, tick=False):
        assert api.get("/me", **bearer(issued)).status_code == 200
        assert api.get("/regions?colour=red", **bearer(issued)).status_code == 400
        assert api.get("/regions", **bearer(issued)).status_code == 429
    return issued


def test_a_keys_usage_is_counted_per_day_with_errors_rate_limits_and_top_endpoints(as_alice, two_days_of_use):
    with time_machine.travel(DAY_2 + timedelta(hours=1), tick=False):
        response = as_alice.get(f"/keys/{two_days_of_use.api_key.key_id}/usage?days=2")

    assert response.status_code == 200, response.content
    body = response.json()
    day_2_credits = body["per_day"][1]["credits"]
    # Day 2 spent 2 credits; whether the refused (429) request's cost is counted too is not settled.
    assert 2 <= day_2_credits <= 3
    assert body == {
        "days": 2,
        "requests": 6,
        "errors": 2,
        "rate_limited": 1,
        "credits": 3 + day_2_credits,
        "average_per_day": 3.0,
        "top_endpoints": [{"route": "/regions", "requests": 5}, {"route": "/me", "requests": 1}],
        "per_day": [
            {"day": "2031-03-03", "requests": 3, "errors": 0, "rate_limited": 0, "credits": 3},
            {
                "day": "2031-03-04",
                "requests": 3,
                "errors": 2,
                "rate_limited": 1,
                "credits": day_2_credits,
            },
        ],
    }


def test_days_limits_the_usage_to_the_last_days(as_alice, two_days_of_use):
    with time_machine.travel(DAY_2 + timedelta(hours=1), tick=False):
        today = as_alice.get(f"/keys/{two_days_of_use.api_key.key_id}/usage?days=1").json()
        month = as_alice.get(f"/keys/{two_days_of_use.api_key.key_id}/usage").json()

    assert (today["days"], today["requests"], [d["day"] for d in today["per_day"]]) == (1, 3, ["2031-03-04"])
    assert (month["days"], month["requests"], month["average_per_day"]) == (30, 6, 0.2)


def test_the_usage_of_all_the_callers_keys_is_added_up(as_alice, api, make_key, bob, flush_each_request):
    first, second = make_key(), make_key()
    bobs = make_key(bob, name="bobs")
    for key, calls in ((first, 2), (second, 3), (bobs, 7)):
        for _ in range(calls):
            api.get("/regions", **bearer(key))

    body = as_alice.get("/keys/usage?days=1").json()

    assert (body["requests"], body["top_endpoints"]) == (5, [{"route": "/regions", "requests": 5}])
    assert body["per_day"] == [
        {"day": date.today().isoformat(), "requests": 5, "errors": 0, "rate_limited": 0, "credits": 5}
    ]


def test_an_admin_key_sees_the_usage_of_everyones_keys(api, make_key, bob, flush_each_request):
    boss = make_key(name="boss", scope=Scope.ADMIN)
    bobs = make_key(bob, name="bobs")
    for _ in range(4):
        api.get("/regions", **bearer(bobs))

    body = api.get("/keys/usage?days=1", **bearer(boss)).json()

    assert body["requests"] == 4


def test_a_key_with_no_use_has_an_empty_usage(as_alice, make_key):
    issued = make_key()

    body = as_alice.get(f"/keys/{issued.api_key.key_id}/usage?days=7").json()

    assert body == {
        "days": 7,
        "requests": 0,
        "errors": 0,
        "rate_limited": 0,
        "credits": 0,
        "average_per_day": 0.0,
        "top_endpoints": [],
        "per_day": [],
    }


def test_usage_is_buffered_in_the_process_until_flushed(api, make_key, settings):
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 3600
    issued = make_key()
    for _ in range(3):
        api.get("/regions", **bearer(issued))

    before = KeyUsageDay.objects.filter(key=issued.api_key).exists()
    usage_buffer.flush()

    assert before is False
    assert KeyUsageDay.objects.get(key=issued.api_key).requests == 3


def test_flushing_adds_to_the_days_row(api, make_key, settings):
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 3600
    issued = make_key()
    api.get("/regions", **bearer(issued))
    usage_buffer.flush()
    api.get("/regions", **bearer(issued))
    api.get("/me", **bearer(issued))
    usage_buffer.flush()

    row = KeyUsageDay.objects.get(key=issued.api_key)
    assert (row.requests, row.endpoints) == (3, {"/regions": 2, "/me": 1})


def test_refused_keys_are_not_counted(api, make_key, flush_each_request):
    issued = make_key(allowed_endpoints=["/me"])
    key_revoked = make_key()
    key_revoke(key_revoked.api_key, actor=Actor("test"))

    api.get("/regions", **bearer(issued))
    api.get("/regions", **bearer(key_revoked))

    assert not KeyUsageDay.objects.exists()


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=week", "colour=red"])
@pytest.mark.parametrize("path", ["/keys/usage", "/keys/{id}/usage"])
def test_bad_usage_parameters_are_a_400_naming_them(as_alice, make_key, path, query):
    issued = make_key()

    response = as_alice.get(f"{path.format(id=issued.api_key.key_id)}?{query}")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [query.split("=")[0]]


@pytest.mark.parametrize("days", [1, 366])
def test_days_may_be_anything_from_one_to_366(as_alice, days):
    assert as_alice.get(f"/keys/usage?days={days}").json()["days"] == days


# --- GET /keys/watch: server-sent events ------------------------------------------


class StreamClock:
    """Stands in for the watch view's `time`: a sleep passes at once and lets the test act meanwhile."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = 0
        self.meanwhile = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        while self.meanwhile:
            self.meanwhile.pop(0)()


@pytest.fixture
def clock(monkeypatch, settings) -> StreamClock:
    settings.KEEPER_KEY_WATCH_SECONDS = 2
    fake = StreamClock()
    monkeypatch.setattr(views, "time", fake)
    return fake


def read_stream(response) -> tuple[str, list[dict]]:
    """The raw stream and its events ({id, event, data})."""
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode()
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            events.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return text, events


@pytest.fixture
def history(make_key, bob):
    """alice's key created, rotated and revoked; bob's key created."""
    issued = make_key(name="ci")
    rotated = key_rotate(issued.api_key, actor=Actor("session:alice", "192.0.2.1"))
    key_revoke(issued.api_key, actor=Actor("session:alice"), reason="leaked")
    make_key(bob, name="bobs")
    return issued, rotated


def test_the_stream_sends_the_changes_to_the_callers_keys_only(as_alice, clock, history):
    issued, rotated = history

    text, events = read_stream(as_alice.get("/keys/watch?timeout=1&last_event_id=0"))

    assert [e["event"] for e in events] == ["key.create", "key.rotate", "key.revoke"]
    before_rotation = f"keeper_{issued.api_key.key_id}…{issued.value[-4:]}"
    after_rotation = f"keeper_{issued.api_key.key_id}…{rotated.value[-4:]}"
    assert [e["data"]["key"] for e in events] == [before_rotation, after_rotation, after_rotation]
    assert events[1]["data"]["actor"] == "session:alice"
    assert events[2]["data"]["changes"] == {"status": ["active", "revoked"]}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert "bobs" not in text
    assert issued.value not in text and rotated.value not in text


def test_the_stream_is_an_uncached_event_stream_with_a_retry_hint(as_alice, clock, history):
    response = as_alice.get("/keys/watch?timeout=1", HTTP_ACCEPT="text/event-stream")

    text, _ = read_stream(response)

    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-store"
    assert text.startswith("retry: 2000\n\n")


def test_the_stream_resumes_after_last_event_id(as_alice, clock, history):
    created = AuditEvent.objects.get(action="create", key__name="ci")

    _, events = read_stream(as_alice.get("/keys/watch?timeout=1", HTTP_LAST_EVENT_ID=str(created.id)))

    assert [e["event"] for e in events] == ["key.rotate", "key.revoke"]
    assert all(e["id"] > created.id for e in events)


def test_the_last_event_id_parameter_wins_over_the_header(as_alice, clock, history):
    revoke = AuditEvent.objects.get(action="revoke")

    _, events = read_stream(
        as_alice.get(f"/keys/watch?timeout=1&last_event_id={revoke.id - 1}", HTTP_LAST_EVENT_ID="0")
    )

    assert [e["event"] for e in events] == ["key.revoke"]


def test_a_new_stream_starts_at_the_present_and_sends_changes_made_while_it_is_open(as_alice, clock, history, alice):
    issued, _ = history
    clock.meanwhile.append(lambda: key_update(issued.api_key, actor=Actor("test"), description="changed"))

    _, events = read_stream(as_alice.get("/keys/watch?timeout=1"))

    assert [e["event"] for e in events] == ["key.update"]
    assert events[0]["data"]["changes"] == {"description": ["", "changed"]}


def test_the_deletion_of_a_key_is_still_sent_to_its_owner(as_alice, clock, make_key, bob):
    issued = make_key(name="doomed")
    key_delete(issued.api_key, actor=Actor("test"))
    key_delete(make_key(bob, name="bobs").api_key, actor=Actor("test"))

    _, events = read_stream(as_alice.get("/keys/watch?timeout=1&last_event_id=0"))

    assert [(e["event"], e["data"]["key"]) for e in events] == [
        ("key.create", issued.api_key.masked),
        ("key.delete", issued.api_key.masked),
    ]


def test_an_admin_key_watches_everyones_keys(api, clock, history, make_key):
    boss = make_key(name="boss", scope=Scope.ADMIN)

    _, events = read_stream(api.get("/keys/watch?timeout=1&last_event_id=0", **bearer(boss)))

    assert [e["event"] for e in events] == ["key.create", "key.rotate", "key.revoke", "key.create", "key.create"]


def test_the_stream_closes_after_the_timeout_or_the_server_limit_whichever_is_first(as_alice, clock):
    read_stream(as_alice.get("/keys/watch?timeout=1"))
    after_one = clock.now
    read_stream(as_alice.get("/keys/watch?timeout=3600"))

    assert after_one == 1.0
    assert clock.now - after_one == 2.0  # KEEPER_KEY_WATCH_SECONDS


@pytest.mark.parametrize(
    "query",
    ["timeout=0", "timeout=3601", "last_event_id=-1", "last_event_id=x", f"last_event_id={2**63}", "colour=red"],
)
def test_bad_watch_parameters_are_a_400_naming_them(as_alice, clock, query):
    response = as_alice.get(f"/keys/watch?{query}")

    assert response.status_code == 400
    assert list(json.loads(response.content)["errors"]) == [query.split("=")[0]]


@pytest.mark.parametrize("accept", [None, "text/event-stream"])
def test_errors_of_the_watch_endpoint_are_json_like_every_other_error(api, db, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}

    response = api.get("/keys/watch?timeout=1", **headers)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_a_caller_over_its_stream_share_gets_a_429_with_a_time_to_retry_until_one_closes(as_alice, clock, settings):
    settings.KEEPER_STREAMS_PER_CALLER = 2
    first, second = as_alice.get("/keys/watch?timeout=1"), as_alice.get("/keys/watch?timeout=1")

    refused = as_alice.get("/keys/watch?timeout=1")
    assert (first.status_code, second.status_code, refused.status_code) == (200, 200, 429)
    assert refused.json()["code"] == "too_many_streams"
    assert 1 <= int(refused["Retry-After"]) <= settings.KEEPER_KEY_WATCH_SECONDS
    # A stream frees its place when it ends.
    read_stream(first)
    read_stream(second)
    assert views.watch_streams.count() == 0
    read_stream(as_alice.get("/keys/watch?timeout=1"))


def test_a_stream_closed_before_it_was_read_frees_its_place():
    slots = StreamSlots(lambda: (8, 1, 25.0))
    never_read = slots.open("caller", iter([b"event"]))

    never_read.close()

    assert slots.count() == 0
    assert list(slots.open("caller", iter([b"event"]))) == [b"event"]
    assert slots.count() == 0


def test_streams_of_all_callers_together_are_capped_per_process(api, as_alice, clock, settings, make_key):
    settings.KEEPER_STREAMS_PER_PROCESS = 1
    held = as_alice.get("/keys/watch?timeout=1")

    other = api.get("/keys/watch?timeout=1", **bearer(make_key(name="other")))

    assert (held.status_code, other.status_code) == (200, 429)
    assert "Too many streams" in other.json()["detail"]
    read_stream(held)


@pytest.mark.parametrize(
    "header",
    [
        # The byte 0xB2 as WSGI hands it over (latin-1): "²", a digit to str.isdigit() but not to int().
        b"\xb2".decode("latin-1"),
        "1" + b"\xb2".decode("latin-1"),
        "٣",  # an Arabic-Indic digit
        "5" * 5000,  # past Python's int() limit of 4,300 digits
        "9" * 19,  # more digits than any event id has
        "",
        "-1",
        "x",
    ],
)
def test_a_last_event_id_that_is_not_a_bounded_ascii_number_is_a_400_naming_the_header(as_alice, clock, header):
    response = as_alice.get("/keys/watch?timeout=1", HTTP_LAST_EVENT_ID=header)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "Last-Event-ID" in json.dumps(response.json())
    assert views.watch_streams.count() == 0


def test_a_malformed_last_event_id_is_refused_even_beside_the_query_parameter(as_alice, clock):
    response = as_alice.get("/keys/watch?timeout=1&last_event_id=0", HTTP_LAST_EVENT_ID="x")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["Last-Event-ID"]


def test_one_owners_keys_share_one_stream_share(api, as_alice, clock, settings, make_key, bob):
    settings.KEEPER_STREAMS_PER_CALLER = 2
    keys = [make_key(name=f"watcher-{n}") for n in range(3)]

    first = api.get("/keys/watch?timeout=1", **bearer(keys[0]))
    second = api.get("/keys/watch?timeout=1", **bearer(keys[1]))
    third = api.get("/keys/watch?timeout=1", **bearer(keys[2]))
    by_session = as_alice.get("/keys/watch?timeout=1")
    by_another_owner = api.get("/keys/watch?timeout=1", **bearer(make_key(bob, name="bobs-watcher")))

    assert [r.status_code for r in (first, second, third, by_session)] == [200, 200, 429, 429]
    assert third.json()["code"] == "too_many_streams"
    assert by_another_owner.status_code == 200
    for response in (first, second, by_another_owner):
        read_stream(response)
    assert views.watch_streams.count() == 0
