"""FilterSets of the catalog endpoints: the Spare Cores API's parameter names, units and defaults.

ServerFilterSet declares every `/servers` parameter once, with its part in the search (filters/terms.py);
after validation, `search()` is the one value object the selector (selectors/servers.py) builds SQL from.
"""

from functools import lru_cache

from django.db.models import QuerySet

from apps.catalog import choices
from apps.catalog.criteria import (
    BENCHMARK_ORDERINGS,
    BENCHMARK_SCORE,
    BENCHMARK_SCORE_PER_PRICE,
    BENCHMARK_SCORE_PER_VCPU,
    BEST_PRICE,
    DERIVED_ORDERINGS,
    SCORE_PER_PRICE,
    VENDOR_FRAMEWORK,
    ServerSearch,
)
from apps.catalog.filters.known import KnownRowsMultipleChoiceFilter
from apps.catalog.filters.search import SearchFilterSet
from apps.catalog.filters.terms import (
    AllInList,
    BooleanTerm,
    ChoiceTerm,
    Compared,
    Derived,
    FloatTerm,
    IntegerTerm,
    ListLength,
    Option,
    Ratio,
    RowsTerm,
    RowTerm,
    ScaledFloatTerm,
    TextSearch,
    TextTerm,
    Unless,
    ValuesTerm,
)
from apps.catalog.models import Benchmark, ComplianceFramework, Region, Server, Vendor
from apps.catalog.pricing import known_currencies
from apps.catalog.version import catalog_version
from keeper.api.filters import (
    MAX_VALUE_LENGTH,
    BooleanFilter,
    FloatFilter,
    IntegerFilter,
    MultipleValueFilter,
    ScaledFloatFilter,
    StrictFilterSet,
)

MIB_PER_GB = 1024
KIB_PER_MIB = 1024

# The benchmark filters, and the newest Spare Cores API's error when one comes without benchmark_id.
NEEDS_BENCHMARK = (
    "benchmark_score_min",
    "benchmark_score_max",
    "benchmark_score_per_price_min",
    "benchmark_score_per_vcpu_min",
)
NEEDS_BENCHMARK_MESSAGE = (
    "benchmark_id is required when filtering by benchmark_score, benchmark_score_per_price or benchmark_score_per_vcpu"
)


def _server_columns() -> list[str]:
    derived = set(DERIVED_ORDERINGS)
    return [f.attname for f in Server._meta.concrete_fields if f.attname not in derived and f.attname != "id"]


def _vendors(request) -> QuerySet:
    return Vendor.objects.all()


def _frameworks(request) -> QuerySet:
    return ComplianceFramework.objects.all()


def currency_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in sorted(known_currencies())]


def _benchmarks(request) -> QuerySet:
    return Benchmark.objects.all()


@lru_cache(maxsize=4)
def _cpu_flags_of(version: str) -> tuple[str, ...]:
    return _active_cpu_flags()


def _active_cpu_flags() -> tuple[str, ...]:
    flags: set[str] = set()
    for server_flags in Server.objects.filter(status=choices.DatabaseStatus.ACTIVE).values_list("cpu_flags", flat=True):
        flags.update(flag for flag in server_flags or () if isinstance(flag, str))
    return tuple(sorted(flags))


def cpu_flag_choices() -> list[tuple[str, str]]:
    """The CPU flags of the active servers (the newest Spare Cores API's CpuFlags), read once per catalog version."""
    version = catalog_version()
    flags = _active_cpu_flags() if version is None else _cpu_flags_of(version)
    return [(flag, flag) for flag in flags]


class ServerFilterSet(SearchFilterSet):
    """Parameters of `GET /servers`; `search()` hands them to apps/catalog/selectors/servers.py as one ServerSearch."""

    defaults = {"vcpus_min": "1", "only_orderable": "true"}
    search_class = ServerSearch
    needs_benchmark = NEEDS_BENCHMARK
    benchmark_filter_message = NEEDS_BENCHMARK_MESSAGE

    partial_name_or_id = TextTerm(
        role=TextSearch(("server_id", "name", "api_reference", "display_name")),
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
    cpu_hyperthreading = BooleanTerm(
        role=Compared(("vcpus", "cpu_cores"), if_true="gt", if_false="exact"),
        label="Only servers with (true: more vCPUs than CPU cores) or without (false: as many) hyperthreading.",
    )
    cpu_flags = ValuesTerm(
        role=AllInList(),
        field_name="cpu_flags",
        choices=cpu_flag_choices,
        label="CPU flags (those of the active servers, e.g. avx2): only servers with every one of them.",
    )
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
    memory_max = ScaledFloatTerm(
        role=Unless(0),
        field_name="memory_amount",
        lookup_expr="lte",
        scale=MIB_PER_GB,
        min_value=0,
        label="Maximum memory, in GB (0: no maximum).",
    )
    memory_per_vcpu_min = ScaledFloatTerm(
        role=Ratio(("memory_amount", "vcpus")),
        lookup_expr="gte",
        scale=MIB_PER_GB,
        min_value=0,
        label="Minimum memory per vCPU, in GB.",
    )
    memory_per_vcpu_max = ScaledFloatTerm(
        role=Ratio(("memory_amount", "vcpus")),
        lookup_expr="lte",
        scale=MIB_PER_GB,
        min_value=0,
        label="Maximum memory per vCPU, in GB.",
    )
    network_speed_baseline_min = FloatFilter(
        field_name="network_speed_baseline", lookup_expr="gte", label="Minimum baseline network speed, in Gbps."
    )
    network_speed_max_min = FloatFilter(
        field_name="network_speed_max", lookup_expr="gte", label="Minimum maximum network speed, in Gbps."
    )
    only_active = BooleanTerm(
        role=Option("only_active"),
        label="Only active servers with a price (not given by default; true wins over only_orderable).",
    )
    only_orderable = BooleanTerm(
        role=Option("only_orderable"),
        label=(
            "Only orderable servers (active or planned for retirement) with a price (default true); "
            "false with only_active not true: servers of any status."
        ),
    )
    vendor = KnownRowsMultipleChoiceFilter(
        field_name="vendor", queryset=_vendors, to_field_name="vendor_id", label="Vendor id, e.g. aws."
    )
    compliance_framework = RowsTerm(
        role=Derived(VENDOR_FRAMEWORK),
        queryset=_frameworks,
        to_field_name="compliance_framework_id",
        label="Compliance framework implemented by the vendor, e.g. hipaa.",
    )
    storage_size = FloatFilter(field_name="storage_size", lookup_expr="gte", label="Minimum built-in storage, in GB.")
    storage_count_min = IntegerTerm(
        role=ListLength(),
        field_name="storages",
        lookup_expr="gte",
        min_value=0,
        label="Minimum number of built-in storage devices.",
    )
    storage_type = MultipleValueFilter(
        field_name="storage_type",
        choices=choices.StorageType.choices,
        label="Built-in storage type: hdd, ssd, nvme ssd, network (or stored names, any case).",
    )
    gpu_min = FloatFilter(
        field_name="accelerator_count", lookup_expr="gte", label="Minimum number of GPUs (may be fractional)."
    )
    gpu_max = FloatFilter(
        field_name="accelerator_count",
        lookup_expr="lte",
        min_value=0,
        label="Maximum number of GPUs (0: servers without GPUs).",
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
    # Strictly above, as the Spare Cores API compares these two.
    benchmark_score_stressng_cpu_min = FloatFilter(
        field_name="score", lookup_expr="gt", label="Minimum stress-ng CPU score (all cores)."
    )
    benchmark_score_per_price_stressng_cpu_min = FloatTerm(
        role=Derived(SCORE_PER_PRICE),
        lookup_expr="gt",
        label="Minimum stress-ng CPU score per USD/hour of the cheapest price.",
    )
    network_storage_speed_baseline_min = FloatFilter(
        field_name="network_storage_speed_baseline",
        lookup_expr="gte",
        label="Minimum baseline network speed to block storage, in Gbps.",
    )
    network_storage_speed_max_min = FloatFilter(
        field_name="network_storage_speed_max",
        lookup_expr="gte",
        label="Minimum maximum network speed to block storage, in Gbps.",
    )
    benchmark_id = RowTerm(
        role=Option("benchmark_id"),
        queryset=_benchmarks,
        to_field_name="benchmark_id",
        label=(
            "Benchmark whose best score (per server) is returned as selected_benchmark_score, e.g. "
            "stress_ng:bestn; needed by the benchmark_score_* filters and the selected_benchmark_score orderings."
        ),
    )
    benchmark_config = TextTerm(
        role=Option("benchmark_config"),
        max_length=MAX_VALUE_LENGTH,
        label='Only scores of this benchmark configuration, as JSON text, e.g. {"cores": 1}.',
    )
    benchmark_score_min = FloatTerm(
        role=Derived(BENCHMARK_SCORE), lookup_expr="gte", label="Minimum score of the selected benchmark."
    )
    benchmark_score_max = FloatTerm(
        role=Derived(BENCHMARK_SCORE), lookup_expr="lte", label="Maximum score of the selected benchmark."
    )
    benchmark_score_per_price_min = FloatTerm(
        role=Derived(BENCHMARK_SCORE_PER_PRICE),
        lookup_expr="gte",
        label="Minimum score of the selected benchmark per USD/hour of min_price.",
    )
    benchmark_score_per_vcpu_min = FloatTerm(
        role=Derived(BENCHMARK_SCORE_PER_VCPU),
        lookup_expr="gte",
        label="Minimum score of the selected benchmark per vCPU.",
    )
    monthly_inbound_traffic = FloatTerm(
        role=Option("monthly_inbound_traffic"),
        min_value=0,
        label="Monthly inbound traffic, in GB: its cheapest price per vendor is added to every price.",
    )
    monthly_outbound_traffic = FloatTerm(
        role=Option("monthly_outbound_traffic"),
        min_value=0,
        label="Monthly outbound traffic, in GB: its cheapest price per vendor is added to every price.",
    )
    extra_storage_size = FloatTerm(
        role=Option("extra_storage_size"),
        min_value=0,
        label=(
            "Block storage needed beyond the built-in storage, in GB: the vendor's cheapest such storage "
            "is added to every price (servers of vendors without one are left out)."
        ),
    )
    extra_storage_type = ValuesTerm(
        role=Option("extra_storage_type"),
        choices=choices.StorageType.choices,
        label="Types of the extra storage: hdd, ssd, nvme ssd, network.",
    )
    currency = ChoiceTerm(
        role=Option("currency"),
        choices=currency_choices,
        empty_label=None,
        label="Currency of the returned prices (default USD); converted at bundled ECB rates.",
    )
    price_max = FloatTerm(
        role=Derived(BEST_PRICE),
        lookup_expr="lte",
        min_value=0,
        label=(
            "Maximum price, in `currency`: the best price of best_price_allocation with the monthly traffic "
            "and extra storage (per month with MONTHLY, else per hour)."
        ),
    )
    best_price_allocation = ChoiceTerm(
        role=Option("allocation"),
        choices=choices.BestPriceAllocation.choices,
        empty_label=None,
        label=(
            "Which cheapest price is reported as `price`: ANY (default), SPOT_ONLY, ONDEMAND_ONLY, or MONTHLY "
            "(on-demand for 730 hours). Servers without such a price are left out."
        ),
    )
    order_by = ChoiceTerm(
        role=Option("order_by"),
        choices=[(name, name) for name in [*DERIVED_ORDERINGS, *BENCHMARK_ORDERINGS, "price", *_server_columns()]],
        empty_label=None,
        label=(
            "Sort by min_price (default), min_price_spot, min_price_ondemand, min_price_ondemand_monthly, "
            "price, score, score1, score_per_price, selected_benchmark_score, selected_benchmark_score_per_price "
            "(with benchmark_id) or any server column. Servers without a value for a derived column are left out."
        ),
    )
    order_dir = ChoiceTerm(
        role=Option("order_dir"),
        choices=[("asc", "asc"), ("desc", "desc")],
        empty_label=None,
        label="Sort direction: asc (default) or desc.",
    )

    class Meta:
        model = Server
        fields: list[str] = []


class RegionFilterSet(StrictFilterSet):
    """Parameters of `GET /regions`."""

    vendor = KnownRowsMultipleChoiceFilter(
        field_name="vendor", queryset=_vendors, to_field_name="vendor_id", label="Vendor id, e.g. aws."
    )

    class Meta:
        model = Region
        fields: list[str] = []

    @property
    def vendor_ids(self) -> tuple[str, ...]:
        """The validated vendors' ids (none given: every vendor)."""
        return tuple(vendor.pk for vendor in self.form.cleaned_data.get("vendor") or ())
