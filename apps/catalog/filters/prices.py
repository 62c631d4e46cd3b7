"""FilterSets of the price searches: `/server_prices`, `/storage_prices`, `/traffic_prices`,
`/database_storage_prices`, `/table/server_prices` and `/table/database_price`, with the Spare Cores API's
parameter names, units and defaults.

Each parameter is declared once, with its part in the search (apps/catalog/filters/terms.py): a condition
on a column of the price or of its server, region or storage (`ON_COLUMN`, from `field_name`), on a figure
the search derives (`Derived`), or a field of the search (`Option`: currency, ordering, ...). After
validation, `search()` is the one value object (apps/catalog/price_criteria.py) the selector
(apps/catalog/selectors/prices.py) builds the SQL from. These FilterSets filter no queryset.
"""

import re
from dataclasses import dataclass
from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import serializers

from apps.catalog import choices
from apps.catalog.criteria import COLUMN, VENDOR_FRAMEWORK, Condition
from apps.catalog.filters.places import PlaceFilterSet, regions_filter, vendor_regions_filter
from apps.catalog.filters.servers import MIB_PER_GB, currency_choices
from apps.catalog.filters.terms import (
    BooleanTerm,
    ChoiceTerm,
    Derived,
    FloatTerm,
    IntegerTerm,
    Option,
    RowsTerm,
    ScaledFloatTerm,
    Term,
    TextSearch,
    TextTerm,
    ValuesTerm,
    search_terms,
)
from apps.catalog.filters.times import TimeFilter
from apps.catalog.models import (
    ComplianceFramework,
    DatabasePrice,
    DatabaseStoragePrice,
    ServerPrice,
    StoragePrice,
    TrafficPrice,
    Vendor,
)
from apps.catalog.places import Places
from apps.catalog.price_criteria import (
    DATABASE_STORAGE_PRICE_ORDERS,
    PRICE_IN_CURRENCY,
    REGION,
    SCORE_PER_USD,
    SERVER_PRICE_ORDERS,
    SIZE_WITHIN,
    STORAGE_PRICE_ORDERS,
    TRAFFIC_PRICE_ORDERS,
    PriceSearch,
    PriceTableQuery,
)
from keeper.api.filters import PageFilter, PagingFilterSet, StrictFilterSet


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


@dataclass(frozen=True)
class OnColumn:
    """A condition on the column `field_name` names: the price's own, or one of its server, region or
    storage (`server__vcpus`); compared by `lookup_expr` (a list: "in"), times the filter's `scale`."""

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        relation, _, name = filter_.field_name.rpartition("__")
        model = filter_.model._meta.get_field(relation).related_model if relation else filter_.model
        column = model._meta.get_field(name).column
        if isinstance(value, list | tuple):
            values = tuple(getattr(item, "pk", item) for item in value)
            condition = Condition(relation or COLUMN, "in", values, (column,))
        else:
            scale = getattr(filter_, "scale", None)
            condition = Condition(
                relation or COLUMN, filter_.lookup_expr, (value * scale if scale else value,), (column,)
            )
        terms["conditions"].append(condition)


@dataclass(frozen=True)
class WhenTrue:
    """`true`: a condition that `on`'s boolean `column` is true; `false` filters nothing (as upstream)."""

    on: str
    column: str

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        if value:
            terms["conditions"].append(Condition(self.on, "exact", (True,), (self.column,)))


ON_COLUMN = OnColumn()


class EnumChoiceTerm(Term, EnumChoiceFilter):
    pass


class TimeTerm(Term, TimeFilter):
    pass


def _choices(names: Any) -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(names)]


def _currency(label: str) -> ChoiceTerm:
    return ChoiceTerm(role=Option("currency"), choices=currency_choices, empty_label=None, label=label)


def _allocation() -> EnumChoiceTerm:
    return EnumChoiceTerm(
        role=ON_COLUMN,
        choices=choices.Allocation.choices,
        field_name="allocation",
        label="Allocation: ondemand, reserved or spot (upstream values or stored names, any case).",
    )


def _price_change_since() -> TimeTerm:
    return TimeTerm(
        role=Option("price_change_since"),
        label=(
            "Only prices whose price changed at a sync since this time (RFC 3339 with offset, or a date); "
            "the rows then carry `previous_price`, the price before the first such change."
        ),
    )


def _storage_min() -> FloatTerm:
    return FloatTerm(
        role=Derived(SIZE_WITHIN), label="Storage size needed, in GB: products whose size range includes it."
    )


def _vendor() -> RowsTerm:
    return RowsTerm(
        role=ON_COLUMN,
        field_name="vendor",
        queryset=_vendors,
        to_field_name="vendor_id",
        distinct=False,
        label="Vendor id, e.g. aws.",
    )


class PriceSearchFilterSet(PlaceFilterSet, PagingFilterSet):
    """What every price search takes: vendor, compliance framework, green energy, places, currency,
    ordering and the page. `orders` are the `order_by` values (apps/catalog/price_criteria.py)."""

    orders: dict[str, Any] = {}
    default_limit = 10

    vendor = _vendor()
    compliance_framework = RowsTerm(
        role=Derived(VENDOR_FRAMEWORK),
        queryset=_frameworks,
        to_field_name="compliance_framework_id",
        distinct=False,
        label="Compliance framework implemented by the vendor, e.g. hipaa.",
    )
    green_energy = BooleanTerm(
        role=WhenTrue(REGION, "green_energy"),
        label="true: only regions 100% powered by renewable energy; false (as upstream): no filter.",
    )
    currency = _currency("Currency of the returned prices (default USD); converted at bundled ECB rates.")
    order_dir = ChoiceTerm(
        role=Option("order_dir"),
        choices=[("asc", "asc"), ("desc", "desc")],
        empty_label=None,
        label="Sort direction: asc (default) or desc. Rows without a value come last either way.",
    )

    def search(self) -> PriceSearch:
        """The validated query as the selector's one value object (call after `is_valid()`)."""
        limit, page, count = self.paging
        limit = self.default_limit if limit is None else limit
        return PriceSearch(places=self.places, limit=limit, page=page, count=count, **_terms(self))


def _terms(filterset: StrictFilterSet) -> dict[str, Any]:
    """What the given parameters contribute (the places and the page are read apart: they are no Terms)."""
    terms = search_terms(
        {name: f for name, f in filterset.filters.items() if isinstance(f, Term)}, filterset.form.cleaned_data
    )
    return {**terms, "conditions": tuple(terms["conditions"])}


SERVER_PRICES_MAX_LIMIT = 250


class ServerPriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /server_prices`."""

    defaults = {"vcpus_min": "1", "only_active": "true"}
    default_limit = 25
    orders = SERVER_PRICE_ORDERS

    # Upstream caps this search, whose rows are large (ServerPricePagination documents it).
    limit = PageFilter(
        serializers.IntegerField(required=False, min_value=1, max_value=SERVER_PRICES_MAX_LIMIT), "integer"
    )
    partial_name_or_id = TextTerm(
        role=TextSearch(("server_id", "name", "api_reference", "display_name")),
        max_length=200,
        label="Freetext, case-insensitive search on the server_id, name, api_reference or display_name.",
    )
    vcpus_min = IntegerTerm(
        role=ON_COLUMN,
        field_name="server__vcpus",
        lookup_expr="gte",
        min_value=1,
        max_value=256,
        label="Minimum number of virtual CPUs (1 to 256, default 1).",
    )
    vcpus_max = IntegerTerm(
        role=ON_COLUMN,
        field_name="server__vcpus",
        lookup_expr="lte",
        min_value=1,
        max_value=256,
        label="Maximum number of virtual CPUs (1 to 256).",
    )
    architecture = ValuesTerm(
        role=ON_COLUMN,
        field_name="server__cpu_architecture",
        choices=choices.CpuArchitecture.choices,
        label="Processor architecture: x86_64, arm64, ... (upstream values or stored names, any case).",
    )
    cpu_manufacturer = ValuesTerm(
        role=ON_COLUMN, field_name="server__cpu_manufacturer", label="Processor manufacturer, e.g. AMD."
    )
    cpu_family = ValuesTerm(role=ON_COLUMN, field_name="server__cpu_family", label="Processor family, e.g. Xeon.")
    cpu_allocation = ValuesTerm(
        role=ON_COLUMN,
        field_name="server__cpu_allocation",
        choices=choices.CpuAllocation.choices,
        label="Allocation of the CPU(s) to the server: shared, burstable or dedicated.",
    )
    hw_virt = BooleanTerm(
        role=ON_COLUMN,
        field_name="server__hw_virt",
        label="Only servers with (true) or without (false) hardware virtualization.",
    )
    benchmark_score_stressng_cpu_min = FloatTerm(
        role=ON_COLUMN,
        field_name="server__score",
        lookup_expr="gte",
        label="Minimum stress-ng CPU score (all cores).",
    )
    benchmark_score_per_price_stressng_cpu_min = FloatTerm(
        role=Derived(SCORE_PER_USD),
        lookup_expr="gte",
        label="Minimum stress-ng CPU score (all cores) per USD/hour of this price.",
    )
    memory_min = ScaledFloatTerm(
        role=ON_COLUMN,
        field_name="server__memory_amount",
        lookup_expr="gte",
        scale=MIB_PER_GB,
        label="Minimum memory, in GB.",
    )
    price_max = FloatTerm(
        role=Derived(PRICE_IN_CURRENCY),
        lookup_expr="lte",
        label="Maximum price, in `currency` (default USD) per unit.",
    )
    only_active = BooleanTerm(role=Option("only_active"), label="Only active prices of active servers (default true).")
    allocation = _allocation()
    storage_size = FloatTerm(
        role=ON_COLUMN, field_name="server__storage_size", lookup_expr="gte", label="Minimum built-in storage, in GB."
    )
    storage_type = ValuesTerm(
        role=ON_COLUMN,
        field_name="server__storage_type",
        choices=choices.StorageType.choices,
        label="Built-in storage type: hdd, ssd, nvme ssd, network (or stored names, any case).",
    )
    gpu_min = FloatTerm(
        role=ON_COLUMN,
        field_name="server__accelerator_count",
        lookup_expr="gte",
        label="Minimum number of GPUs (may be fractional).",
    )
    gpu_memory_min = ScaledFloatTerm(
        role=ON_COLUMN,
        field_name="server__accelerator_memory_min",
        lookup_expr="gte",
        scale=MIB_PER_GB,
        label="Minimum memory of the smallest GPU, in GB.",
    )
    gpu_memory_total = ScaledFloatTerm(
        role=ON_COLUMN,
        field_name="server__accelerator_memory_total",
        lookup_expr="gte",
        scale=MIB_PER_GB,
        label="Minimum memory of all GPUs together, in GB.",
    )
    gpu_manufacturer = ValuesTerm(
        role=ON_COLUMN, field_name="server__accelerator_manufacturer", label="GPU manufacturer, e.g. NVIDIA."
    )
    gpu_family = ValuesTerm(role=ON_COLUMN, field_name="server__accelerator_family", label="GPU family.")
    gpu_model = ValuesTerm(role=ON_COLUMN, field_name="server__accelerator_model", label="GPU model.")
    price_change_since = _price_change_since()
    order_by = ChoiceTerm(
        role=Option("order_by"),
        choices=_choices(SERVER_PRICE_ORDERS),
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


class StoragePriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /storage_prices` (active prices only, as upstream)."""

    orders = STORAGE_PRICE_ORDERS

    storage_min = _storage_min()
    storage_type = ValuesTerm(
        role=ON_COLUMN,
        field_name="storage__storage_type",
        choices=choices.StorageType.choices,
        label="Storage type: hdd, ssd, nvme ssd, network (or stored names, any case).",
    )
    order_by = ChoiceTerm(
        role=Option("order_by"),
        choices=_choices(STORAGE_PRICE_ORDERS),
        empty_label=None,
        label=(
            "Sort by price (default) or any column of the price, of its region or of its storage "
            "(price columns first; names its region and storage share are refused)."
        ),
    )

    class Meta:
        model = StoragePrice
        fields: list[str] = []


class TrafficPriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /traffic_prices` (active prices only, as upstream)."""

    defaults = {"direction": choices.TrafficDirection.OUT.value, "monthly_traffic": "1"}
    orders = TRAFFIC_PRICE_ORDERS

    direction = ValuesTerm(
        role=ON_COLUMN,
        field_name="direction",
        choices=choices.TrafficDirection.choices,
        label="Direction of the Internet traffic: inbound or outbound (default outbound; stored names too).",
    )
    monthly_traffic = FloatTerm(
        role=Option("monthly_traffic"),
        min_value=0,
        label="Monthly traffic, in GB (default 1): `price_monthly_traffic` is its cost under the price tiers.",
    )
    order_by = ChoiceTerm(
        role=Option("order_by"),
        choices=_choices(TRAFFIC_PRICE_ORDERS),
        empty_label=None,
        label="Sort by price (default) or any column of the price or of its region (price columns first).",
    )

    class Meta:
        model = TrafficPrice
        fields: list[str] = []


class DatabaseStoragePriceFilterSet(PriceSearchFilterSet):
    """Parameters of `GET /database_storage_prices` (active prices only, as upstream)."""

    orders = DATABASE_STORAGE_PRICE_ORDERS

    storage_min = _storage_min()
    price_change_since = _price_change_since()
    order_by = ChoiceTerm(
        role=Option("order_by"),
        choices=_choices(DATABASE_STORAGE_PRICE_ORDERS),
        empty_label=None,
        label=(
            "Sort by price (default) or any column of the price, of its region or of its database storage "
            "(price columns first; names its region and database storage share are refused)."
        ),
    )

    class Meta:
        model = DatabaseStoragePrice
        fields: list[str] = []


class ServerPriceTableFilterSet(StrictFilterSet):
    """Parameters of `GET /table/server_prices`."""

    defaults = {"only_active": "true"}

    vendor = _vendor()
    region = regions_filter()
    vendor_regions = vendor_regions_filter()
    allocation = _allocation()
    only_active = BooleanTerm(role=Option("only_active"), label="Only active prices (default true).")
    currency = _currency("Convert the prices to this currency (default: each price in its own currency).")

    class Meta:
        model = ServerPrice
        fields: list[str] = []

    def query(self) -> PriceTableQuery:
        """The validated query as the selector's value object (call after `is_valid()`)."""
        data = self.form.cleaned_data
        places = Places(
            regions=tuple(data.get("region") or ()), vendor_regions=Places.pairs(data.get("vendor_regions"))
        )
        return PriceTableQuery(places=places, **_terms(self))


class DatabasePriceTableFilterSet(ServerPriceTableFilterSet):
    """Parameters of `GET /table/database_price`: those of `/table/server_prices`, over the database prices."""

    class Meta:
        model = DatabasePrice
        fields: list[str] = []
