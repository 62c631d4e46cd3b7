"""The base of the catalog searches (`/servers`, `/databases`): places, a page, and one value object out.

A search FilterSet declares its parameters with their roles (filters/terms.py), names its value object
(`search_class`) and the filters that rank by the selected benchmark (`needs_benchmark`): those, and
ordering by the benchmark, are refused without a `benchmark_id`.
"""

from typing import Any, ClassVar

from apps.catalog.criteria import BENCHMARK_ORDERINGS
from apps.catalog.filters.places import PlaceFilterSet
from apps.catalog.filters.terms import search_terms
from keeper.api.filters import PagingFilterSet
from keeper.api.pagination import LimitPagePagination


class SearchFilterSet(PlaceFilterSet, PagingFilterSet):
    """Places, paging and the search's own parameters; `search()` is the selector's one value object."""

    # The places restrict the prices a row is ranked by, not the rows: the selector reads them.
    place_lookup_prefix = None
    limit_anonymous_places = True

    search_class: ClassVar[type]
    needs_benchmark: ClassVar[tuple[str, ...]] = ()
    # What a benchmark filter or ordering without benchmark_id is told ("{order_by}" names the ordering).
    benchmark_filter_message: ClassVar[str] = "benchmark_id is required with this parameter."
    benchmark_order_message: ClassVar[str] = "benchmark_id is required to order by {order_by}."

    def search(self) -> Any:
        """The validated query as `search_class` (call after `is_valid()`)."""
        limit, page, count = self.paging
        # The places and the page are read apart (PlaceFilterSet's and PagingFilterSet's own filters).
        own = {name: f for name, f in self.filters.items() if name not in _PLACES_AND_PAGE}
        terms = search_terms(own, self.form.cleaned_data)
        terms["conditions"] = tuple(terms["conditions"])
        if limit is None:
            limit = LimitPagePagination.default_limit
        return self.search_class(places=self.places, limit=limit, page=page, count=count, **terms)

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if valid and not self.form.cleaned_data.get("benchmark_id"):
            for name in self.needs_benchmark:
                if self.form.cleaned_data.get(name) is not None:
                    self.form.add_error(name, self.benchmark_filter_message)
            order_by = self.form.cleaned_data.get("order_by")
            if order_by in BENCHMARK_ORDERINGS:
                self.form.add_error("order_by", self.benchmark_order_message.format(order_by=order_by))
        return valid and not self.form.errors


_PLACES_AND_PAGE = frozenset(PlaceFilterSet.base_filters) | frozenset(PagingFilterSet.base_filters)
