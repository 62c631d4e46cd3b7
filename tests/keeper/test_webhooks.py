"""Webhooks (keeper/events): endpoints through the API, deliveries to real receivers on 127.0.0.1, signed as the
Standard Webhooks specification says and verified with another implementation (svix's own, pinned in
requirements-dev.txt), retried on a schedule, disabled when they keep failing, never to a private address
unless allowed, and secrets shown once, stored sealed and never logged."""

import base64
import logging
from datetime import timedelta

import orjson
import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from apps.keys import services as key_services
from keeper.admin import staff_overview
from keeper.events import delivery, services
from keeper.events.models import AttemptOutcome, DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from keeper.events.services import record_event
from keeper.events.tasks import deliver_webhooks
from keeper.events.types import EventType
from tests.fakes import FakeReceiver, Received
from tests.keys.helpers import owner_actor, x_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _receivers_on_loopback(settings) -> None:
    """The test receivers listen on 127.0.0.1 over plain HTTP: allowed, as an operator would allow them."""
    settings.KEEPER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.KEEPER_WEBHOOK_ALLOW_HTTP = True
    settings.KEEPER_WEBHOOK_TIMEOUT_SECONDS = 5


def _client(username: str, *, staff: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(username=username, password=None, is_staff=staff)
    client = APIClient()
    if staff:
        client.force_login(user)
    else:
        issued = key_services.key_create(owner=user, name=f"{username}-key", actor=owner_actor(user))
        client.credentials(**x_api_key(issued))
    return client


@pytest.fixture
def alice() -> APIClient:
    return _client("alice")


@pytest.fixture
def bob() -> APIClient:
    return _client("bob")


@pytest.fixture
def root() -> APIClient:
    return _client("root", staff=True)


def create(client: APIClient, url: str, types: list[str] | None = None, **extra) -> dict:
    body = {"url": url, "event_types": types or ["key.expiring", "watch.changed"], **extra}
    answer = client.post("/webhooks", body, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def refused(answer, status: int, *words: str) -> dict:
    """A 4xx with Keeper's JSON error body naming what was wrong."""
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["detail"] and body["code"]
    text = orjson.dumps(body).decode()
    for word in words:
        assert word in text, text
    return body


def verify(secret: str, received: Received) -> dict:
    """What a receiver written with svix does: raises unless the signature and timestamp are right."""
    return SvixWebhook(secret).verify(received.body, received.headers)


def deliver() -> dict:
    return deliver_webhooks.apply(throw=True).get()


# --- Creating endpoints ----------------------------------------------------------


def test_an_endpoint_is_created_with_its_secret_shown_once_and_stored_sealed(alice, receiver: FakeReceiver):
    body = create(alice, receiver.url(), description="ops")
    secret = body["secret"]
    assert body["id"].startswith("wh_") and body["owner"] == "alice" and body["enabled"] is True
    assert body["event_types"] == ["watch.changed", "key.expiring"] and body["description"] == "ops"
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    raw = secret.removeprefix("whsec_")
    for answer in (alice.get("/webhooks"), alice.get(f"/webhooks/{body['id']}")):
        assert (
            answer.status_code == 200
            and raw not in answer.content.decode()
            and 'secret"' not in answer.content.decode()
        )
    row = WebhookEndpoint.objects.values().get(public_id=body["id"])
    stored = orjson.dumps(row, default=str).decode()
    assert raw not in stored and raw.rstrip("=") not in stored
    assert base64.b64decode(raw).hex() not in stored
    assert row["secret_encrypted"].startswith("v1.")


def test_the_destination_is_checked_when_saved(alice, settings, receiver: FakeReceiver):
    settings.KEEPER_WEBHOOK_ALLOWED_NETWORKS = []
    answer = alice.post(
        "/webhooks", {"url": f"http://localhost:{receiver.port}/hook", "event_types": ["key.expired"]}, format="json"
    )
    refused(answer, 400, "url", "127.0.0.1, a loopback address")
    settings.KEEPER_WEBHOOK_ALLOW_HTTP = False
    answer = alice.post(
        "/webhooks", {"url": "http://93.184.216.34/hook", "event_types": ["key.expired"]}, format="json"
    )
    refused(answer, 400, "must start with https://")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "https://93.184.216.34/", "event_types": ["key.nope"]}, ["event_types", "key.nope"]),
        ({"url": "https://93.184.216.34/", "event_types": ["sync.completed"]}, ["Only staff", "sync.completed"]),
        ({"url": "https://93.184.216.34/", "event_types": []}, ["event_types"]),
        ({"url": "https://93.184.216.34/", "event_types": "key.expired"}, ["event_types"]),
        ({"event_types": ["key.expired"]}, ["url"]),
        ({"url": "https://93.184.216.34/", "event_types": ["key.expired"], "secret": "whsec_x"}, ["secret"]),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(alice, body, words):
    refused(alice.post("/webhooks", body, format="json"), 400, *words)


def test_anonymous_callers_are_refused(api):
    refused(api.get("/webhooks"), 401)
    refused(
        api.post("/webhooks", {"url": "https://93.184.216.34/", "event_types": ["key.expired"]}, format="json"), 401
    )


def test_a_caller_has_at_most_the_configured_number_of_endpoints(alice, bob, settings, receiver):
    settings.KEEPER_WEBHOOKS_PER_CALLER = 2
    create(alice, receiver.url("/1"))
    create(alice, receiver.url("/2"))
    refused(
        alice.post("/webhooks", {"url": receiver.url("/3"), "event_types": ["key.expired"]}, format="json"),
        409,
        "KEEPER_WEBHOOKS_PER_CALLER",
    )
    create(bob, receiver.url("/bob"))  # per caller
    assert WebhookEndpoint.objects.filter(owner="alice").count() == 2


# --- Ownership -------------------------------------------------------------------


def test_another_callers_endpoint_is_a_404_and_staff_see_all(alice, bob, root, receiver):
    mine = create(alice, receiver.url())["id"]
    event = record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    delivery_id = WebhookDelivery.objects.get(event=event).public_id
    for method, path in [
        ("get", f"/webhooks/{mine}"),
        ("patch", f"/webhooks/{mine}"),
        ("delete", f"/webhooks/{mine}"),
        ("post", f"/webhooks/{mine}/rotate_secret"),
        ("post", f"/webhooks/{mine}/test"),
        ("get", f"/webhooks/{mine}/deliveries"),
        ("post", f"/webhooks/{mine}/deliveries/{delivery_id}/retry"),
    ]:
        refused(getattr(bob, method)(path, {}, format="json"), 404, mine)
    assert bob.get("/webhooks").json() == []
    assert [e["id"] for e in alice.get("/webhooks").json()] == [mine]
    assert [e["id"] for e in root.get("/webhooks").json()] == [mine]
    assert root.get(f"/webhooks/{mine}").status_code == 200
    assert WebhookEndpoint.objects.filter(public_id=mine, enabled=True).exists()


def test_an_endpoint_is_changed_and_deleted_by_its_owner(alice, receiver):
    mine = create(alice, receiver.url())["id"]
    answer = alice.patch(f"/webhooks/{mine}", {"event_types": ["key.revoked"], "description": "new"}, format="json")
    assert answer.status_code == 200 and answer.json()["event_types"] == ["key.revoked"]
    refused(alice.patch(f"/webhooks/{mine}", {"url": "https://10.0.0.1/"}, format="json"), 400, "10.0.0.1, a private")
    refused(alice.patch(f"/webhooks/{mine}", {"owner": "bob"}, format="json"), 400, "owner")
    refused(alice.get(f"/webhooks/{mine}?x=1"), 400, "x")
    assert alice.delete(f"/webhooks/{mine}").status_code == 204
    refused(alice.get(f"/webhooks/{mine}"), 404)


# --- Delivery --------------------------------------------------------------------


def test_an_event_is_delivered_signed_to_the_owners_matching_endpoints(alice, bob, receiver):
    secret = create(alice, receiver.url("/alice"), ["key.expiring"])["secret"]
    create(alice, receiver.url("/other-type"), ["key.revoked"])
    create(bob, receiver.url("/bob"), ["key.expiring"])
    event = record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1", "expires_at": "2026-12-24T00:00:00Z"})
    assert deliver()["succeeded"] == [WebhookDelivery.objects.get().public_id]
    (received,) = receiver.received
    assert received.path == "/alice"
    assert verify(secret, received) == {
        "type": "key.expiring",
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"key_id": "k1", "expires_at": "2026-12-24T00:00:00Z"},
    }
    assert received.headers["webhook-id"] == event.public_id
    assert received.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        verify(secret, Received(received.path, received.headers, received.body + b" "))
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.SUCCEEDED, 1, 200)
    (attempt,) = row.attempt_log.all()
    assert (attempt.outcome, attempt.status_code, attempt.answer_excerpt) == (AttemptOutcome.SUCCEEDED, 200, "oo")
    assert deliver() == {"succeeded": [], "failed": []}  # nothing left due
    assert len(receiver.received) == 1


def test_staff_only_events_go_to_staff_endpoints_only(alice, root, receiver):
    refused(alice.post("/webhooks", {"url": receiver.url(), "event_types": ["sync.failed"]}, format="json"), 400)
    secret = create(root, receiver.url("/staff"), ["sync.completed"])["secret"]
    create(alice, receiver.url("/alice"), ["key.expiring"])
    record_event("", EventType.SYNC_COMPLETED, {"sync_id": 5})
    deliver()
    assert [r.path for r in receiver.received] == ["/staff"]
    assert verify(secret, receiver.received[0])["data"] == {"sync_id": 5}


def test_nothing_is_delivered_for_an_event_whose_transaction_rolled_back(alice, receiver):
    create(alice, receiver.url(), ["key.expiring"])
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
        raise RuntimeError("the caller's transaction fails")
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()
    deliver()
    assert receiver.received == []


def test_a_failing_receiver_is_retried_on_the_schedule_with_the_same_webhook_id(alice, receiver):
    secret = create(alice, receiver.url(), ["key.expiring"])["secret"]
    receiver.failures = 2
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        event = record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
        assert deliver()["failed"]
        row = WebhookDelivery.objects.get()
        assert row.status == DeliveryStatus.PENDING and row.next_attempt_at == start + delivery.RETRY_SCHEDULE[0]
        assert deliver() == {"succeeded": [], "failed": []}  # not due yet
        clock.shift(delivery.RETRY_SCHEDULE[0])
        assert deliver()["failed"]
        clock.shift(delivery.RETRY_SCHEDULE[1] - timedelta(seconds=1))
        assert deliver() == {"succeeded": [], "failed": []}
        clock.shift(timedelta(seconds=1))
        assert deliver()["succeeded"]
        for received in receiver.received[-1:]:
            verify(secret, received)
    assert [r.headers["webhook-id"] for r in receiver.received] == [event.public_id] * 3
    assert len({r.body for r in receiver.received}) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    log = list(row.attempt_log.values_list("number", "outcome", "status_code", "error"))
    assert log == [
        (1, "failed", 500, "Answered 500."),
        (2, "failed", 500, "Answered 500."),
        (3, "succeeded", 200, ""),
    ]
    assert "failing on purpose" in row.attempt_log.first().answer_excerpt


def test_a_hanging_receiver_is_given_up_on_and_retried(alice, receiver, settings):
    settings.KEEPER_WEBHOOK_TIMEOUT_SECONDS = 1
    create(alice, receiver.url(), ["key.expiring"])
    receiver.hang()
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    assert deliver()["failed"]
    receiver.release()
    row = WebhookDelivery.objects.get()
    assert row.status == DeliveryStatus.PENDING and row.last_error == "Timed out."
    assert row.attempt_log.get().status_code is None


def test_a_redirect_to_a_private_address_is_not_followed(alice, receiver):
    private = FakeReceiver()
    private.start()
    try:
        create(alice, receiver.url(), ["key.expiring"])
        receiver.redirect_to = f"http://169.254.169.254:{private.port}/latest/meta-data/"
        record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
        assert deliver()["failed"]
        assert len(receiver.received) == 1 and private.received == []
        row = WebhookDelivery.objects.get()
        assert (row.status, row.last_status_code, row.last_error) == (DeliveryStatus.PENDING, 307, "Answered 307.")
    finally:
        private.stop()


def test_a_name_resolving_to_loopback_is_refused_at_delivery_when_not_allowed(alice, receiver, settings):
    create(alice, f"http://localhost:{receiver.port}/hook", ["key.expiring"])
    settings.KEEPER_WEBHOOK_ALLOWED_NETWORKS = []  # the operator took the allowance back
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    assert deliver()["failed"]
    assert receiver.received == []
    assert "127.0.0.1, a loopback address" in WebhookDelivery.objects.get().last_error


def test_an_endpoint_failing_every_attempt_is_disabled_with_an_event(alice, receiver, settings):
    settings.KEEPER_WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES = 2
    failing = FakeReceiver()
    failing.status = 503
    failing.start()
    try:
        dead = create(alice, failing.url(), ["key.expiring"])["id"]
        secret = create(alice, receiver.url("/watcher"), ["webhook.disabled"])["secret"]
        with time_machine.travel(timezone.now(), tick=False) as clock:
            for number in range(2):
                record_event("alice", EventType.KEY_EXPIRING, {"key_id": f"k{number}"})
                for wait in (*delivery.RETRY_SCHEDULE, timedelta(0)):
                    deliver()
                    clock.shift(wait)
            endpoint = WebhookEndpoint.objects.get(public_id=dead)
            assert len(failing.received) == 2 * delivery.MAX_ATTEMPTS
            assert not endpoint.enabled and "2 deliveries in a row failed every attempt" in endpoint.disabled_reason
            assert list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == [
                "failed",
                "failed",
            ]
            deliver()
            (notice,) = receiver.received
            assert verify(secret, notice)["data"]["webhook_id"] == dead
        assert Event.objects.filter(type=EventType.WEBHOOK_DISABLED, subject=f"webhook:{dead}").count() == 1
        assert alice.get(f"/webhooks/{dead}").json()["enabled"] is False
        # Events recorded while it is disabled are not queued for it; enabling it starts the count over.
        record_event("alice", EventType.KEY_EXPIRING, {"key_id": "later"})
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2
        enabled = alice.patch(f"/webhooks/{dead}", {"enabled": True}, format="json").json()
        assert (
            enabled["enabled"] is True
            and enabled["disabled_reason"] == ""
            and enabled["failed_deliveries_in_a_row"] == 0
        )
    finally:
        failing.stop()


# --- Rotation, test deliveries, sending again -------------------------------------


def test_after_a_rotation_both_secrets_sign_for_the_grace_period(alice, receiver):
    created = create(alice, receiver.url(), ["key.expiring"])
    rotated = alice.post(f"/webhooks/{created['id']}/rotate_secret")
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    new = rotated.json()["secret"]
    assert new != created["secret"] and rotated.json()["secret_rotated_until"]
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    deliver()
    (received,) = receiver.received
    verify(new, received)
    verify(created["secret"], received)
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k2"})
        deliver()
        later = receiver.received[1]
        verify(new, later)
        with pytest.raises(WebhookVerificationError):
            verify(created["secret"], later)


def test_a_test_event_goes_to_that_endpoint_only(alice, receiver):
    first = create(alice, receiver.url("/first"), ["key.expiring"])
    create(alice, receiver.url("/second"), ["webhook.test"])
    answer = alice.post(f"/webhooks/{first['id']}/test")
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    assert answer.json()["event_type"] == "webhook.test"
    deliver()
    (received,) = receiver.received
    assert received.path == "/first" and verify(first["secret"], received)["type"] == "webhook.test"


def test_deliveries_are_listed_newest_first_and_sent_again_with_the_same_webhook_id(alice, receiver):
    created = create(alice, receiver.url(), ["key.expiring", "key.revoked"])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
        clock.shift(timedelta(seconds=1))
        second = record_event("alice", EventType.KEY_REVOKED, {"key_id": "k1"})
        deliver()
    listed = alice.get(f"/webhooks/{created['id']}/deliveries").json()
    assert [d["event_id"] for d in listed] == [second.public_id, first.public_id]
    assert [d["status"] for d in listed] == ["succeeded", "succeeded"]
    assert listed[0]["attempt_log"][0]["status_code"] == 200
    assert (
        alice.get(f"/webhooks/{created['id']}/deliveries?limit=1&status=succeeded").json()[0]["id"] == listed[0]["id"]
    )
    refused(alice.get(f"/webhooks/{created['id']}/deliveries?status=lost"), 400, "status")
    answer = alice.post(f"/webhooks/{created['id']}/deliveries/{listed[1]['id']}/retry")
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    deliver()
    assert [r.headers["webhook-id"] for r in receiver.received] == [first.public_id, second.public_id, first.public_id]
    verify(created["secret"], receiver.received[-1])
    missing = "dlv_" + "0" * 24
    refused(alice.post(f"/webhooks/{created['id']}/deliveries/{missing}/retry"), 404, missing)


def test_a_disabled_endpoint_sends_no_test_and_no_retry(alice, receiver):
    created = create(alice, receiver.url(), ["key.expiring"])
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    assert alice.patch(f"/webhooks/{created['id']}", {"enabled": False}, format="json").json()["enabled"] is False
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    refused(alice.post(f"/webhooks/{created['id']}/test"), 409, "disabled")
    dlv = WebhookDelivery.objects.get().public_id
    refused(alice.post(f"/webhooks/{created['id']}/deliveries/{dlv}/retry"), 409, "disabled")
    deliver()
    assert receiver.received == []


# --- Claims ----------------------------------------------------------------------


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_expires(alice, receiver):
    create(alice, receiver.url(), ["key.expiring"])
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    now = timezone.now()
    claimed = delivery.claim_next(now)
    assert claimed is not None
    # The first worker died before recording anything: the retry is due at once, but its claim holds.
    assert delivery.claim_next(now + delivery.RETRY_SCHEDULE[0]) is None
    later = now + timedelta(seconds=delivery.lease_seconds() + 1)
    again = delivery.claim_next(later)
    assert again is not None and again[1].number == 2
    assert list(again[0].attempt_log.values_list("number", "outcome")) == [(1, "interrupted"), (2, "sending")]


# --- Secrets never logged, the admin ---------------------------------------------


def test_secrets_are_never_logged(alice, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    created = create(alice, receiver.url(), ["key.expiring"])
    rotated = alice.post(f"/webhooks/{created['id']}/rotate_secret").json()
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    deliver()
    assert len(receiver.received) == 1
    for secret in (created["secret"], rotated["secret"]):
        raw = secret.removeprefix("whsec_")
        assert raw not in caplog.text and raw.rstrip("=")[:20] not in caplog.text


def test_the_admin_shows_deliveries_per_day_and_sends_again(alice, receiver, admin_client, admin_user):
    created = create(alice, receiver.url(), ["key.expiring"])
    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k1"})
    deliver()
    (section,) = [s for s in staff_overview(admin_user) if s["template"] == "admin/events/staff_overview.html"]
    assert section["section"]["totals"][0] == {"label": "succeeded", "count": 1}
    page = admin_client.get("/admin/")
    assert page.status_code == 200 and b"overview-deliveries" in page.content
    row = WebhookDelivery.objects.get()
    answer = admin_client.post(
        "/admin/events/webhookdelivery/", {"action": "retry_deliveries", "_selected_action": [row.pk]}
    )
    assert answer.status_code == 302
    deliver()
    assert len(receiver.received) == 2
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    admin_client.post(
        "/admin/events/webhookendpoint/", {"action": "disable_endpoints", "_selected_action": [endpoint.pk]}
    )
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "in the admin" in endpoint.disabled_reason
    change = admin_client.get(f"/admin/events/webhookendpoint/{endpoint.pk}/change/")
    assert change.status_code == 200 and b"in the admin" in change.content
    assert endpoint.secret_encrypted.encode() not in change.content


def test_listing_deliveries_costs_the_same_queries_for_one_or_many(alice, receiver):
    created = create(alice, receiver.url(), ["key.expiring"])
    receiver.failures = 1  # two attempts for the first delivery

    def counted() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert alice.get(f"/webhooks/{created['id']}/deliveries").status_code == 200
            assert alice.get("/webhooks").status_code == 200
        return len(queries)

    record_event("alice", EventType.KEY_EXPIRING, {"key_id": "k0"})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        deliver()
        clock.shift(delivery.RETRY_SCHEDULE[0])
        deliver()
    counted()  # the key's first use writes its bookkeeping
    one = counted()
    for number in range(1, 5):
        record_event("alice", EventType.KEY_EXPIRING, {"key_id": f"k{number}"})
    deliver()
    assert counted() == one
    assert len(alice.get(f"/webhooks/{created['id']}/deliveries").json()) == 5


def test_one_delivery_run_is_asked_for_per_transaction(alice, receiver, django_capture_on_commit_callbacks):
    create(alice, receiver.url(), ["key.expiring"])
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for number in range(3):
            record_event("alice", EventType.KEY_EXPIRING, {"key_id": f"k{number}"})
    assert len(callbacks) == 1 and WebhookDelivery.objects.count() == 3


def test_the_disabled_event_names_the_url_without_its_query(alice, receiver):
    created = create(alice, receiver.url("/hook?token=receiver-secret"), ["key.expiring"])
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    services.webhook_disable(endpoint, reason="test", notify=True)
    event = Event.objects.get(type=EventType.WEBHOOK_DISABLED)
    assert event.data["url"] == receiver.url("/hook") and "receiver-secret" not in orjson.dumps(event.data).decode()
