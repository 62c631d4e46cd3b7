"""The catalog in the admin: read-only (the sync owns the data) with the sync runs and their changes."""

import math
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.catalog import choices, models
from apps.catalog.selectors.history import cheapest_price_steps
from keeper.admin import ReadOnlyAdmin
from keeper.charts import ChartGeometry


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
    # With the chart of its cheapest on-demand and spot price over time (templates/admin/catalog/server/).
    change_form_template = "admin/catalog/server/change_form.html"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        server = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if server is not None:
            context["price_chart"] = price_chart(
                cheapest_price_steps(vendor_id=server.vendor_id, server_id=server.server_id)
            )
            context["price_changes_url"] = (
                reverse("admin:catalog_catalogchange_changelist", current_app=self.admin_site.name)
                + f"?vendor_id={server.vendor_id}&server_id={server.server_id}"
            )
        return super().change_view(request, object_id, form_url, context)


@admin.register(models.Database)
class DatabaseAdmin(ReadOnlyAdmin):
    list_display = [
        "vendor_id",
        "database_id",
        "api_reference",
        "engine",
        "vcpus",
        "memory_amount",
        "server_id",
        "min_price",
        "min_price_ondemand_monthly",
        "status",
    ]
    list_filter = ["vendor", "status", "engine"]
    search_fields = ["database_id", "name", "api_reference", "display_name"]


@admin.register(models.DatabasePrice)
class DatabasePriceAdmin(ReadOnlyAdmin):
    list_display = [
        "vendor_id",
        "database_id",
        "region_id",
        "allocation",
        "ha",
        "ha_strategy",
        "unit",
        "price",
        "currency",
        "status",
    ]
    list_filter = ["vendor", "status", "ha", "ha_strategy"]
    search_fields = ["database_id", "region_id"]


@admin.register(models.DatabaseStorage)
class DatabaseStorageAdmin(ReadOnlyAdmin):
    list_display = ["vendor_id", "database_storage_id", "name", "scope", "min_size", "max_size", "status"]
    list_filter = ["vendor", "scope", "status"]
    search_fields = ["database_storage_id", "name"]


@admin.register(models.DatabaseStoragePrice)
class DatabaseStoragePriceAdmin(ReadOnlyAdmin):
    list_display = ["vendor_id", "database_storage_id", "region_id", "unit", "price", "currency", "status"]
    list_filter = ["vendor", "status"]
    search_fields = ["database_storage_id", "region_id"]


@admin.register(models.Benchmark)
class BenchmarkAdmin(ReadOnlyAdmin):
    list_display = ["benchmark_id", "name", "framework", "unit", "higher_is_better"]
    search_fields = ["benchmark_id", "name"]


@admin.register(models.SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "started_at", "finished_at", "status", "source", "short_hash", "total_rows", "total_changes"]
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
        "change_counts",
        "error",
    ]

    @admin.display(description="hash")
    def short_hash(self, obj: models.SyncRun) -> str:
        return obj.data_hash[:12]

    @admin.display(description="rows")
    def total_rows(self, obj: models.SyncRun) -> int:
        return sum(obj.rows.values()) if obj.rows else 0

    @admin.display(description="changes")
    def total_changes(self, obj: models.SyncRun) -> Any:
        if obj.changes is None:
            return "-"
        total = sum(sum(kinds.values()) for kinds in obj.changes.values())
        return format_html('<a href="{}">{}</a>', _changes_url(obj), f"{total:,}")

    @admin.display(description="changes")
    def change_counts(self, obj: models.SyncRun) -> Any:
        if obj.changes is None:
            return "Nothing compared (the first sync, or the history off)."
        if not obj.changes:
            return "No change."
        kinds = list(choices.ChangeKind)
        header = format_html_join("", "<th>{}</th>", ((kind.label,) for kind in kinds))
        rows = format_html_join(
            "",
            "<tr><td>{}</td>{}</tr>",
            (
                (table, format_html_join("", "<td>{}</td>", ((counts.get(kind.value, 0),) for kind in kinds)))
                for table, counts in obj.changes.items()
            ),
        )
        return format_html(
            '<table><tr><th>table</th>{}</tr>{}</table><p><a href="{}">The changes</a></p>',
            header,
            rows,
            _changes_url(obj),
        )


def _changes_url(run: models.SyncRun) -> str:
    return reverse("admin:catalog_catalogchange_changelist") + f"?sync__id__exact={run.pk}"


@admin.register(models.CatalogChange)
class CatalogChangeAdmin(ReadOnlyAdmin):
    list_display = ["id", "sync_id", "synced_at", "table", "kind", "row_key", "field", "old", "new", "currency"]
    list_filter = ["table", "kind"]
    search_fields = ["vendor_id", "server_id", "region_id", "field"]
    list_select_related = ["sync"]

    @admin.display(description="time", ordering="sync__finished_at")
    def synced_at(self, obj: models.CatalogChange) -> datetime | None:
        return obj.sync.finished_at

    @admin.display(description="key")
    def row_key(self, obj: models.CatalogChange) -> str:
        return " / ".join(obj.key.values())


# --- the price chart of a server --------------------------------------------------------------------------

CHART_COLORS = {choices.Allocation.ONDEMAND: "#417690", choices.Allocation.SPOT: "#e0a800"}


def _price_step(peak: float, steps: int = 4) -> float:
    """A round tick interval for prices (0.005, 0.01, 0.02, 0.05, ...)."""
    raw = peak / steps if peak > 0 else 0.01
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def price_chart(
    steps: dict[str, list[tuple[datetime, datetime | None, float]]], *, now: datetime | None = None
) -> dict[str, Any]:
    """An SVG line chart's coordinates: the cheapest on-demand and spot price (USD/hour) over time, as
    steps. Drawn on the server like the key usage chart (keeper/charts.py): no library, no CDN."""
    now = now or timezone.now()
    points = [step for allocation_steps in steps.values() for step in allocation_steps]
    g = ChartGeometry()
    if not points:
        return {"lines": [], "geometry": g}
    first = min(start for start, _, _ in points)
    span = max((now - first).total_seconds(), 1.0)
    peak = max(price for _, _, price in points)
    tick = _price_step(peak)
    top = tick * max(1, math.ceil(peak / tick - 1e-9))

    def x(moment: datetime) -> float:
        return g.left + (moment - first).total_seconds() / span * g.plot_width

    def y(price: float) -> float:
        return g.baseline - price / top * g.plot_height

    lines = []
    for allocation, allocation_steps in steps.items():
        if not allocation_steps:
            continue
        coordinates = []
        for start, end, price in allocation_steps:
            coordinates += [(x(start), y(price)), (x(end or now), y(price))]
        lines.append(
            {
                "allocation": allocation,
                "color": CHART_COLORS.get(allocation, "#666"),
                "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in coordinates),
                "title": "; ".join(f"{start:%Y-%m-%d}: {price:g}" for start, _end, price in allocation_steps),
            }
        )
    ticks = []
    count = round(top / tick)
    for index in range(count + 1):
        value = tick * index
        ticks.append({"y": f"{y(value):.1f}", "label": f"{value:.4g}"})
    labels = []
    for index in range(5):
        moment = first + (now - first) * index / 4
        anchor = "start" if index == 0 else "end" if index == 4 else "middle"  # the ends stay inside
        labels.append({"x": f"{x(moment):.1f}", "text": f"{moment:%Y-%m-%d}", "anchor": anchor})
    legend = [
        {"x": g.left + 160 * index, "fill": line["color"], "label": f"cheapest {line['allocation']}"}
        for index, line in enumerate(lines)
    ]
    return {
        "lines": lines,
        "ticks": ticks,
        "labels": labels,
        "legend": legend,
        "geometry": g,
        "first": first,
        "last": now,
    }


# The watches' admin (apps/catalog/watches/admin.py), registered on import.
from apps.catalog.watches import admin as watches_admin  # noqa: E402, F401
