"""ServerFilterSet declares every `/servers` parameter once, with its part in the search, and hands the
selector one ServerSearch (apps/catalog/criteria.py): no declared parameter may be left out of it."""

from typing import Any

import django_filters
import pytest
from django.http import QueryDict

from apps.catalog.criteria import ServerSearch
from apps.catalog.filters.servers import ServerFilterSet
from apps.catalog.models import Benchmark, ComplianceFramework, Region, Vendor
from keeper.api.filters import BooleanFilter, PagingFilterSet

pytestmark = pytest.mark.django_db


def _search(params: dict[str, Any]) -> ServerSearch:
    query = QueryDict(mutable=True)
    for name, value in params.items():
        query.setlist(name, value if isinstance(value, list) else [value])
    filterset = ServerFilterSet(query)
    assert filterset.is_valid(), filterset.errors
    return filterset.search()


def _a_value(name: str, filter_: django_filters.Filter) -> Any:
    """A valid value other than the parameter's default, read from the catalog or the declaration."""
    catalog_rows = {
        "vendor": lambda: Vendor.objects.order_by("pk").first().pk,
        "compliance_framework": lambda: ComplianceFramework.objects.order_by("pk").first().pk,
        "benchmark_id": lambda: Benchmark.objects.order_by("pk").first().pk,
        "regions": lambda: Region.objects.order_by("pk").first().region_id,
        "vendor_regions": lambda: "{0.vendor_id}~{0.region_id}".format(Region.objects.order_by("pk").first()),
        "countries": lambda: Region.objects.order_by("pk").first().country_id,
    }
    if name in catalog_rows:
        return catalog_rows[name]()
    if isinstance(filter_, BooleanFilter):
        return "false" if ServerFilterSet.defaults.get(name) == "true" else "true"
    choices = filter_.extra.get("choices")
    if choices is not None:
        values = [str(value) for value, _ in (choices() if callable(choices) else choices)]
        return next(value for value in values if value not in ("USD", "ANY", "min_price", "asc"))
    if isinstance(filter_, django_filters.NumberFilter):
        return "2.5" if "float" in type(filter_).__name__.lower() or "Scaled" in type(filter_).__name__ else "2"
    return "large"


def test_every_declared_parameter_is_part_of_the_search(loaded_catalog):
    paging = set(PagingFilterSet.base_filters)
    names = [name for name in ServerFilterSet.base_filters if name not in paging]
    benchmark = {"benchmark_id": _a_value("benchmark_id", ServerFilterSet.base_filters["benchmark_id"])}
    for name in names:
        # The benchmark's own parameters and orderings need one (a 400 otherwise): both sides have it.
        base = {} if name == "benchmark_id" else dict(benchmark)
        value = _a_value(name, ServerFilterSet.base_filters[name])
        assert _search({**base, name: value}) != _search(base), f"{name}={value} changes nothing in the search"


def test_the_page_is_validated_with_the_filters_and_is_part_of_the_search(loaded_catalog, api):
    search = _search({"limit": "7", "page": "3", "add_total_count_header": "true"})
    assert (search.limit, search.page, search.count) == (7, 3, True)
    assert (_search({}).limit, _search({}).page, _search({}).count) == (25, 1, False)

    response = api.get("/servers", {"limit": "0", "page": "x", "vcpus_min": "0", "add_total_count_header": ""})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"limit", "page", "vcpus_min", "add_total_count_header"}
    assert errors["limit"] == ["Must be a positive number, or -1 for all rows."]
