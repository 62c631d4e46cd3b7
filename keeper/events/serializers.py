from rest_framework import serializers

from keeper.api.serializers import StrictSerializerMixin
from keeper.events.models import AttemptOutcome, DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from keeper.events.types import EventType


class EventSerializer(serializers.ModelSerializer):
    """An event as GET /events (and a watch's events) show it."""

    id = serializers.CharField(source="public_id", help_text='The event\'s id ("evt_..."), its webhook-id.')
    type = serializers.ChoiceField(choices=EventType.choices)

    class Meta:
        model = Event
        fields = ["id", "type", "owner", "subject", "data", "created_at"]


class WebhookSerializer(serializers.ModelSerializer):
    """A webhook endpoint; its secret is never shown here."""

    id = serializers.CharField(source="public_id", help_text='The endpoint\'s id ("wh_...").')
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    secret_rotated_until = serializers.DateTimeField(
        source="previous_secret_expires_at",
        allow_null=True,
        help_text="After a rotation: until when the previous secret also signs deliveries.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "event_types",
            "description",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "owner",
            "failed_deliveries_in_a_row",
            "secret_rotated_until",
            "created_at",
            "updated_at",
        ]


class IssuedWebhookSerializer(WebhookSerializer):
    """A webhook endpoint with its signing secret: answered once, when created or rotated."""

    secret = serializers.CharField(
        help_text="The signing secret (whsec_ + base64 of 32 bytes), shown only now: verify deliveries with it."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookCreateSerializer(StrictSerializerMixin, serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="https:// URL of the receiver (public addresses only).")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        min_length=1,
        max_length=len(EventType.values),
        help_text="The event types to deliver.",
    )
    description = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class WebhookUpdateSerializer(StrictSerializerMixin, serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        min_length=1,
        max_length=len(EventType.values),
        required=False,
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, help_text="false disables it; true enables it again.")


class AttemptSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(choices=AttemptOutcome.choices)

    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "outcome",
            "started_at",
            "finished_at",
            "status_code",
            "duration_ms",
            "error",
            "answer_excerpt",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", help_text='The delivery\'s id ("dlv_...").')
    webhook_id = serializers.CharField(source="endpoint.public_id")
    event_id = serializers.CharField(source="event.public_id", help_text="Sent as the webhook-id header.")
    event_type = serializers.ChoiceField(source="event.type", choices=EventType.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempt_log = AttemptSerializer(many=True, help_text="Every attempt, first first.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
            "attempt_log",
        ]
