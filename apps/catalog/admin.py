"""The catalog in the admin: read-only (the sync owns the data) with the sync runs."""

from django.contrib import admin

from apps.catalog import models
from keeper.admin import ReadOnlyAdmin


@admin.register(models.Vendor)
class VendorAdmin(ReadOnlyAdmin):
    list_display = ["vendor_id", "name", "country_id", "founding_year", "status"]
    list_filter = ["status"]
    search_fields = ["vendor_id", "name"]


@admin.register(models.Region)
class RegionAdmin(ReadOnlyAdmin):
    list_display = ["vendor_id", "region_id", "display_name", "country_id", "city", "green_energy", "status"]
    list_filter = ["vendor", "status", "green_energy"]
    search_fields = ["region_id", "name", "display_name", "city"]


@admin.register(models.Server)
class ServerAdmin(ReadOnlyAdmin):
    list_display = [
        "vendor_id",
        "server_id",
        "api_reference",
        "vcpus",
        "memory_amount",
        "cpu_architecture",
        "min_price",
        "score",
        "status",
    ]
    list_filter = ["vendor", "status", "cpu_architecture", "cpu_allocation"]
    search_fields = ["server_id", "name", "api_reference", "display_name"]


@admin.register(models.Benchmark)
class BenchmarkAdmin(ReadOnlyAdmin):
    list_display = ["benchmark_id", "name", "framework", "unit", "higher_is_better"]
    search_fields = ["benchmark_id", "name"]


@admin.register(models.SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "started_at", "finished_at", "status", "source", "short_hash", "total_rows"]
    list_filter = ["status"]
    search_fields = ["source", "data_hash", "error"]
    date_hierarchy = "started_at"
    readonly_fields = [
        "started_at",
        "finished_at",
        "status",
        "source",
        "data_hash",
        "schema_version",
        "rows",
        "seconds",
        "error",
    ]

    @admin.display(description="hash")
    def short_hash(self, obj: models.SyncRun) -> str:
        return obj.data_hash[:12]

    @admin.display(description="rows")
    def total_rows(self, obj: models.SyncRun) -> int:
        return sum(obj.rows.values()) if obj.rows else 0
