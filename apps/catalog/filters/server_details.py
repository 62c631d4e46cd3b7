"""FilterSets of one server's resources: `/server/{vendor}/{server}/prices` and
`/server/{vendor}/{server}/similar_servers/{by}/{num}`, with the Spare Cores API's parameter names.

Both take `countries` and `vendor_regions` (the prices' places) with upstream's limit for anonymous
callers (at most 1 country and 3 regions per request, 400 naming the parameter), and `currency`.
"""

import json
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import ChoiceField

from apps.catalog import choices
from apps.catalog.filters.places import PlaceFilterSet
from apps.catalog.filters.servers import currency_choices
from apps.catalog.models import Benchmark, Region, Server, ServerPrice


def _region_ids() -> list[tuple[str, str]]:
    return [(region, region) for region in Region.objects.order_by("region_id").values_list("region_id", flat=True)]


def _benchmark_ids() -> list[tuple[str, str]]:
    return [(benchmark, benchmark) for benchmark in Benchmark.objects.values_list("benchmark_id", flat=True)]


class CatalogChoiceField(ChoiceField):
    """One value that must exist in the loaded catalog: checked with one query, only when given.

    `choices` is a callable (read again for the OpenAPI enum whenever the schema is generated).
    """

    def valid_value(self, value: Any) -> bool:
        return any(str(value) == str(known) for known, _ in self.choices)


class CatalogChoiceFilter(django_filters.ChoiceFilter):
    field_class = CatalogChoiceField

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("empty_label", None)
        kwargs.setdefault("method", "keep")
        super().__init__(*args, **kwargs)


class JSONObjectField(forms.CharField):
    """A configuration as JSON text, e.g. `{"cores": 1}`: decoded when it is a JSON object.

    Other text is kept as it is: like upstream, which compares the text, it then matches no
    configuration (upstream's configurations are all JSON objects), where a 400 would refuse
    what the parameter's schema (any string) allows.
    """

    def to_python(self, value: Any) -> dict[str, Any] | str | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        return parsed if isinstance(parsed, dict) else text


class JSONObjectFilter(django_filters.CharFilter):
    field_class = JSONObjectField


class ServerPlacesFilterSet(PlaceFilterSet):
    """`countries`, `vendor_regions` and `currency`, with upstream's limit for anonymous callers.

    No `defaults`: the properties below fall back to them, so that a query without parameters
    validates no field (a choice field costs a copy of its choices per request)."""

    # The selectors read the places (they narrow one server's prices, or the prices a ranking uses).
    place_lookup_prefix = None
    limit_anonymous_places = True

    regions = None
    currency = django_filters.ChoiceFilter(
        choices=currency_choices,
        method="keep",
        empty_label=None,
        label="Currency of the returned prices (default USD); converted at bundled ECB rates.",
    )

    def keep(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        """Parameters read by the view and its selector: these FilterSets validate, they do not filter."""
        return queryset

    @property
    def currency_code(self) -> str:
        return self.params.get("currency") or "USD"


class ServerPricesFilterSet(ServerPlacesFilterSet):
    """Parameters of `GET /server/{vendor}/{server}/prices` (the selector reads the rows)."""

    class Meta:
        model = ServerPrice
        fields: list[str] = []


class SimilarServersFilterSet(ServerPlacesFilterSet):
    """Parameters of `GET /server/{vendor}/{server}/similar_servers/{by}/{num}` (they shape the ranking)."""

    server_region = CatalogChoiceFilter(
        choices=_region_ids,
        label=(
            "Region of the given server whose prices make its score per price, for the *_per_price "
            "rankings (default: its cheapest price anywhere)."
        ),
    )
    best_price_allocation = django_filters.ChoiceFilter(
        choices=choices.BestPriceAllocation.choices,
        method="keep",
        empty_label=None,
        label=(
            "Which cheapest price the *_per_price rankings and `score_per_price` divide by: ANY (default), "
            "SPOT_ONLY, ONDEMAND_ONLY, or MONTHLY (on-demand for 730 hours)."
        ),
    )
    benchmark_id = CatalogChoiceFilter(
        choices=_benchmark_ids,
        label=(
            "Benchmark whose (best) score ranks the benchmark_score kinds and is reported as "
            "`selected_benchmark_score`; needs an authenticated caller."
        ),
    )
    benchmark_config = JSONObjectFilter(
        method="keep",
        max_length=1000,
        label=(
            "Only the scores of this benchmark configuration, a JSON object as /benchmark_configs lists it, "
            'e.g. {"cores": 1} (compared as JSON; any other text matches no configuration).'
        ),
    )

    class Meta:
        model = Server
        fields: list[str] = []

    @property
    def price_column(self) -> str:
        """The server column (and live-price column) the *_per_price values divide by."""
        return choices.BEST_PRICE_COLUMN[self.params.get("best_price_allocation") or choices.BestPriceAllocation.ANY]
