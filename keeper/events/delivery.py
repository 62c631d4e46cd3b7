"""Sending webhook deliveries (the Standard Webhooks specification): claimed with a lease, at least once.

- A delivery is due when pending and its `next_attempt_at` has come. A worker claims it with one
  conditional UPDATE (due, and unclaimed or claimed longer than `lease_seconds()` ago), so two workers
  never send the same attempt at once, and the claim of a worker that died expires.
- The attempt is written (outcome "sending") and the next try scheduled in the same statement as the
  claim, before the POST: a worker killed mid-way leaves a claim that expires, an attempt that the next
  claimant marks interrupted, and the delivery due again. Nothing recorded is lost; a receiver may get
  the same delivery twice (at least once), always with the same webhook-id, so it can drop duplicates.
- Attempt n+1 is RETRY_SCHEDULE[n-1] after attempt n started; after the last one the delivery failed.
  KEEPER_WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES failed deliveries in a row (no success between)
  disable the endpoint, with a webhook.disabled event.
"""

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from keeper.events.models import AttemptOutcome, DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from keeper.events.services import signing_secrets, webhook_disable, webhook_policy
from keeper.outbound import Answer, GuardedSession
from keeper.sealing import Unsealable

logger = logging.getLogger(__name__)

# The wait before each retry: 8 attempts over about 28 hours.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
# At most this much of an answer is kept with its attempt.
EXCERPT_CHARS = 300
USER_AGENT = "Keeper-Webhooks/1"


def lease_seconds() -> float:
    """How long a claim holds: longer than an attempt can take (connect, answer, the bounded read)."""
    return 2 * settings.KEEPER_WEBHOOK_TIMEOUT_SECONDS + 5.0


def envelope(event: Event) -> bytes:
    """The body POSTed for `event`: {"type", "timestamp", "data"} (the same bytes on every attempt)."""
    stamp = event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event.type, "timestamp": stamp, "data": event.data})


def signed_headers(message_id: str, body: bytes, secrets_: list[str], now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1,` signature per secret (two during a rotation's grace)."""
    signature = " ".join(Webhook(secret).sign(message_id, now, body) for secret in secrets_)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


@dataclass
class DeliveryRun:
    """What one run of `deliver_due` did."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # attempts that failed (the delivery may be retried)

    def as_dict(self) -> dict[str, list[str]]:
        return {"succeeded": self.succeeded, "failed": self.failed}


def _due(now: datetime) -> Q:
    expired = now - timedelta(seconds=lease_seconds())
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=expired)
    )


def claim_next(now: datetime | None = None) -> tuple[WebhookDelivery, WebhookAttempt] | None:
    """Claim the most overdue delivery and start its next attempt; None when nothing is due."""
    while True:
        now = now or timezone.now()
        due = _due(now)
        candidate = (
            WebhookDelivery.objects.filter(due).order_by("next_attempt_at", "id").values_list("id", flat=True).first()
        )
        if candidate is None:
            return None
        token = secrets.token_hex(16)
        with transaction.atomic():
            # Conditional: another worker may have claimed it since it was read (then look again).
            claimed = WebhookDelivery.objects.filter(due, pk=candidate).update(
                claimed_at=now, claim_token=token, attempts=F("attempts") + 1, round_attempts=F("round_attempts") + 1
            )
            if not claimed:
                now = None
                continue
            delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=candidate)
            # Attempts left "sending" were a dead worker's (the claim it held has expired).
            delivery.attempt_log.filter(outcome=AttemptOutcome.SENDING).update(
                outcome=AttemptOutcome.INTERRUPTED,
                finished_at=now,
                error="The process sending it stopped before it was answered (it may have been received).",
            )
            if delivery.round_attempts < MAX_ATTEMPTS:
                delivery.next_attempt_at = now + RETRY_SCHEDULE[delivery.round_attempts - 1]
            else:
                delivery.next_attempt_at = now + timedelta(seconds=lease_seconds())  # the last: only if it died
            WebhookDelivery.objects.filter(pk=candidate).update(next_attempt_at=delivery.next_attempt_at)
            attempt = WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now)
        return delivery, attempt


def send(delivery: WebhookDelivery, session: GuardedSession, now: datetime | None = None) -> Answer:
    """POST the delivery's event to its endpoint, signed; never raises for what the receiver does."""
    endpoint, event = delivery.endpoint, delivery.event
    now = now or timezone.now()
    try:
        keys = signing_secrets(endpoint, now)
    except Unsealable:
        logger.error("Webhook endpoint %s: its secret does not decrypt with KEEPER_TOKEN_KEY_SECRET", endpoint)
        return Answer(
            None,
            0.0,
            error="The signing secret does not decrypt (was KEEPER_TOKEN_KEY_SECRET changed?): "
            "rotate the endpoint's secret.",
        )
    body = envelope(event)
    return session.post(endpoint.url, body, signed_headers(event.public_id, body, keys, now))


def record(delivery: WebhookDelivery, attempt: WebhookAttempt, answer: Answer) -> None:
    """Complete the attempt; settle the delivery (if this worker still holds it) and the endpoint's count."""
    now = timezone.now()
    excerpt = answer.excerpt.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    error = answer.error or ("" if answer.succeeded else f"Answered {answer.status}.")
    with transaction.atomic():
        WebhookAttempt.objects.filter(pk=attempt.pk).update(
            outcome=AttemptOutcome.SUCCEEDED if answer.succeeded else AttemptOutcome.FAILED,
            finished_at=now,
            status_code=answer.status,
            duration_ms=int(answer.seconds * 1000),
            error=error[:300],
            answer_excerpt=excerpt,
        )
        mine = WebhookDelivery.objects.filter(pk=delivery.pk, claim_token=delivery.claim_token)
        settled = {"claimed_at": None, "claim_token": "", "last_status_code": answer.status, "last_error": error[:300]}
        endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
        if answer.succeeded:
            if mine.update(status=DeliveryStatus.SUCCEEDED, finished_at=now, next_attempt_at=None, **settled):
                endpoints.update(failed_deliveries_in_a_row=0)
        elif delivery.round_attempts >= MAX_ATTEMPTS:
            if mine.update(status=DeliveryStatus.FAILED, finished_at=now, next_attempt_at=None, **settled):
                endpoints.update(failed_deliveries_in_a_row=F("failed_deliveries_in_a_row") + 1)
                _disable_if_failing(delivery.endpoint_id)
        else:
            mine.update(**settled)


def _disable_if_failing(endpoint_id: int) -> None:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    limit = settings.KEEPER_WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES
    if endpoint.enabled and endpoint.failed_deliveries_in_a_row >= limit:
        webhook_disable(
            endpoint,
            reason=f"Disabled after {endpoint.failed_deliveries_in_a_row} deliveries in a row failed every attempt "
            f"({MAX_ATTEMPTS} each, over about a day).",
            notify=True,
        )


def deliver_due(*, max_seconds: float = 240.0, clock=time.monotonic) -> DeliveryRun:
    """Send due deliveries one at a time until none is due or `max_seconds` have passed."""
    run = DeliveryRun()
    session = GuardedSession(webhook_policy())
    started = clock()
    try:
        while clock() - started < max_seconds:
            claimed = claim_next()
            if claimed is None:
                break
            delivery, attempt = claimed
            answer = send(delivery, session)
            record(delivery, attempt, answer)
            (run.succeeded if answer.succeeded else run.failed).append(delivery.public_id)
    finally:
        session.close()
    return run
