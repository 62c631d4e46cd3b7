"""The FilterSet of `GET /databases`, the managed-database search: the newest Spare Cores API's parameter names,
units and defaults.

DatabaseFilterSet declares every parameter once, with its part in the search (filters/terms.py): a condition on
a column of the database (the default), on one of its underlying server (`ON_COLUMN` with `server__...`: only
databases on a known server match then), on a JSON list holding every value asked (`AllInList`), on the selected
benchmark's score (`Derived`), or a field of the search (`Option`). After validation, `search()` is the one
value object (apps/catalog/criteria.py's DatabaseSearch) the selector (apps/catalog/selectors/databases.py)
builds SQL from.
"""

from django.db import models
from django.db.models import QuerySet
from drf_spectacular.drainage import set_override

from apps.catalog import choices
from apps.catalog.criteria import (
    BENCHMARK_ORDERINGS,
    BENCHMARK_SCORE,
    BENCHMARK_SCORE_PER_PRICE,
    DATABASE_DERIVED_ORDERINGS,
    DatabaseSearch,
)
from apps.catalog.filters.known import KnownRowsMultipleChoiceFilter
from apps.catalog.filters.prices import ON_COLUMN, IntegerTerm
from apps.catalog.filters.search import SearchFilterSet
from apps.catalog.filters.servers import MIB_PER_GB, currency_choices
from apps.catalog.filters.terms import (
    AllInList,
    BooleanTerm,
    ChoiceTerm,
    Derived,
    FloatTerm,
    Option,
    RowTerm,
    TextSearch,
    TextTerm,
    Unless,
    ValuesTerm,
)
from apps.catalog.models import Benchmark, Database, Vendor
from apps.catalog.sql import table_columns
from keeper.api.filters import (
    MAX_VALUE_LENGTH,
    BooleanFilter,
    FloatFilter,
    IntegerFilter,
    ScaledFloatFilter,
)

# Upstream's messages, word for word.
BENCHMARK_FILTER_NEEDS_ID = "benchmark_id is required when filtering by benchmark_score or benchmark_score_per_price"
BENCHMARK_ORDER_NEEDS_ID = "benchmark_id is required when ordering by benchmark_score or benchmark_score_per_price"
NEEDS_BENCHMARK = ("benchmark_score_min", "benchmark_score_per_price_min")


def _vendors(request) -> QuerySet:
    return Vendor.objects.all()


def _benchmarks(request) -> QuerySet:
    return Benchmark.objects.all()


def _feature(column: str, what: str) -> BooleanFilter:
    return BooleanFilter(field_name=column, label=f"Only databases that {what} (true) or do not (false).")


def _all_of(column: str, values: type[models.TextChoices], label: str) -> ValuesTerm:
    """A repeatable parameter: the JSON list `column` must hold every value given (of `values`)."""
    term = ValuesTerm(role=AllInList(), field_name=column, choices=values.choices, label=label)
    # The column is JSON: no model field tells drf-spectacular that the values are strings.
    set_override(term, "field", {"type": "string", "enum": list(values.values), "description": label})
    return term


def _order_choices() -> list[tuple[str, str]]:
    names = [*DATABASE_DERIVED_ORDERINGS, *BENCHMARK_ORDERINGS, *table_columns(Database)]
    return [(name, name) for name in dict.fromkeys(names)]


class DatabaseFilterSet(SearchFilterSet):
    """Parameters of `GET /databases`; `search()` hands them to apps/catalog/selectors/databases.py as one
    DatabaseSearch."""

    defaults = {"vcpus_min": "1"}
    search_class = DatabaseSearch
    needs_benchmark = NEEDS_BENCHMARK
    benchmark_filter_message = BENCHMARK_FILTER_NEEDS_ID
    benchmark_order_message = BENCHMARK_ORDER_NEEDS_ID

    partial_name_or_id = TextTerm(
        role=TextSearch(("database_id", "name", "api_reference", "display_name")),
        max_length=MAX_VALUE_LENGTH,
        label="Freetext, case-insensitive search on the database_id, name, api_reference or display_name.",
    )
    engine_version = TextTerm(
        role=AllInList(),
        field_name="engine_versions",
        max_length=MAX_VALUE_LENGTH,
        label="A major engine version the database supports, e.g. 17 (exactly as listed in engine_versions).",
    )
    vcpus_min = IntegerFilter(
        field_name="vcpus",
        lookup_expr="gte",
        min_value=1,
        max_value=256,
        label="Minimum number of virtual CPUs (1 to 256, default 1: databases without a known count are left out).",
    )
    vcpus_max = IntegerFilter(
        field_name="vcpus", lookup_expr="lte", min_value=1, max_value=256, label="Maximum number of virtual CPUs."
    )
    memory_min = ScaledFloatFilter(
        field_name="memory_amount", lookup_expr="gte", scale=MIB_PER_GB, label="Minimum memory, in GB."
    )
    # The underlying server's columns: only databases whose server is in the catalog match these.
    architecture = ValuesTerm(
        role=ON_COLUMN,
        field_name="server__cpu_architecture",
        choices=choices.CpuArchitecture.choices,
        label="Processor architecture of the underlying server: x86_64, arm64, ... (any case).",
    )
    cpu_allocation = ValuesTerm(
        role=ON_COLUMN,
        field_name="server__cpu_allocation",
        choices=choices.CpuAllocation.choices,
        label="CPU allocation of the underlying server: shared, burstable or dedicated.",
    )
    network_speed_baseline_min = FloatTerm(
        role=ON_COLUMN,
        field_name="server__network_speed_baseline",
        lookup_expr="gte",
        label="Minimum baseline network speed of the underlying server, in Gbps.",
    )
    network_speed_max_min = FloatTerm(
        role=ON_COLUMN,
        field_name="server__network_speed_max",
        lookup_expr="gte",
        label="Minimum maximum network speed of the underlying server, in Gbps.",
    )
    network_storage_speed_baseline_min = FloatTerm(
        role=ON_COLUMN,
        field_name="server__network_storage_speed_baseline",
        lookup_expr="gte",
        label="Minimum baseline network speed to block storage of the underlying server, in Gbps.",
    )
    network_storage_speed_max_min = FloatTerm(
        role=ON_COLUMN,
        field_name="server__network_storage_speed_max",
        lookup_expr="gte",
        label="Minimum maximum network speed to block storage of the underlying server, in Gbps.",
    )
    benchmark_id = RowTerm(
        role=Option("benchmark_id"),
        queryset=_benchmarks,
        to_field_name="benchmark_id",
        label=(
            "Benchmark whose best score (per database) is returned as selected_benchmark_score, e.g. "
            "pgbench:heavy_read_only; needed by benchmark_score_min, benchmark_score_per_price_min and the "
            "selected_benchmark_score orderings."
        ),
    )
    benchmark_config = TextTerm(
        role=Option("benchmark_config"),
        max_length=MAX_VALUE_LENGTH,
        label="Only scores of this benchmark configuration, as JSON text.",
    )
    benchmark_score_min = FloatTerm(
        role=Derived(BENCHMARK_SCORE), lookup_expr="gte", label="Minimum score of the selected benchmark."
    )
    benchmark_score_per_price_min = FloatTerm(
        role=Derived(BENCHMARK_SCORE_PER_PRICE),
        lookup_expr="gte",
        label="Minimum score of the selected benchmark per USD/hour of min_price.",
    )
    ha = _all_of(
        "ha",
        choices.DatabaseHaLevel,
        "High-availability levels the database must all support: none, single-zone, multi-zone, multi-region.",
    )
    ha_strategy = _all_of(
        "ha_strategy",
        choices.DatabaseHaStrategy,
        "High-availability strategies the database must all support: none, passive-standby, readable-cluster, "
        "multi-master.",
    )
    max_read_replicas_min = IntegerFilter(
        field_name="max_read_replicas", lookup_expr="gte", label="Minimum number of read replicas."
    )
    continuous_backups_min = IntegerTerm(
        role=Unless(0),
        field_name="continuous_backups",
        lookup_expr="gte",
        label="Minimum point-in-time recovery window, in days (0: no filter).",
    )
    storage_extra_autosize = _feature("storage_extra_autosize", "grow their storage automatically")
    disk_encryption = _feature("disk_encryption", "encrypt their storage at rest")
    scheduled_backups = _feature("scheduled_backups", "support scheduled backups")
    connection_pool = _feature("connection_pool", "offer a managed connection pool")
    system_monitoring = _feature("system_monitoring", "monitor system metrics")
    database_monitoring = _feature("database_monitoring", "monitor database metrics")
    auto_upgrade_versions = _feature("auto_upgrade_versions", "upgrade minor engine versions automatically")
    autotuning_advice = _feature("autotuning_advice", "give tuning advice")
    autotuning_apply = _feature("autotuning_apply", "apply tuning automatically")
    custom_config = _feature("custom_config", "let engine parameters be customized")
    custom_extensions = _feature("custom_extensions", "support custom extensions")
    security_features = _all_of(
        "security_features",
        choices.DatabaseSecurityFeature,
        "Security features the database must all have, e.g. enforced-tls.",
    )
    sla_min = FloatFilter(field_name="sla", lookup_expr="gte", label="Minimum SLA, in percent (e.g. 99.95).")
    only_active = BooleanTerm(
        role=Option("only_active"),
        label="true: only active databases with a price (default: not applied; see only_orderable).",
    )
    only_orderable = BooleanTerm(
        role=Option("only_orderable"),
        label=(
            "Only databases that can be ordered (active or planned for retirement) and have a price "
            "(default true; only_active=true narrows it to active ones)."
        ),
    )
    vendor = KnownRowsMultipleChoiceFilter(
        field_name="vendor", queryset=_vendors, to_field_name="vendor_id", label="Vendor id, e.g. aws."
    )
    storage_size = FloatFilter(field_name="storage_size", lookup_expr="gte", label="Minimum bundled storage, in GB.")
    extra_storage_size = IntegerTerm(
        role=Option("extra_storage_size"),
        min_value=0,
        label=(
            "Storage needed, in GB (default 0: none). Beyond the bundled storage it is billed at the vendor's "
            "cheapest data storage: at least storage_extra_min and the product's minimum size; free when the "
            "bundled storage covers it; databases that cannot grow that large, and vendors without such a "
            "storage price, are left out."
        ),
    )
    currency = ChoiceTerm(
        role=Option("currency"),
        choices=currency_choices,
        empty_label=None,
        label="Currency of the returned prices (default USD); converted at bundled ECB rates.",
    )
    best_price_allocation = ChoiceTerm(
        role=Option("allocation"),
        choices=choices.BestDatabasePriceAllocation.choices,
        empty_label=None,
        label=(
            "Which cheapest price is reported as `price`: ANY (default), ONDEMAND_ONLY, or MONTHLY (on-demand "
            "for 730 hours). Databases without such a price are left out."
        ),
    )
    order_by = ChoiceTerm(
        role=Option("order_by"),
        choices=_order_choices(),
        empty_label=None,
        label=(
            "Sort by min_price (default), min_price_ondemand, min_price_ondemand_monthly, "
            "selected_benchmark_score, selected_benchmark_score_per_price (with benchmark_id), score, score1, "
            "score_per_price (no database has these) or any database column. Databases without a price or "
            "score to sort by are left out."
        ),
    )
    order_dir = ChoiceTerm(
        role=Option("order_dir"),
        choices=[("asc", "asc"), ("desc", "desc")],
        empty_label=None,
        label="Sort direction: asc (default) or desc.",
    )

    class Meta:
        model = Database
        fields: list[str] = []
