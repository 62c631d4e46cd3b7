from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.catalog import choices
from apps.catalog.models import Watch, WatchSweep


@admin.register(Watch)
class WatchAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "query", "status", "paused_reason", "evaluated_sync", "evaluated_at", "created_at"]
    list_filter = ["status", "owner"]
    search_fields = ["name", "owner", "query"]
    readonly_fields = [
        "owner",
        "query",
        "route",
        "caller",
        "paused_reason",
        "paused_at",
        "evaluated_sync",
        "evaluated_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["rows", "feed_token_hash"]
    actions = ["resume", "pause"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a watch is validated by running it as its owner: created through the API

    @admin.action(description="Resume the selected watches (compared from the next sync on)")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        # The next sweep re-runs them as their owner; one still refused is paused again, saying why.
        count = queryset.filter(status=choices.WatchStatus.PAUSED).update(
            status=choices.WatchStatus.ACTIVE, paused_reason="", paused_at=None, updated_at=timezone.now()
        )
        self.message_user(request, f"{count} watch(es) resumed.", messages.SUCCESS)

    @admin.action(description="Pause the selected watches")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(status=choices.WatchStatus.ACTIVE).update(
            status=choices.WatchStatus.PAUSED,
            paused_reason=f"Paused by {request.user.get_username()} in the admin.",
            paused_at=timezone.now(),
            updated_at=timezone.now(),
        )
        self.message_user(request, f"{count} watch(es) paused.", messages.SUCCESS)


@admin.register(WatchSweep)
class WatchSweepAdmin(admin.ModelAdmin):
    list_display = ["sync_id", "started_at", "finished_at", "evaluated", "changed", "paused", "seconds"]
    readonly_fields = list_display

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
