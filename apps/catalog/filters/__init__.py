"""FilterSets of the catalog endpoints, one module per resource: the Spare Cores API's parameter names, units
and defaults."""

from apps.catalog.filters.places import PlaceFilterSet
from apps.catalog.filters.servers import RegionFilterSet, ServerFilterSet, currency_choices

__all__ = [
    "PlaceFilterSet",
    "RegionFilterSet",
    "ServerFilterSet",
    "currency_choices",
]
