"""FilterSets of the catalog history: `/changes`, `/syncs` and `/server/{vendor}/{server}/price_history`.

Their times (apps/catalog/filters/times.py) are RFC 3339 date-times with a UTC offset or dates;
`since` and `until` of `/changes` and `/syncs` also take a sync id.
"""

from datetime import datetime

import django_filters
from django.db.models import QuerySet
from rest_framework import serializers

from apps.catalog import choices
from apps.catalog.criteria import PriceHistoryQuery
from apps.catalog.filters.prices import EnumChoiceFilter
from apps.catalog.filters.servers import currency_choices
from apps.catalog.filters.times import SyncPointFilter, TimeFilter
from apps.catalog.models import CatalogChange, ServerPrice, SyncRun
from keeper.api.filters import MultipleValueFilter, PageFilter, PagingFilterSet, StrictFilterSet

HISTORY_MAX_LIMIT = 1000


class HistoryFilterSet(PagingFilterSet):
    """`since` and `until` (a time or a sync id), over rows with a sync (`sync_lookup`), and the page:
    `limit` 1 to HISTORY_MAX_LIMIT, since the history grows with every sync (no `-1`)."""

    sync_lookup = "sync_id"
    limit = PageFilter(serializers.IntegerField(required=False, min_value=1, max_value=HISTORY_MAX_LIMIT), "integer")

    since = SyncPointFilter(
        method="filter_sync_point",
        label=(
            "Only what syncs loaded after this: a sync id (the syncs after it), or a time (RFC 3339 with offset, "
            "or a date: the syncs finished then or later)."
        ),
    )
    until = SyncPointFilter(
        method="filter_sync_point",
        label="Only what syncs loaded up to this: a sync id (that sync and those before), or a time (finished before).",
    )

    def filter_sync_point(self, queryset: QuerySet, name: str, value: datetime | int | None) -> QuerySet:
        """`since`: after a sync id, or the syncs finished then or later; `until`: up to a sync id, or the
        syncs finished before."""
        if value is None:
            return queryset
        since = name == "since"
        if isinstance(value, int):
            return queryset.filter(**{f"{self.sync_lookup}__{'gt' if since else 'lte'}": value})
        syncs = SyncRun.objects.finished_since(value) if since else SyncRun.objects.finished_before(value)
        return queryset.filter(**{f"{self.sync_lookup}__in": syncs.values("id")})

    @property
    def qs(self) -> QuerySet:
        # Newest first; ids grow with each sync (its records are inserted under the sync's lock).
        return super().qs.order_by("-id")


class ChangeFilterSet(HistoryFilterSet):
    """Parameters of `GET /changes`."""

    table = MultipleValueFilter(
        field_name="table",
        choices=choices.TrackedTable.choices,
        label="Catalog table (repeatable); benchmark_score records each server's best score per benchmark.",
    )
    kind = MultipleValueFilter(
        field_name="kind",
        choices=choices.ChangeKind.choices,
        label="Kind of change (repeatable): added, removed, status (a status changed) or changed (a column).",
    )
    vendor = MultipleValueFilter(field_name="vendor_id", label="Vendor id (repeatable), e.g. aws.")
    server = MultipleValueFilter(field_name="server_id", label="Server id (repeatable), e.g. m5.large.")
    region = MultipleValueFilter(field_name="region_id", label="Region id (repeatable), e.g. us-east-1.")
    field = MultipleValueFilter(field_name="field", label="Changed column (repeatable), e.g. price; status for status.")

    class Meta:
        model = CatalogChange
        fields: list[str] = []


class SyncFilterSet(HistoryFilterSet):
    """Parameters of `GET /syncs`."""

    sync_lookup = "id"

    class Meta:
        model = SyncRun
        fields: list[str] = []

    @property
    def qs(self) -> QuerySet:
        return super().qs.filter(status=choices.SyncStatus.SUCCEEDED)


class PriceHistoryFilterSet(StrictFilterSet):
    """Parameters of `GET /server/{vendor}/{server}/price_history` (the selector reads them; USD unless
    `currency` is given)."""

    regions = MultipleValueFilter(method="keep", label="Region id (repeatable): only the prices in these regions.")
    countries = MultipleValueFilter(
        method="keep", label="Country (ISO 3166-1 alpha-2, repeatable): only the prices in regions there."
    )
    allocation = EnumChoiceFilter(
        choices=choices.Allocation.choices,
        method="keep",
        label="Allocation: ondemand, reserved or spot (upstream values or stored names, any case).",
    )
    currency = django_filters.ChoiceFilter(
        choices=currency_choices,
        method="keep",
        empty_label=None,
        label="Currency of the prices (default USD); converted at bundled ECB rates.",
    )
    since = TimeFilter(
        method="keep",
        label="Only the prices in effect at or after this time (RFC 3339 with offset, or a date).",
    )

    class Meta:
        model = ServerPrice
        fields: list[str] = []

    def keep(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        return queryset

    @property
    def query(self) -> PriceHistoryQuery:
        params = self.params
        return PriceHistoryQuery(
            regions=tuple(params.get("regions") or ()),
            countries=tuple(params.get("countries") or ()),
            allocation=params.get("allocation") or None,
            since=params.get("since"),
            currency=params.get("currency") or "USD",
        )
