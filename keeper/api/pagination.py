"""`limit` / `page` pagination with bare JSON arrays, as the Spare Cores API does."""

from typing import Any, NamedTuple

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

MAX_LIMIT = 10_000
MAX_PAGE = 1_000_000


class Page(NamedTuple):
    """A validated page: `limit` rows (None: the paginator's default; -1: all) of 1-based `page`."""

    limit: int | None
    page: int
    count: bool  # add_total_count_header


class LimitField(serializers.IntegerField):
    """Rows per page: 1 to MAX_LIMIT, or -1 for all of them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=-1, max_value=MAX_LIMIT, **kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        value = super().run_validation(data)
        if value == 0:
            raise serializers.ValidationError("Must be a positive number, or -1 for all rows.")
        return value


class LimitPagePagination(BasePagination):
    """`limit` rows (default 25, -1 for all) of 1-based `page`; `X-Total-Count` on request.

    Refuses unordered querysets: paging them would return rows at random.
    """

    default_limit = 25

    def page_of(self, request: Request, view: Any = None) -> tuple[int, int, bool]:
        """(limit, page, add_total_count_header), as the view's FilterSet (a PagingFilterSet) validated them."""
        paging = getattr(getattr(view, "filterset", None), "paging", None)
        if paging is None:
            raise AssertionError("LimitPagePagination reads the page off the view's PagingFilterSet")
        limit = self.default_limit if paging.limit is None else paging.limit
        return limit, paging.page, paging.count

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> QuerySet:
        if not queryset.ordered:
            raise AssertionError("LimitPagePagination needs an ordered queryset")
        limit, page, count = self.page_of(request, view)
        self.total_count = queryset.count() if count else None
        if limit == -1:
            return queryset
        start = (page - 1) * limit
        return queryset[start : start + limit]

    def get_paginated_response(self, data: Any) -> Response:
        headers = {} if self.total_count is None else {"X-Total-Count": str(self.total_count)}
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return schema

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Rows per page (default {self.default_limit}, at most {MAX_LIMIT}); -1: all rows.",
                # 0 is refused (validate_limit): "not" is how OpenAPI 3.0 leaves one value out of a range.
                "schema": {
                    "type": "integer",
                    "minimum": -1,
                    "maximum": MAX_LIMIT,
                    "not": {"enum": [0]},
                    "default": self.default_limit,
                },
            },
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "1-based page number.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
            },
            {
                "name": "add_total_count_header",
                "in": "query",
                "required": False,
                "description": "Set the X-Total-Count response header to the number of matching rows.",
                "schema": {"type": "boolean", "default": False},
            },
        ]
