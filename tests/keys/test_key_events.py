"""Key events (issue 18): key.suspended, key.revoked, key.rotated, key.expiring, key.expired,
key.quota_warning and key.quota_exhausted, each recorded once, for the key's owner, with what names
the key and the figures, in the transaction of the change; never a secret."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from apps.keys import services
from apps.keys.choices import KeyStatus
from apps.keys.models import ApiKey, KeyUsageDay
from apps.keys.services import Actor, key_revoke, key_rotate, key_suspend, keys_record_quota_events
from apps.keys.tasks import warn_expiring_keys
from apps.keys.throttles import quota_counter_key
from apps.keys.usage import usage_buffer
from apps.throttling.models import GlobalRateLimit, RouteCost
from apps.throttling.services import limiters, reset_limiters, seconds_to_utc_midnight
from keeper.events.models import Event
from tests.keys.helpers import bearer

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 4, 6, 0, tzinfo=UTC)


def events(type: str | None = None) -> list[Event]:
    found = Event.objects.order_by("id")
    return list(found.filter(type=type) if type else found)


def names_the_key(event: Event, key: ApiKey) -> None:
    """The event is the key owner's, about this key, and names it as the API does (never its secret)."""
    assert event.owner == key.owner.get_username()
    assert event.subject == f"key:{key.key_id}"
    assert {name: event.data[name] for name in ("key_id", "prefix", "masked", "name", "owner", "organization")} == {
        "key_id": key.key_id,
        "prefix": key.prefix,
        "masked": key.masked,
        "name": key.name,
        "owner": key.owner.get_username(),
        "organization": key.organization.slug if key.organization_id else None,
    }


def holds_no_secret(event: Event, *values: str) -> None:
    text = str(event.data)
    for value in values:
        assert value not in text


# --- Status changes and rotation ------------------------------------------------------------------


def test_suspending_records_key_suspended_once_with_the_reason(make_key):
    issued = make_key(name="ci")
    key = issued.api_key

    key_suspend(key, actor=Actor("admin:carol"), reason="leaked in a log")

    [event] = events()
    assert event.type == "key.suspended"
    names_the_key(event, key)
    assert (event.data["previous_status"], event.data["reason"], event.data["actor"]) == (
        "active",
        "leaked in a log",
        "admin:carol",
    )
    holds_no_secret(event, issued.value, key.secret_hash)


def test_revoking_records_key_revoked_once_and_a_second_revoke_records_nothing(make_key, organization, join, alice):
    join(alice, organization, "admin")
    issued = make_key(name="team", organization=organization)
    key = issued.api_key

    key_revoke(key, actor=Actor("alice"), reason="not needed")
    key_revoke(key, actor=Actor("alice"), reason="again")

    [event] = events()
    assert event.type == "key.revoked"
    names_the_key(event, key)
    assert event.data["organization"] == "acme"
    assert (event.data["previous_status"], event.data["reason"]) == ("active", "not needed")


def test_rotating_records_key_rotated_with_the_grace_period_and_no_secret(make_key):
    issued = make_key()
    key = issued.api_key

    with time_machine.travel(NOW, tick=False):
        rotated = key_rotate(key, actor=Actor("alice"), grace_seconds=300)

    [event] = events()
    assert event.type == "key.rotated"
    names_the_key(event, key)
    assert (event.data["grace_period_seconds"], event.data["previous_valid_until"]) == (
        300,
        (NOW + timedelta(seconds=300)).isoformat(),
    )
    holds_no_secret(event, issued.value, rotated.value, key.secret_hash, key.previous_secret_hash)


def test_reactivating_records_no_event(make_key):
    key = make_key().api_key
    key_suspend(key, actor=Actor("admin"))

    services.key_reactivate(key, actor=Actor("admin"))

    assert [event.type for event in events()] == ["key.suspended"]


def test_the_api_and_the_admin_paths_record_the_same_events(api, make_key, alice, staff, client):
    """Every path goes through the services: the API's revoke and rotate, the admin's suspend action."""
    rotated, revoked, suspended = make_key(name="r"), make_key(name="v"), make_key(name="s")
    api.force_login(alice)
    assert api.post(f"/keys/{rotated.api_key.key_id}/rotate", {}, format="json").status_code == 200
    assert api.post(f"/keys/{revoked.api_key.key_id}/revoke", {}, format="json").status_code == 200
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    answer = client.post(
        "/admin/keys/apikey/", {"action": "suspend_keys", "_selected_action": [suspended.api_key.pk]}, follow=True
    )

    assert answer.status_code == 200
    assert [(event.type, event.subject) for event in events()] == [
        ("key.rotated", f"key:{rotated.api_key.key_id}"),
        ("key.revoked", f"key:{revoked.api_key.key_id}"),
        ("key.suspended", f"key:{suspended.api_key.key_id}"),
    ]


def test_a_rolled_back_change_records_no_event(make_key):
    key = make_key().api_key

    with pytest.raises(RuntimeError), transaction.atomic():
        key_revoke(key, actor=Actor("alice"))
        raise RuntimeError("the caller's transaction fails after the revoke")

    key.refresh_from_db()
    assert key.status == KeyStatus.ACTIVE
    assert events() == []


# --- Expiry: the daily task ------------------------------------------------------------------------


def test_the_daily_task_records_key_expiring_once_per_key(make_key, settings):
    settings.KEEPER_KEY_EXPIRY_WARNING_DAYS = 7
    with time_machine.travel(NOW, tick=False):
        soon = make_key(name="soon", expires_at=NOW + timedelta(days=3)).api_key
        make_key(name="later", expires_at=NOW + timedelta(days=10))
        make_key(name="never")

        warn_expiring_keys()
        warn_expiring_keys()

    [event] = events()
    assert event.type == "key.expiring"
    names_the_key(event, soon)
    assert (event.data["expires_at"], event.data["warning_days"]) == ((NOW + timedelta(days=3)).isoformat(), 7)


def test_the_daily_task_records_key_expired_once_after_the_expiry(make_key, settings):
    settings.KEEPER_KEY_EXPIRY_WARNING_DAYS = 7
    with time_machine.travel(NOW, tick=False):
        key = make_key(name="short", expires_at=NOW + timedelta(days=1)).api_key
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        warn_expiring_keys()
        warn_expiring_keys()

    assert [event.type for event in events()] == ["key.expired"]
    [event] = events()
    names_the_key(event, key)
    assert (event.data["expires_at"], event.data["previous_status"]) == (
        (NOW + timedelta(days=1)).isoformat(),
        "active",
    )
    key.refresh_from_db()
    assert key.status == KeyStatus.EXPIRED


def test_a_key_warned_then_expired_has_both_events_in_that_order(make_key, settings):
    settings.KEEPER_KEY_EXPIRY_WARNING_DAYS = 7
    with time_machine.travel(NOW, tick=False):
        make_key(name="short", expires_at=NOW + timedelta(days=2))
        warn_expiring_keys()
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        warn_expiring_keys()

    assert [event.type for event in events()] == ["key.expiring", "key.expired"]


# --- Daily quota: recorded by the usage flush --------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limits(request, settings, no_redis):
    """Rate limiting on, a bucket too big to matter; quotas counted in the database (memory backend), or
    quotas and the usage counters in Redis (redis backend)."""
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = request.param
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 1000
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 3600  # flushed by the test, not by the requests
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    reset_limiters()
    return settings


def spend(api, issued, times: int) -> list[int]:
    return [api.get("/regions", **bearer(issued)).status_code for _ in range(times)]


def test_quota_warning_at_80_percent_then_exhausted_at_the_quota_each_once(api, make_key, limits):
    issued = make_key(daily_quota=10)
    key = issued.api_key

    assert spend(api, issued, 7) == [200] * 7
    usage_buffer.flush()
    assert events() == []  # 70%

    assert spend(api, issued, 1) == [200]
    usage_buffer.flush()
    [warning] = events()
    assert warning.type == "key.quota_warning"
    names_the_key(warning, key)
    today = datetime.now(UTC).date().isoformat()
    assert {name: warning.data[name] for name in ("daily_quota", "used", "remaining", "day", "threshold_percent")} == {
        "daily_quota": 10,
        "used": 8,
        "remaining": 2,
        "day": today,
        "threshold_percent": 80,
    }

    assert spend(api, issued, 3) == [200, 200, 429]
    usage_buffer.flush()
    assert spend(api, issued, 2) == [429, 429]
    usage_buffer.flush()

    assert [event.type for event in events()] == ["key.quota_warning", "key.quota_exhausted"]
    exhausted = events("key.quota_exhausted")[0]
    assert (exhausted.data["used"], exhausted.data["remaining"], exhausted.data["day"]) == (10, 0, today)


def test_a_refusal_short_of_the_quota_is_exhausted_too(api, make_key, limits):
    """Quota 5, two credits a request: 4 used (80%: the warning), the third refused with 1 credit left."""
    RouteCost.objects.create(route="/regions", cost=2)
    issued = make_key(daily_quota=5)

    assert spend(api, issued, 3) == [200, 200, 429]
    usage_buffer.flush()

    assert [(event.type, event.data["used"], event.data["remaining"]) for event in events()] == [
        ("key.quota_warning", 4, 1),
        ("key.quota_exhausted", 4, 1),
    ]


def test_a_key_without_a_daily_quota_has_no_quota_events(api, make_key, limits):
    issued = make_key()

    assert spend(api, issued, 5) == [200] * 5
    usage_buffer.flush()

    assert events() == []


def test_the_quota_events_come_again_on_the_next_utc_day(api, make_key, limits):
    issued = make_key(daily_quota=2)
    with time_machine.travel(NOW, tick=False):
        spend(api, issued, 3)
        usage_buffer.flush()
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        spend(api, issued, 3)
        usage_buffer.flush()

    assert [(event.type, event.data["day"]) for event in events()] == [
        ("key.quota_warning", "2031-03-04"),
        ("key.quota_exhausted", "2031-03-04"),
        ("key.quota_warning", "2031-03-05"),
        ("key.quota_exhausted", "2031-03-05"),
    ]
    assert KeyUsageDay.objects.filter(key=issued.api_key, quota_exhausted_at__isnull=False).count() == 2


def test_a_child_keys_requests_warn_the_owner_of_the_quota_above(api, make_key, limits):
    """A key created by a key spends its parent's quota too: the parent's quota warns, about the parent,
    though only the child made requests."""
    RouteCost.objects.create(route="/keys", cost=0)
    parent = make_key(name="parent", daily_quota=10, scope="write")
    created = api.post("/keys", {"name": "child"}, format="json", **bearer(parent))
    assert created.status_code == 201, created.content
    usage_buffer.flush()

    assert spend(api, created.json()["key"], 8) == [200] * 8
    usage_buffer.flush()

    child = ApiKey.objects.get(name="child")
    assert child.daily_quota == 10  # a child's limits are within its parent's: its own quota is 10 too
    warnings = {event.subject: event for event in events()}
    assert list(warnings) == [f"key:{child.key_id}", f"key:{parent.api_key.key_id}"]
    names_the_key(warnings[f"key:{parent.api_key.key_id}"], parent.api_key)
    assert {(event.type, event.data["used"], event.data["remaining"]) for event in warnings.values()} == {
        ("key.quota_warning", 8, 2)
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_record_each_quota_event_exactly_once(make_key):
    """Eight threads (eight connections) ask at once, twice: each event is recorded by one of them."""
    reset_limiters()
    key = make_key(daily_quota=10).api_key
    counter = quota_counter_key(key)
    assert limiters().add_within(counter, 10, 10, seconds_to_utc_midnight()).allowed
    start = threading.Barrier(8)
    recorded: list[str] = []

    def flush() -> None:
        try:
            start.wait()
            for _ in range(2):
                recorded.extend(event.type for event in keys_record_quota_events({key.pk: False}))
        finally:
            connection.close()

    threads = [threading.Thread(target=flush) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(recorded) == ["key.quota_exhausted", "key.quota_warning"]
    assert sorted(event.type for event in events()) == ["key.quota_exhausted", "key.quota_warning"]
