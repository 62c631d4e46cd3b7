"""Events, webhook endpoints and deliveries in the admin. Writes go through keeper.events.services.

A secret is never part of a form, a page, a search or a filter: endpoints are created and rotated through
the API (where the secret is shown once); the admin disables, enables and sends deliveries again.
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from keeper.admin import ReadOnlyAdmin
from keeper.events import services
from keeper.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

SECRET_FIELDS = frozenset({"secret_encrypted", "previous_secret_encrypted"})


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "owner", "subject", "public_id"]
    list_filter = ["type"]
    search_fields = ["public_id", "owner", "subject"]
    date_hierarchy = "created_at"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["public_id", "owner", "url", "enabled", "failing", "created_at"]
    list_filter = ["enabled", "staff"]
    search_fields = ["public_id", "owner", "url", "description"]
    fields = [
        "public_id",
        "owner",
        "staff",
        "url",
        "event_types",
        "description",
        "enabled",
        "disabled_note",
        "failed_deliveries_in_a_row",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    actions = ["disable_endpoints", "enable_endpoints"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, which shows the secret once

    def has_change_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.split("__")[0] in SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="failing", boolean=True)
    def failing(self, obj: WebhookEndpoint) -> bool:
        return not obj.enabled and bool(obj.disabled_reason)

    @admin.display(description="disabled")
    def disabled_note(self, obj: WebhookEndpoint) -> str:
        if obj.enabled:
            return "—"
        since = f"{obj.disabled_at:%Y-%m-%d %H:%M} UTC" if obj.disabled_at else "unknown"
        return format_html("{} (since {})", obj.disabled_reason or "Disabled.", since)

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable_endpoints(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for endpoint in queryset.filter(enabled=True):
            services.webhook_disable(endpoint, reason=f"Disabled by {request.user.get_username()} in the admin.")
            done += 1
        self.message_user(request, f"Disabled {done} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Enable the selected endpoints", permissions=["change"])
    def enable_endpoints(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for endpoint in queryset.filter(enabled=False):
            services.webhook_enable(endpoint)
            done += 1
        self.message_user(request, f"Enabled {done} endpoint(s).", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "outcome", "started_at", "status_code", "duration_ms", "error", "answer_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "endpoint",
        "owner",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "event__type"]
    list_select_related = ["endpoint", "event"]
    search_fields = ["public_id", "endpoint__public_id", "endpoint__owner", "event__public_id"]
    fields = [
        "public_id",
        "endpoint",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["retry_deliveries"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="owner", ordering="endpoint__owner")
    def owner(self, obj: WebhookDelivery) -> str:
        return obj.endpoint.owner

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.action(description="Send the selected deliveries again", permissions=["change"])
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent, skipped = 0, 0
        for delivery in queryset.select_related("endpoint"):
            if not delivery.endpoint.enabled:
                skipped += 1
                continue
            services.delivery_retry(delivery)
            sent += 1
        note = f" ({skipped} skipped: their endpoint is disabled)" if skipped else ""
        self.message_user(request, f"{sent} delivery(ies) will be sent again{note}.", messages.SUCCESS)
