"""FilterSets of the catalog endpoints, one module per resource: the Spare Cores API's parameter names, units
and defaults."""

from apps.catalog.filters.servers import RegionFilterSet, ServerFilterSet, currency_choices

__all__ = ["RegionFilterSet", "ServerFilterSet", "currency_choices"]
