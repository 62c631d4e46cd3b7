"""Where a price is: the `regions`, `vendor_regions` and `countries` filters, shared by every search.

Public API (everything else here is private):

- `PlaceFilterSet`: a StrictFilterSet declaring the three filters. Subclass it (instead of
  StrictFilterSet) to get them, labelled for the docs and validated against the loaded catalog
  (an unknown region, a malformed or unknown `vendor~region`, an unknown country: 400 naming the
  parameter). Two class attributes choose what it does with them:
  - `place_lookup_prefix` (default `""`): `""` means the FilterSet's rows are prices (ServerPrice,
    StoragePrice, TrafficPrice) and `places.q()` is applied to them; `None` means "do not filter,
    I read `self.places` myself" (e.g. `/servers`, which restricts a price subquery, not the
    servers). Another value is a lookup path to a single-valued relation holding the price columns.
  - `place_country_lookup` (default `"region__country_id"`): from the price rows to their country;
    ServerPrice stores its country (`"country_id"`), which spares the join.
  - `limit_anonymous_places` (default False): apply the upstream rule that anonymous callers give
    at most MAX_ANONYMOUS_COUNTRIES country and MAX_ANONYMOUS_REGIONS regions per search (400
    naming the limit; any authenticated caller is exempt). Upstream applies it to `/servers` only.
  After validation, `filterset.places` is the validated `Places`, and `filterset.for_callers_only()`
  says whether they are more than an anonymous caller may name (the answer is then private).
  A subclass drops a filter it does not take by setting it to None (`regions = None`).
- `Places`: the validated values, with `q(prefix="")`, the condition on price rows (any model with
  `vendor_id`, `region_id` and a `region` relation), and `bool(places)` (any given).
- `place_limit_errors(places, user)`: the anonymous-caller rule on its own ({parameter: [message]}).
- `regions_filter()`, `vendor_regions_filter()`, `countries_filter()`: the declarations alone, for a
  FilterSet that needs other names or a subset (`/table/server_prices` calls its regions `region`);
  `Places.pairs(values)` turns validated `vendor~region` values into pairs.
"""

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import django_filters
from django import forms
from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import Concat
from drf_spectacular.drainage import set_override

from apps.catalog.models import Country, Region
from apps.catalog.places import VENDOR_REGION_SEPARATOR, Places, place_limit_errors
from apps.catalog.version import catalog_version
from keeper.api.filters import MAX_VALUE_LENGTH, StrictFilterSet


def known_values(values: Callable[[], QuerySet]) -> frozenset[str]:
    """Every accepted spelling (`value`) of a catalog query, as of the loaded catalog (read once per
    catalog version, a query each time before the first sync)."""
    version = catalog_version()
    if version is None:
        return frozenset(values().values_list("value", flat=True))
    return _known_values(version, values)


@lru_cache(maxsize=32)
def _known_values(version: str, values: Callable[[], QuerySet]) -> frozenset[str]:
    return frozenset(values().values_list("value", flat=True))


def _region_ids() -> QuerySet:
    return Region.objects.annotate(value=F("region_id"))


def _vendor_regions() -> QuerySet:
    return Region.objects.annotate(
        value=Concat("vendor_id", Value(VENDOR_REGION_SEPARATOR), "region_id", output_field=CharField())
    )


def _countries() -> QuerySet:
    return Country.objects.annotate(value=F("country_id"))


class CatalogValuesField(forms.MultipleChoiceField):
    """Repeated values that must exist in the loaded catalog, all checked in one query.

    `values` is a queryset annotated with `value`, the accepted spelling of each row.
    """

    def __init__(self, *args: Any, values: Callable[[], QuerySet], value_format: str = "", **kwargs: Any):
        self.values = values
        self.value_format = value_format
        # Given by ModelMultipleChoiceFilter (for the OpenAPI enum); `values` is what validates.
        kwargs.pop("queryset", None)
        kwargs.pop("to_field_name", None)
        super().__init__(*args, **kwargs)

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        for item in value:
            if "\x00" in item or len(item) > MAX_VALUE_LENGTH:
                raise forms.ValidationError(f"Not a valid value: {item[:MAX_VALUE_LENGTH]!r}.", code="invalid_choice")
            if self.value_format and self.value_format not in item:
                raise forms.ValidationError(
                    f"Invalid format: {item!r}; expected vendor_id{self.value_format}region_id.", code="invalid"
                )
        if not value:
            return
        unknown = sorted(set(value) - known_values(self.values))
        if unknown:
            raise forms.ValidationError(f"Not in the catalog: {', '.join(unknown)}.", code="invalid_choice")


class CatalogValuesFilter(django_filters.ModelMultipleChoiceFilter):
    """A repeatable parameter whose values come from the catalog; it does not filter by itself
    (PlaceFilterSet applies all three together).

    A ModelMultipleChoiceFilter so that the OpenAPI document lists the loaded catalog's values as
    an enum (keeper.api.schema.StrictFilterExtension reads `queryset` and `to_field_name`).
    """

    field_class = CatalogValuesField

    def __init__(self, *args: Any, values: Callable[[], QuerySet], value_format: str = "", **kwargs: Any):
        super().__init__(
            *args,
            queryset=lambda request: values().order_by("value").distinct(),
            to_field_name="value",
            distinct=False,
            values=values,
            value_format=value_format,
            **kwargs,
        )
        set_override(self, "field", {"type": "string", "description": str(self.label or "")})

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs


def regions_filter() -> CatalogValuesFilter:
    """A repeatable region id parameter, validated against the catalog (for a FilterSet that names it otherwise)."""
    return CatalogValuesFilter(
        values=_region_ids,
        label=(
            "Region id, e.g. us-east-1 (repeatable). Region ids are not unique across vendors: a region "
            "id may match regions of several vendors; vendor_regions is more precise."
        ),
    )


def vendor_regions_filter() -> CatalogValuesFilter:
    """A repeatable `vendor~region` parameter, validated against the catalog."""
    return CatalogValuesFilter(
        values=_vendor_regions,
        value_format=VENDOR_REGION_SEPARATOR,
        label="Vendor id and region id separated by a tilde, e.g. aws~us-east-1 (repeatable).",
    )


def countries_filter() -> CatalogValuesFilter:
    """A repeatable country code parameter, validated against the catalog."""
    return CatalogValuesFilter(
        values=_countries, label="Country of the region, ISO 3166-1 alpha-2 code, e.g. US (repeatable)."
    )


class PlaceFilterSet(StrictFilterSet):
    """A FilterSet with the `regions`, `vendor_regions` and `countries` filters (see the module docstring)."""

    place_lookup_prefix: str | None = ""
    place_country_lookup: str = "region__country_id"
    limit_anonymous_places: bool = False

    regions = regions_filter()
    vendor_regions = vendor_regions_filter()
    countries = countries_filter()

    @property
    def places(self) -> Places:
        data = self.form.cleaned_data
        return Places(
            regions=tuple(data.get("regions") or ()),
            vendor_regions=Places.pairs(data.get("vendor_regions")),
            countries=tuple(data.get("countries") or ()),
        )

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if valid and self.limit_anonymous_places and self.request is not None:
            for name, messages in place_limit_errors(self.places, self.request.user).items():
                for message in messages:
                    self.form.add_error(name, message)
        return valid and not self.form.errors

    def for_callers_only(self) -> bool:
        """Whether the validated query names more places than an anonymous caller may: its answer is
        private (apps/catalog/caching.py)."""
        return self.limit_anonymous_places and bool(place_limit_errors(self.places, None))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return self.apply_places(super().filter_queryset(queryset))

    def apply_places(self, queryset: QuerySet) -> QuerySet:
        """`queryset` narrowed to the places given (per `place_lookup_prefix`); for subclasses that
        override `filter_queryset`."""
        places = self.places
        if places and self.place_lookup_prefix is not None:
            queryset = queryset.filter(places.q(self.place_lookup_prefix, self.place_country_lookup))
        return queryset
