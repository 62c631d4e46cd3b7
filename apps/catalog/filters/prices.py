"""FilterSets of the price searches: `/server_prices`, `/storage_prices`, `/traffic_prices` and
`/table/server_prices`, with the Spare Cores API's parameter names, units and defaults."""

import re
from typing import Any

import django_filters
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from apps.catalog import choices
from apps.catalog.filters.known import KnownRowsMultipleChoiceFilter
from apps.catalog.filters.places import PlaceFilterSet, Places, regions_filter, vendor_regions_filter
from apps.catalog.filters.servers import MIB_PER_GB, currency_choices
from apps.catalog.filters.times import TimeFilter
from apps.catalog.models import (
    ComplianceFramework,
    Region,
    Server,
    ServerPrice,
    Storage,
    StoragePrice,
    TrafficPrice,
    Vendor,
    VendorComplianceLink,
)
from apps.catalog.selectors.catalog import table_columns
from apps.catalog.selectors.history import prices_changed_since
from apps.catalog.selectors.prices import price_in, score_per_usd_price
from keeper.api.filters import BooleanFilter, FloatFilter, IntegerFilter, MultipleValueFilter, StrictFilterSet

SERVER_DERIVED_ORDERINGS = ["min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly"]


def _vendors(request: Any) -> QuerySet:
    return Vendor.objects.all()


def _frameworks(request: Any) -> QuerySet:
    return ComplianceFramework.objects.all()


class EnumChoiceField(django_filters.fields.ChoiceField):
    """One enum value, spelled as EnumMultipleChoiceField accepts it: as the Spare Cores API does
    (`ondemand`) or as upstream's files store it (`ONDEMAND`), any case."""

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        for stored, label in self.choices:
            stored = str(stored)
            if value.lower() in {spelling.lower() for spelling in (stored, str(label), re.sub(r"\W+", "_", stored))}:
                return stored
        return value


class EnumChoiceFilter(django_filters.ChoiceFilter):
    field_class = EnumChoiceField

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("empty_label", None)
        super().__init__(*args, **kwargs)


def order_columns(*models_and_prefixes: tuple[type, str]) -> dict[str, str]:
    """`order_by` values and the lookups they sort by: the first model's own columns, then the
    columns that only one of the other models has (upstream refuses a name two tables share)."""
    (own, own_prefix), *others = models_and_prefixes
    columns = {column: f"{own_prefix}{column}" for column in table_columns(own)}
    seen: dict[str, int] = {}
    for model, _ in others:
        for column in table_columns(model):
            seen[column] = seen.get(column, 0) + 1
    for model, prefix in others:
        for column in table_columns(model):
            if column not in columns and seen[column] == 1:
                columns[column] = f"{prefix}{column}"
    return columns


def _choices(names: list[str]) -> list[tuple[str, str]]:
    return [(name, name) for name in names]


class PriceSearchFilterSet(PlaceFilterSet):
    """What every price search takes: vendor, compliance framework, green energy, places, currency, ordering.

    `order_lookups` maps each `order_by` value to the lookup it sorts by; prices default to `price`.
    """

    order_lookups: dict[str, str] = {}
    extra_parameters = frozenset({"limit", "page", "add_total_count_header"})

    vendor = KnownRowsMultipleChoiceFilter(
        field_name="vendor",
        queryset=_vendors,
        to_field_name="vendor_id",
        distinct=False,
        label="Vendor id, e.g. aws.",
    )
    compliance_framework = KnownRowsMultipleChoiceFilter(
        queryset=_frameworks,
        to_field_name="compliance_framework_id",
        distinct=False,
        method="filter_compliance_framework",
        label="Compliance framework implemented by the vendor, e.g. hipaa.",
    )
    green_energy = BooleanFilter(
        method="filter_green_energy",
        label="true: only regions 100% powered by renewable energy; false (as upstream): no filter.",
    )
    currency = django_filters.ChoiceFilter(
        choices=currency_choices,
        method="keep",
        empty_label=None,
        label="Currency of the returned prices (default USD); converted at bundled ECB rates.",
    )
    order_dir = django_filters.ChoiceFilter(
        choices=[("asc", "asc"), ("desc", "desc")],
        method="keep",
        empty_label=None,
        label="Sort direction: asc (default) or desc. Rows without a value come last either way.",
    )

    def keep(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        """Parameters that shape the response (read in the view or in `qs`), not the rows."""
        return queryset

    def filter_compliance_framework(self, queryset: QuerySet, name: str, value: list) -> QuerySet:
        if not value:
            return queryset
        vendors = VendorComplianceLink.objects.filter(compliance_framework__in=value).values("vendor_id")
        return queryset.filter(vendor_id__in=vendors)

    def filter_green_energy(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset.filter(region__green_energy=True) if value else queryset

    @property
    def currency_code(self) -> str:
        return self.params.get("currency") or "USD"

    def ordered(self, queryset: QuerySet) -> QuerySet:
        """Sorted by `order_by` (nulls last in both directions), then by id so that pages are stable.

        As upstream, prices sort by their amount in their own currency (a few are in EUR)."""
        name = self.params.get("order_by") or "price"
        descending = self.params.get("order_dir") == "desc"
        key = self.order_key(queryset, name)
        if key is None:
            lookup = self.order_lookups[name]
            key = F(lookup)
            if _nullable(queryset.model, lookup):
                key = key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)
            else:
                key = key.desc() if descending else key.asc()
        else:
            key = key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)
        # Ties in upstream's (stable) sort keep the table's order in both directions: so do these.
        return queryset.order_by(key, "id")

    def order_key(self, queryset: QuerySet, name: str) -> Any:
        """An expression for `order_by` values that are not plain lookups (None for plain ones)."""
        return None

    @property
    def qs(self) -> QuerySet:
        return self.ordered(super().qs)


def _nullable(model: type, lookup: str) -> bool:
    *path, column = lookup.split("__")
    for name in path:
        model = model._meta.get_field(name).related_model
    return model._meta.get_field(column).null


SERVER_PRICE_ORDERS = {
    **order_columns((ServerPrice, ""), (Server, "server__"), (Region, "region__")),
    "price_monthly": "price_monthly",
    **{name: f"server__{name}" for name in [*SERVER_DERIVED_ORDERINGS, "score", "score1"]},
}


# Parameters that narrow the servers (besides the defaults vcpus_min and only_active).
SERVER_PARAMETERS = frozenset(
    {
        "partial_name_or_id",
        "vcpus_max",
        "architecture",
        "cpu_manufacturer",
        "cpu_family",
        "cpu_allocation",
        "hw_virt",
        "benchmark_score_stressng_cpu_min",
        "memory_min",
        "storage_size",
        "storage_type",
        "gpu_min",
        "gpu_memory_min",
        "gpu_memory_total",
        "gpu_manufacturer",
        "gpu_family",
        "gpu_model",
    }
)


# Filters whose conditions are on the price's server: collected and applied together.
SERVER_FILTERS = SERVER_PARAMETERS | {"vcpus_min"}


class _ServerConditions:
    """Stands in for the queryset handed to the server filters, and collects their conditions."""

    def __init__(self) -> None:
        self.q = Q()

    def filter(self, *args: Any, **kwargs: Any) -> "_ServerConditions":
        self.q &= Q(*args, **kwargs)
        return self

    def distinct(self) -> "_ServerConditions":
        return self


def _on_server(condition: Q) -> Q:
    """A condition on prices through `server__` as the same condition on the servers (a price's
    `server_id` is its server's)."""
    rewritten = Q()
    rewritten.connector, rewritten.negated = condition.connector, condition.negated
    for child in condition.children:
        if isinstance(child, Q):
            rewritten.children.append(_on_server(child))
        else:
            lookup, value = child
            rewritten.children.append((lookup.removeprefix("server__"), value))
    return rewritten


class ServerPriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /server_prices`."""

    defaults = {"vcpus_min": "1", "only_active": "true"}
    order_lookups = SERVER_PRICE_ORDERS
    place_country_lookup = "country_id"

    partial_name_or_id = django_filters.CharFilter(
        method="filter_partial_name_or_id",
        max_length=200,
        label="Freetext, case-insensitive search on the server_id, name, api_reference or display_name.",
    )
    vcpus_min = IntegerFilter(
        field_name="server__vcpus",
        lookup_expr="gte",
        min_value=1,
        max_value=256,
        label="Minimum number of virtual CPUs (1 to 256, default 1).",
    )
    vcpus_max = IntegerFilter(
        field_name="server__vcpus",
        lookup_expr="lte",
        min_value=1,
        max_value=256,
        label="Maximum number of virtual CPUs (1 to 256).",
    )
    architecture = MultipleValueFilter(
        field_name="server__cpu_architecture",
        choices=choices.CpuArchitecture.choices,
        label="Processor architecture: x86_64, arm64, ... (upstream values or stored names, any case).",
    )
    cpu_manufacturer = MultipleValueFilter(
        field_name="server__cpu_manufacturer", label="Processor manufacturer, e.g. AMD."
    )
    cpu_family = MultipleValueFilter(field_name="server__cpu_family", label="Processor family, e.g. Xeon.")
    cpu_allocation = MultipleValueFilter(
        field_name="server__cpu_allocation",
        choices=choices.CpuAllocation.choices,
        label="Allocation of the CPU(s) to the server: shared, burstable or dedicated.",
    )
    hw_virt = BooleanFilter(
        field_name="server__hw_virt",
        label="Only servers with (true) or without (false) hardware virtualization.",
    )
    benchmark_score_stressng_cpu_min = FloatFilter(
        field_name="server__score", lookup_expr="gte", label="Minimum stress-ng CPU score (all cores)."
    )
    benchmark_score_per_price_stressng_cpu_min = FloatFilter(
        method="filter_score_per_price",
        label="Minimum stress-ng CPU score (all cores) per USD/hour of this price.",
    )
    memory_min = FloatFilter(method="filter_memory_min", label="Minimum memory, in GB.")
    price_max = FloatFilter(method="filter_price_max", label="Maximum price, in `currency` (default USD) per unit.")
    only_active = BooleanFilter(
        method="filter_only_active", label="Only active prices of active servers (default true)."
    )
    allocation = EnumChoiceFilter(
        choices=choices.Allocation.choices,
        field_name="allocation",
        label="Allocation: ondemand, reserved or spot (upstream values or stored names, any case).",
    )
    storage_size = FloatFilter(
        field_name="server__storage_size", lookup_expr="gte", label="Minimum built-in storage, in GB."
    )
    storage_type = MultipleValueFilter(
        field_name="server__storage_type",
        choices=choices.StorageType.choices,
        label="Built-in storage type: hdd, ssd, nvme ssd, network (or stored names, any case).",
    )
    gpu_min = FloatFilter(
        field_name="server__accelerator_count", lookup_expr="gte", label="Minimum number of GPUs (may be fractional)."
    )
    gpu_memory_min = FloatFilter(method="filter_gpu_memory_min", label="Minimum memory of the smallest GPU, in GB.")
    gpu_memory_total = FloatFilter(
        method="filter_gpu_memory_total", label="Minimum memory of all GPUs together, in GB."
    )
    gpu_manufacturer = MultipleValueFilter(
        field_name="server__accelerator_manufacturer", label="GPU manufacturer, e.g. NVIDIA."
    )
    gpu_family = MultipleValueFilter(field_name="server__accelerator_family", label="GPU family.")
    gpu_model = MultipleValueFilter(field_name="server__accelerator_model", label="GPU model.")
    price_change_since = TimeFilter(
        method="filter_price_change_since",
        label=(
            "Only prices whose price changed at a sync since this time (RFC 3339 with offset, or a date); "
            "the rows then carry `previous_price`, the price before the first such change."
        ),
    )
    order_by = django_filters.ChoiceFilter(
        choices=_choices(sorted({*SERVER_PRICE_ORDERS, "score_per_price"})),
        method="keep",
        empty_label=None,
        label=(
            "Sort by price (default), price_monthly, score, score_per_price (score per USD/hour of the "
            "price), a server's min_price*, or any column of the price, of its server or of its region "
            "(price columns first; names its server and region share are refused). Ordering by score "
            "or score_per_price leaves out servers without a score."
        ),
    )

    class Meta:
        model = ServerPrice
        fields: list[str] = []

    def filter_partial_name_or_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # The server's server_id (the price's own is the same): a condition on the server alone,
        # which the database applies to the servers before joining their prices.
        return queryset.filter(
            Q(server__server_id__icontains=value)
            | Q(server__name__icontains=value)
            | Q(server__api_reference__icontains=value)
            | Q(server__display_name__icontains=value)
        )

    def filter_score_per_price(self, queryset: QuerySet, name: str, value: float | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.alias(score_per_usd=score_per_usd_price()).filter(score_per_usd__gte=value)

    def filter_memory_min(self, queryset: QuerySet, name: str, value: float | None) -> QuerySet:
        return queryset if value is None else queryset.filter(server__memory_amount__gte=value * MIB_PER_GB)

    def filter_gpu_memory_min(self, queryset: QuerySet, name: str, value: float | None) -> QuerySet:
        return queryset if value is None else queryset.filter(server__accelerator_memory_min__gte=value * MIB_PER_GB)

    def filter_gpu_memory_total(self, queryset: QuerySet, name: str, value: float | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(server__accelerator_memory_total__gte=value * MIB_PER_GB)

    def filter_price_max(self, queryset: QuerySet, name: str, value: float | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.alias(price_converted=price_in(self.currency_code)).filter(price_converted__lte=value)

    def filter_price_change_since(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset if value is None else queryset.filter(id__in=prices_changed_since(value))

    def filter_only_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        # The server's status is one of the server conditions (filter_queryset).
        return queryset.filter(status=choices.Status.ACTIVE) if value else queryset

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """The price filters applied; the server filters' conditions collected and applied together
        by `with_servers`, as a join or as EXISTS."""
        conditions = _ServerConditions()
        for name, value in self.form.cleaned_data.items():
            if name in SERVER_FILTERS:
                self.filters[name].filter(conditions, value)
            else:
                queryset = self.filters[name].filter(queryset, value)
        if self.form.cleaned_data.get("only_active"):
            conditions.filter(server__status=choices.Status.ACTIVE)
        return self.with_servers(self.apply_places(queryset), conditions.q)

    def with_servers(self, queryset: QuerySet, condition: Q) -> QuerySet:
        if self.joins_servers(condition):
            return queryset.filter(condition)
        servers = Server.objects.filter(vendor_id=OuterRef("vendor_id"), server_id=OuterRef("server_id"))
        return queryset.filter(Exists(servers.filter(_on_server(condition))))

    def joins_servers(self, condition: Q) -> bool:
        """Whether to join the servers (few match) or to check each price's server with EXISTS (most do).

        SQLite plans without table statistics (the catalog is not ANALYZEd), and with a join it
        starts from the servers and sorts all their prices, even when nearly every server matches.
        With EXISTS it reads the cheapest prices from the price index and stops after a page, which
        is the fast way when most servers match, and the slow way when few do. Measured on the
        sample: vcpus_min=4&memory_min=16 (80% of the servers) 34 ms with EXISTS, 110 ms joined;
        vcpus_min=64 (27%) 315 ms with EXISTS, 32 ms joined. So: the defaults alone are broad;
        sorting by a server column needs the join anyway; otherwise one count decides. (PostgreSQL
        plans with statistics and turns either form into the plan it prefers.)
        """
        order_by = self.params.get("order_by") or "price"
        if order_by == "score_per_price" or self.order_lookups.get(order_by, "").startswith("server__"):
            return True
        if not set(self.data) & SERVER_PARAMETERS and (self.params.get("vcpus_min") or 1) <= 1:
            return False
        counts = Server.objects.aggregate(total=Count("id"), matching=Count("id", filter=_on_server(condition)))
        return counts["matching"] * 2 < counts["total"]

    def order_key(self, queryset: QuerySet, name: str) -> Any:
        if name == "score_per_price":
            return score_per_usd_price()
        return None

    def ordered(self, queryset: QuerySet) -> QuerySet:
        # As upstream: sorting by a score hides the prices of servers without one.
        if (self.params.get("order_by") or "price") in ("score", "score_per_price"):
            queryset = queryset.filter(server__score__isnull=False)
        return super().ordered(queryset)


class StoragePriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /storage_prices` (active prices only, as upstream)."""

    order_lookups = order_columns((StoragePrice, ""), (Region, "region__"), (Storage, "storage__"))

    storage_min = FloatFilter(
        method="filter_storage_min", label="Storage size needed, in GB: products whose size range includes it."
    )
    storage_type = MultipleValueFilter(
        field_name="storage__storage_type",
        choices=choices.StorageType.choices,
        label="Storage type: hdd, ssd, nvme ssd, network (or stored names, any case).",
    )
    order_by = django_filters.ChoiceFilter(
        choices=_choices(sorted(order_lookups)),
        method="keep",
        empty_label=None,
        label=(
            "Sort by price (default) or any column of the price, of its region or of its storage "
            "(price columns first; names its region and storage share are refused)."
        ),
    )

    class Meta:
        model = StoragePrice
        fields: list[str] = []

    def filter_storage_min(self, queryset: QuerySet, name: str, value: float | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(storage__min_size__lte=value, storage__max_size__gte=value)

    @property
    def qs(self) -> QuerySet:
        return super().qs.filter(status=choices.Status.ACTIVE)


class TrafficPriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /traffic_prices` (active prices only, as upstream)."""

    defaults = {"direction": choices.TrafficDirection.OUT.value, "monthly_traffic": "1"}
    order_lookups = order_columns((TrafficPrice, ""), (Region, "region__"))

    direction = MultipleValueFilter(
        field_name="direction",
        choices=choices.TrafficDirection.choices,
        label="Direction of the Internet traffic: inbound or outbound (default outbound; stored names too).",
    )
    monthly_traffic = FloatFilter(
        method="keep",
        min_value=0,
        label="Monthly traffic, in GB (default 1): `price_monthly_traffic` is its cost under the price tiers.",
    )
    order_by = django_filters.ChoiceFilter(
        choices=_choices(sorted(order_lookups)),
        method="keep",
        empty_label=None,
        label="Sort by price (default) or any column of the price or of its region (price columns first).",
    )

    class Meta:
        model = TrafficPrice
        fields: list[str] = []

    @property
    def qs(self) -> QuerySet:
        return super().qs.filter(status=choices.Status.ACTIVE)


class ServerPriceTableFilterSet(StrictFilterSet):
    """Parameters of `GET /table/server_prices`."""

    defaults = {"only_active": "true"}

    vendor = KnownRowsMultipleChoiceFilter(
        field_name="vendor",
        queryset=_vendors,
        to_field_name="vendor_id",
        distinct=False,
        label="Vendor id, e.g. aws.",
    )
    region = regions_filter()
    vendor_regions = vendor_regions_filter()
    allocation = EnumChoiceFilter(
        choices=choices.Allocation.choices,
        field_name="allocation",
        label="Allocation: ondemand, reserved or spot (upstream values or stored names, any case).",
    )
    only_active = BooleanFilter(method="filter_only_active", label="Only active prices (default true).")
    currency = django_filters.ChoiceFilter(
        choices=currency_choices,
        method="keep",
        empty_label=None,
        label="Convert the prices to this currency (default: each price in its own currency).",
    )

    class Meta:
        model = ServerPrice
        fields: list[str] = []

    def keep(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        return queryset

    def filter_only_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset.filter(status=choices.Status.ACTIVE) if value else queryset

    @property
    def qs(self) -> QuerySet:
        data = self.form.cleaned_data
        places = Places(
            regions=tuple(data.get("region") or ()), vendor_regions=Places.pairs(data.get("vendor_regions"))
        )
        return super().qs.filter(places.q()).order_by("id")
