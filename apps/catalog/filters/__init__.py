"""FilterSets of the catalog endpoints, one module per resource: the Spare Cores API's parameter names, units
and defaults."""

from apps.catalog.filters.places import PlaceFilterSet, Places, place_limit_errors
from apps.catalog.filters.servers import RegionFilterSet, ServerFilterSet, currency_choices

__all__ = [
    "PlaceFilterSet",
    "Places",
    "RegionFilterSet",
    "ServerFilterSet",
    "currency_choices",
    "place_limit_errors",
]
