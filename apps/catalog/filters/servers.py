"""FilterSets of the catalog endpoints: the Spare Cores API's parameter names, units and defaults."""

import django_filters
from django.db.models import F, QuerySet

from apps.catalog import choices
from apps.catalog.models import ComplianceFramework, Region, Server, Vendor, VendorComplianceLink
from apps.catalog.pricing import known_currencies
from keeper.api.filters import (
    BooleanFilter,
    FloatFilter,
    IntegerFilter,
    MultipleValueFilter,
    ScaledFloatFilter,
    StrictFilterSet,
)
from keeper.api.pagination import LimitPagePagination

MIB_PER_GB = 1024
KIB_PER_MIB = 1024

PRICE_ORDERINGS = ["min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly"]
DERIVED_ORDERINGS = [*PRICE_ORDERINGS, "score", "score1", "score_per_price"]
# The price column that `best_price_allocation` reports as `price`.
PRICE_BY_ALLOCATION = {
    choices.BestPriceAllocation.ANY: "min_price",
    choices.BestPriceAllocation.SPOT_ONLY: "min_price_spot",
    choices.BestPriceAllocation.ONDEMAND_ONLY: "min_price_ondemand",
    choices.BestPriceAllocation.MONTHLY: "min_price_ondemand_monthly",
}


def _server_columns() -> list[str]:
    derived = set(DERIVED_ORDERINGS)
    return [f.attname for f in Server._meta.concrete_fields if f.attname not in derived and f.attname != "id"]


def _vendors(request) -> QuerySet:
    return Vendor.objects.all()


def _frameworks(request) -> QuerySet:
    return ComplianceFramework.objects.all()


def currency_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in sorted(known_currencies())]


class ServerFilterSet(StrictFilterSet):
    """Parameters of `GET /servers`."""

    defaults = {"vcpus_min": "1", "only_active": "true"}
    extra_parameters = LimitPagePagination.parameters

    partial_name_or_id = django_filters.CharFilter(
        method="filter_partial_name_or_id",
        max_length=200,
        label="Freetext, case-insensitive search on the server_id, name, api_reference or display_name.",
    )
    vcpus_min = IntegerFilter(
        field_name="vcpus",
        lookup_expr="gte",
        min_value=1,
        max_value=256,
        label="Minimum number of virtual CPUs (1 to 256, default 1).",
    )
    vcpus_max = IntegerFilter(
        field_name="vcpus",
        lookup_expr="lte",
        min_value=1,
        max_value=256,
        label="Maximum number of virtual CPUs (1 to 256).",
    )
    architecture = MultipleValueFilter(
        field_name="cpu_architecture",
        choices=choices.CpuArchitecture.choices,
        label="Processor architecture: x86_64, arm64, ... (upstream values or stored names, any case).",
    )
    cpu_manufacturer = MultipleValueFilter(field_name="cpu_manufacturer", label="Processor manufacturer, e.g. AMD.")
    cpu_family = MultipleValueFilter(field_name="cpu_family", label="Processor family, e.g. Xeon.")
    cpu_allocation = MultipleValueFilter(
        field_name="cpu_allocation",
        choices=choices.CpuAllocation.choices,
        label="Allocation of the CPU(s) to the server: shared, burstable or dedicated.",
    )
    cpu_speed_min = FloatFilter(field_name="cpu_speed", lookup_expr="gte", label="Minimum CPU clock speed, in GHz.")
    cpu_l1d_cache_min = IntegerFilter(
        field_name="cpu_l1d_cache", lookup_expr="gte", label="Minimum L1 data cache per core, in KiB."
    )
    cpu_l1d_cache_total_min = IntegerFilter(
        field_name="cpu_l1d_cache_total", lookup_expr="gte", label="Minimum L1 data cache of all cores, in KiB."
    )
    cpu_l1i_cache_min = IntegerFilter(
        field_name="cpu_l1i_cache", lookup_expr="gte", label="Minimum L1 instruction cache per core, in KiB."
    )
    cpu_l1i_cache_total_min = IntegerFilter(
        field_name="cpu_l1i_cache_total",
        lookup_expr="gte",
        label="Minimum L1 instruction cache of all cores, in KiB.",
    )
    cpu_l2_cache_min = IntegerFilter(
        field_name="cpu_l2_cache", lookup_expr="gte", label="Minimum L2 cache per core, in KiB."
    )
    cpu_l2_cache_total_min = IntegerFilter(
        field_name="cpu_l2_cache_total", lookup_expr="gte", label="Minimum L2 cache of all cores, in KiB."
    )
    cpu_l3_cache_min = ScaledFloatFilter(
        field_name="cpu_l3_cache", lookup_expr="gte", scale=KIB_PER_MIB, label="Minimum L3 cache, in MiB."
    )
    cpu_l3_cache_total_min = ScaledFloatFilter(
        field_name="cpu_l3_cache_total",
        lookup_expr="gte",
        scale=KIB_PER_MIB,
        label="Minimum L3 cache of all CPUs, in MiB.",
    )
    hw_virt = BooleanFilter(
        field_name="hw_virt", label="Only servers with (true) or without (false) hardware virtualization."
    )
    memory_min = ScaledFloatFilter(
        field_name="memory_amount", lookup_expr="gte", scale=MIB_PER_GB, label="Minimum memory, in GB."
    )
    network_speed_baseline_min = FloatFilter(
        field_name="network_speed_baseline", lookup_expr="gte", label="Minimum baseline network speed, in Gbps."
    )
    network_speed_max_min = FloatFilter(
        field_name="network_speed_max", lookup_expr="gte", label="Minimum maximum network speed, in Gbps."
    )
    only_active = BooleanFilter(
        method="filter_only_active",
        label="Only active servers with at least one active price (default true).",
    )
    vendor = django_filters.ModelMultipleChoiceFilter(
        field_name="vendor", queryset=_vendors, to_field_name="vendor_id", label="Vendor id, e.g. aws."
    )
    compliance_framework = django_filters.ModelMultipleChoiceFilter(
        queryset=_frameworks,
        to_field_name="compliance_framework_id",
        method="filter_compliance_framework",
        label="Compliance framework implemented by the vendor, e.g. hipaa.",
    )
    storage_size = FloatFilter(field_name="storage_size", lookup_expr="gte", label="Minimum built-in storage, in GB.")
    storage_type = MultipleValueFilter(
        field_name="storage_type",
        choices=choices.StorageType.choices,
        label="Built-in storage type: hdd, ssd, nvme ssd, network (or stored names, any case).",
    )
    gpu_min = FloatFilter(
        field_name="accelerator_count", lookup_expr="gte", label="Minimum number of GPUs (may be fractional)."
    )
    gpu_memory_min = ScaledFloatFilter(
        field_name="accelerator_memory_min",
        lookup_expr="gte",
        scale=MIB_PER_GB,
        label="Minimum memory of the smallest GPU, in GB.",
    )
    gpu_memory_total = ScaledFloatFilter(
        field_name="accelerator_memory_total",
        lookup_expr="gte",
        scale=MIB_PER_GB,
        label="Minimum memory of all GPUs together, in GB.",
    )
    gpu_manufacturer = MultipleValueFilter(
        field_name="accelerator_manufacturer", label="GPU manufacturer, e.g. NVIDIA."
    )
    gpu_family = MultipleValueFilter(field_name="accelerator_family", label="GPU family.")
    gpu_model = MultipleValueFilter(field_name="accelerator_model", label="GPU model.")
    benchmark_score_stressng_cpu_min = FloatFilter(
        field_name="score", lookup_expr="gte", label="Minimum stress-ng CPU score (all cores)."
    )
    benchmark_score_per_price_stressng_cpu_min = FloatFilter(
        field_name="score_per_price",
        lookup_expr="gte",
        label="Minimum stress-ng CPU score per USD/hour of the cheapest price.",
    )
    currency = django_filters.ChoiceFilter(
        choices=currency_choices,
        method="keep",
        empty_label=None,
        label="Currency of the returned prices (default USD); converted at bundled ECB rates.",
    )
    best_price_allocation = django_filters.ChoiceFilter(
        choices=choices.BestPriceAllocation.choices,
        method="filter_best_price_allocation",
        empty_label=None,
        label=(
            "Which cheapest price is reported as `price`: ANY (default), SPOT_ONLY, ONDEMAND_ONLY, or MONTHLY "
            "(on-demand for 730 hours). Servers without such a price are left out."
        ),
    )
    order_by = django_filters.ChoiceFilter(
        choices=[(name, name) for name in [*DERIVED_ORDERINGS, "price", *_server_columns()]],
        method="keep",
        empty_label=None,
        label=(
            "Sort by min_price (default), min_price_spot, min_price_ondemand, min_price_ondemand_monthly, "
            "price, score, score1, score_per_price or any server column. Servers without a value for "
            "a derived column are left out."
        ),
    )
    order_dir = django_filters.ChoiceFilter(
        choices=[("asc", "asc"), ("desc", "desc")],
        method="keep",
        empty_label=None,
        label="Sort direction: asc (default) or desc.",
    )

    class Meta:
        model = Server
        fields: list[str] = []

    def keep(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        """Parameters that shape the response (read in the view), not the rows."""
        return queryset

    def filter_partial_name_or_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.search(value)

    def filter_only_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset.active() if value else queryset

    def filter_compliance_framework(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return queryset
        vendors = VendorComplianceLink.objects.filter(compliance_framework__in=value).values("vendor_id")
        return queryset.filter(vendor_id__in=vendors)

    def filter_best_price_allocation(self, queryset: QuerySet, name: str, value: str | None) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(**{f"{PRICE_BY_ALLOCATION[value]}__isnull": False})

    @property
    def price_column(self) -> str:
        return PRICE_BY_ALLOCATION[self.params.get("best_price_allocation") or choices.BestPriceAllocation.ANY]

    @property
    def qs(self) -> QuerySet:
        queryset = super().qs
        order_by = self.params.get("order_by") or "min_price"
        column = self.price_column if order_by == "price" else order_by
        descending = self.params.get("order_dir") == "desc"
        if column in DERIVED_ORDERINGS:
            # As upstream: ordering by a derived value hides servers that lack it. With no NULLs
            # left, a plain ORDER BY lets PostgreSQL walk the (status, column) index either way.
            queryset = queryset.filter(**{f"{column}__isnull": False})
            key = F(column).desc() if descending else F(column).asc()
        else:
            key = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
        return queryset.order_by(key, "vendor_id", "server_id")


class RegionFilterSet(StrictFilterSet):
    """Parameters of `GET /regions`."""

    vendor = django_filters.ModelMultipleChoiceFilter(
        field_name="vendor", queryset=_vendors, to_field_name="vendor_id", label="Vendor id, e.g. aws."
    )

    class Meta:
        model = Region
        fields: list[str] = []
