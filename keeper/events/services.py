"""Recording events, and the webhook endpoints they are delivered to (apps build on keeper/, never the reverse).

Every write is here; the views and the admin call these. Delivery itself is keeper/events/delivery.py.
"""

import base64
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from keeper.api.exceptions import ConflictError
from keeper.events.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from keeper.events.types import STAFF_EVENT_TYPES, EventType
from keeper.outbound import DestinationRefused, OutboundPolicy, check_destination
from keeper.sealing import seal, unseal

logger = logging.getLogger(__name__)

# How long the previous secret keeps signing (beside the new one) after a rotation, so receivers can
# switch without losing a delivery: Standard Webhooks receivers accept any of the signatures sent.
ROTATION_GRACE = timedelta(hours=24)
# The HKDF salt of webhook secrets (keeper/sealing.py): not the signing keys'.
_SEALING_PURPOSE = b"keeper/webhook-secrets"
_SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
DELIVER_TASK = "keeper.events.tasks.deliver_webhooks"


# --- Events -----------------------------------------------------------------------


def record_event(owner: str, type: EventType | str, data: dict[str, Any], *, subject: str = "") -> Event:
    """Record an event for `owner` (a Caller.owner; "" for staff only), in the caller's transaction, with a
    pending delivery to each enabled endpoint that receives it (its owner's, and staff endpoints for staff-only
    events): an outbox, so if the transaction rolls back neither ever existed, and if it commits the
    deliveries are sent by the next delivery run whatever happens to this process."""
    event = Event.objects.create(owner=owner, type=EventType(type), data=data, subject=subject)
    endpoints = WebhookEndpoint.objects.filter(enabled=True)
    endpoints = endpoints.filter(staff=True) if owner == "" else endpoints.filter(owner=owner)
    _queue(event, [endpoint for endpoint in endpoints.only("id", "event_types") if endpoint.receives(event.type)])
    return event


def _queue(event: Event, endpoints: Iterable[WebhookEndpoint]) -> list[WebhookDelivery]:
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=endpoint, event=event, next_attempt_at=now) for endpoint in endpoints]
    )
    if deliveries and not _send_soon_pending():
        transaction.on_commit(_send_soon)
    return deliveries


def _send_soon_pending() -> bool:
    """Whether this transaction already asks for a delivery run on commit: one run sends every delivery it
    queued, so a watch evaluation recording a thousand events sends one task, not a thousand."""
    connection = transaction.get_connection()
    return connection.in_atomic_block and any(entry[1] is _send_soon for entry in connection.run_on_commit)


def _send_soon() -> None:
    """With a Celery broker, a worker sends at once; without one the schedule's next run does (within 5 s)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # never in the request: run_schedule's deliver-webhooks entry sends it
    try:
        # By name, through the project's app (keeper/celery.py, the current one): the task module builds on
        # this one, not the reverse.
        current_app.send_task(DELIVER_TASK)
    except OperationalError as exc:
        logger.warning("Could not queue webhook delivery (beat's next run sends it): %s", exc.__class__.__name__)


def events_prune(now: datetime | None = None) -> int:
    """Delete the events older than KEEPER_EVENTS_DAYS (and their deliveries); how many events."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.KEEPER_EVENTS_DAYS)
    deleted, per_model = Event.objects.filter(created_at__lt=cutoff).delete()
    return per_model.get(Event._meta.label, 0)


# --- Endpoints --------------------------------------------------------------------


def webhook_policy() -> OutboundPolicy:
    """Where webhooks may be sent and how long an attempt may take (KEEPER_WEBHOOK_*)."""
    timeout = float(settings.KEEPER_WEBHOOK_TIMEOUT_SECONDS)
    return OutboundPolicy.of(
        settings.KEEPER_WEBHOOK_ALLOWED_NETWORKS,
        allow_http=settings.KEEPER_WEBHOOK_ALLOW_HTTP,
        connect_timeout=min(5.0, timeout),
        read_timeout=timeout,
        total_timeout=timeout,
    )


def _check_url(url: str) -> None:
    try:
        check_destination(url, webhook_policy())
    except DestinationRefused as exc:
        raise ValidationError({"url": [str(exc)]}) from None


def _check_event_types(event_types: list[str], *, staff: bool) -> list[str]:
    unknown = [name for name in event_types if name not in EventType.values]
    if unknown:
        raise ValidationError({"event_types": [f"Unknown event type {name!r}." for name in unknown]})
    if not staff:
        refused = [name for name in event_types if name in STAFF_EVENT_TYPES]
        if refused:
            raise ValidationError({"event_types": [f"Only staff may receive {name}." for name in refused]})
    return sorted(set(event_types), key=EventType.values.index)


def _new_secret() -> str:
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def _seal(secret: str, endpoint: WebhookEndpoint) -> str:
    return seal(secret.encode(), purpose=_SEALING_PURPOSE, bound_to=endpoint.public_id)


def signing_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets deliveries are signed with now: the current one, and the previous one during its grace.

    Raises keeper.sealing.Unsealable when the current one does not decrypt (KEEPER_TOKEN_KEY_SECRET changed).
    """
    now = now or timezone.now()
    found = [unseal(endpoint.secret_encrypted, purpose=_SEALING_PURPOSE, bound_to=endpoint.public_id).decode()]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and now < expires:
        found.append(
            unseal(endpoint.previous_secret_encrypted, purpose=_SEALING_PURPOSE, bound_to=endpoint.public_id).decode()
        )
    return found


def webhook_create(
    *, owner: str, staff: bool, url: str, event_types: list[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of `owner` and its secret (the only time it is readable)."""
    types = _check_event_types(event_types, staff=staff)
    _check_url(url)
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(owner=owner).count() >= settings.KEEPER_WEBHOOKS_PER_CALLER:
            raise ConflictError(
                f"You have {settings.KEEPER_WEBHOOKS_PER_CALLER} webhook endpoints, the most allowed "
                "(KEEPER_WEBHOOKS_PER_CALLER): delete one first."
            )
        endpoint = WebhookEndpoint(owner=owner, staff=staff, url=url, event_types=types, description=description)
        secret = _new_secret()
        endpoint.secret_encrypted = _seal(secret, endpoint)
        endpoint.save()
    logger.info("Webhook endpoint %s created for %s", endpoint.public_id, owner)
    return endpoint, secret


def webhook_update(endpoint: WebhookEndpoint, *, staff: bool, **changes: Any) -> WebhookEndpoint:
    """Change the url, event types, description or `enabled` (enabling starts the failure count over)."""
    if "url" in changes:
        _check_url(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = _check_event_types(changes["event_types"], staff=staff or endpoint.staff)
    enabled = changes.pop("enabled", None)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes:
        # Only what changed: a delivery being recorded meanwhile updates the failure count.
        endpoint.save(update_fields=[*changes, "updated_at"])
    if enabled is True and not endpoint.enabled:
        webhook_enable(endpoint)
    elif enabled is False and endpoint.enabled:
        webhook_disable(endpoint, reason="Disabled by its owner.")
    return endpoint


def webhook_rotate_secret(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing beside it for ROTATION_GRACE."""
    now = now or timezone.now()
    secret = _new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret_encrypted = _seal(secret, endpoint)
    endpoint.save(update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_secret_expires_at"])
    logger.info("Webhook endpoint %s: secret rotated", endpoint.public_id)
    return endpoint, secret


def webhook_delete(endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries (its events stay)."""
    logger.info("Webhook endpoint %s deleted", endpoint.public_id)
    endpoint.delete()


def webhook_disable(endpoint: WebhookEndpoint, *, reason: str, notify: bool = False) -> WebhookEndpoint:
    """Stop delivering to `endpoint`: its pending deliveries end as failed. `notify`: record webhook.disabled
    (delivered to the owner's other endpoints that receive it)."""
    now = timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            enabled=False, disabled_reason=reason[:300], disabled_at=now
        )
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:300], now
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED,
            finished_at=now,
            next_attempt_at=None,
            claimed_at=None,
            claim_token="",
            last_error="The endpoint was disabled.",
        )
        if notify:
            record_event(
                endpoint.owner,
                EventType.WEBHOOK_DISABLED,
                {"webhook_id": endpoint.public_id, "url": _without_query(endpoint.url), "reason": reason},
                subject=f"webhook:{endpoint.public_id}",
            )
    logger.warning("Webhook endpoint %s disabled: %s", endpoint.public_id, reason)
    return endpoint


def _without_query(url: str) -> str:
    """The URL without its query and fragment, which may carry a receiver's token: events hold no secrets."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def webhook_enable(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, failed_deliveries_in_a_row=0
    )
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
    endpoint.failed_deliveries_in_a_row = 0
    return endpoint


def webhook_send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Record a webhook.test event for the endpoint's owner, delivered to this endpoint only."""
    if not endpoint.enabled:
        raise ConflictError("The endpoint is disabled: enable it first (PATCH enabled=true).")
    with transaction.atomic():
        event = Event.objects.create(
            owner=endpoint.owner,
            type=EventType.WEBHOOK_TEST,
            data={"webhook_id": endpoint.public_id, "message": "A test delivery from Keeper."},
            subject=f"webhook:{endpoint.public_id}",
        )
        (delivery,) = _queue(event, [endpoint])
    return delivery


def delivery_retry(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, whatever its state, with the whole retry schedule ahead of it and the same
    webhook-id (receivers dedupe by it)."""
    if not delivery.endpoint.enabled:
        raise ConflictError("The endpoint is disabled: enable it first (PATCH enabled=true).")
    now = timezone.now()
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, round_attempts=0, next_attempt_at=now, finished_at=None
        )
        transaction.on_commit(_send_soon)
    delivery.refresh_from_db()
    return delivery
