import secrets

from django.db import models

from keeper.events.types import EventType


def _event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


class Event(models.Model):
    """Something Keeper tells a caller about: kept KEEPER_EVENTS_DAYS, delivered to matching webhooks.

    `owner` is the local user name of the caller it concerns (Caller.owner; "" for staff-only events);
    `subject` names the thing it is about ("watch:12", "key:34", "sync:5"), so one thing's events are
    read by index.
    """

    public_id = models.CharField(max_length=40, unique=True, default=_event_id, editable=False)
    owner = models.CharField(max_length=200, blank=True, help_text="Local user name of the caller it concerns.")
    type = models.CharField(max_length=40, choices=EventType.choices)
    subject = models.CharField(max_length=100, blank=True, help_text='What it is about, e.g. "watch:12".')
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="event_owner_recent"),
            models.Index(fields=["subject", "-created_at"], name="event_subject_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


def _endpoint_id() -> str:
    return f"wh_{secrets.token_hex(12)}"


def _delivery_id() -> str:
    return f"dlv_{secrets.token_hex(12)}"


class WebhookEndpoint(models.Model):
    """Where a caller's events are POSTed (the Standard Webhooks specification), signed with its secret.

    The secret is stored only sealed (keeper/sealing.py, bound to `public_id`); after a rotation the
    previous one keeps signing beside it until `previous_secret_expires_at` (services.ROTATION_GRACE).
    `staff`: created by a staff caller, so it receives the staff-only events (owner "") too.
    """

    public_id = models.CharField(max_length=40, unique=True, default=_endpoint_id, editable=False)
    owner = models.CharField(max_length=200, help_text="Local user name of the caller who created it.")
    staff = models.BooleanField(default=False, help_text="Created by a staff caller: receives staff-only events.")
    url = models.CharField(max_length=2000)
    event_types = models.JSONField(default=list, help_text="The event types delivered here.")
    description = models.CharField(max_length=500, blank=True)
    secret_encrypted = models.TextField(editable=False, help_text="The signing secret, encrypted. Never shown.")
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, help_text="Why it was disabled.")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failed_deliveries_in_a_row = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="webhook_owner_recent")]

    def __str__(self) -> str:
        return self.public_id

    def receives(self, event_type: str) -> bool:
        return event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (to be sent, or retried)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (every attempt of the retry schedule)"


class WebhookDelivery(models.Model):
    """One event to one endpoint: the outbox row written with the event, sent until it succeeds or the
    retry schedule is spent. `claimed_at`/`claim_token`: the worker sending it now (its claim expires,
    see delivery.lease_seconds, so a killed worker's delivery is taken over)."""

    public_id = models.CharField(max_length=40, unique=True, default=_delivery_id, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since it was created or last sent again by hand: the place in the retry schedule.
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_recent"),
        ]

    def __str__(self) -> str:
        return self.public_id


class AttemptOutcome(models.TextChoices):
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Succeeded (2xx)"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted (the sending process stopped)"


class WebhookAttempt(models.Model):
    """One POST of a delivery, recorded before it is sent (outcome "sending") and completed after, so an
    attempt of a process that died mid-way is shown as interrupted rather than lost."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices, default=AttemptOutcome.SENDING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    answer_excerpt = models.CharField(max_length=300, blank=True, help_text="The first bytes of the answer.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_unique")]

    def __str__(self) -> str:
        return f"{self.delivery} #{self.number}"
