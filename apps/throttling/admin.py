from django.contrib import admin
from django.http import HttpRequest

from apps.throttling import services
from apps.throttling.models import GlobalRateLimit, QuotaUsage, RouteCost


@admin.register(RouteCost)
class RouteCostAdmin(admin.ModelAdmin):
    list_display = ["route", "cost", "updated_at"]
    list_editable = ["cost"]
    search_fields = ["route"]

    def save_model(self, request: HttpRequest, obj: RouteCost, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.route_costs_changed()

    def delete_model(self, request: HttpRequest, obj: RouteCost) -> None:
        super().delete_model(request, obj)
        services.route_costs_changed()


@admin.register(GlobalRateLimit)
class GlobalRateLimitAdmin(admin.ModelAdmin):
    """One row: the bucket over the whole API. Changes apply to the next request in every process."""

    list_display = ["rate_limit", "rate_burst", "updated_at"]

    fields = ["rate_limit", "rate_burst"]

    def save_model(self, request: HttpRequest, obj: GlobalRateLimit, form, change: bool) -> None:
        services.global_limit_update(rate_limit=obj.rate_limit, rate_burst=obj.rate_burst)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not GlobalRateLimit.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(QuotaUsage)
class QuotaUsageAdmin(admin.ModelAdmin):
    """Daily quota counts kept in the database (memory backend, or Redis down). Read-only: deleting
    a row gives that counter its whole quota back for the day."""

    list_display = ["counter", "day", "used"]
    list_filter = ["day"]
    search_fields = ["counter"]
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
