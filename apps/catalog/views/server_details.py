"""One server's resources: `/server/{vendor}/{server}/prices`, `/benchmarks`, `/descriptions` and
`/similar_servers/{by}/{num}`."""

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.identity import caller_of
from apps.catalog.caching import PRICES, cached_catalog_response
from apps.catalog.filters.places import place_limit_errors
from apps.catalog.filters.server_details import ServerPricesFilterSet, SimilarServersFilterSet
from apps.catalog.models import Server, ServerPrice
from apps.catalog.selectors import server_details as selectors
from apps.catalog.serializers_details import (
    BenchmarkScoreSerializer,
    ServerDescriptionSerializer,
    ServerPriceSerializer,
    SimilarServerSerializer,
    SimilarServersPath,
)
from keeper.api.generics import ReadOnlyAPIView, ReadOnlyListAPIView

SERVER_PATH = [
    OpenApiParameter("vendor", str, OpenApiParameter.PATH, description="Vendor id, e.g. aws."),
    OpenApiParameter("server", str, OpenApiParameter.PATH, description="Server id or API reference."),
]
TAGS = ["Server Details"]


def unknown_server(vendor: str, server: str) -> NotFound:
    return NotFound(f"Server {server!r} of vendor {vendor!r} not found (by server id or API reference).")


class ValidatedFirstMixin:
    """Validates the query string (with the view's FilterSet) before the response cache is read.

    Whether a query string is allowed depends on the caller (anonymous callers may name fewer
    places), and the cache is keyed by the query string alone: validated inside the cached `get`,
    an anonymous caller would be served what an authenticated one was allowed to ask.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.validate_path(kwargs)
        self.filter_queryset(self.get_queryset())  # type: ignore[attr-defined]
        self.validate_together()

    def validate_path(self, kwargs: dict[str, Any]) -> None:
        """Path parameters beyond the server's name (400 naming them)."""

    def validate_together(self) -> None:
        """Rules on several parameters at once (400 naming them)."""

    def answer_needs_caller(self, request: Request) -> bool:
        """More places than an anonymous caller may name: the answer is private (apps/catalog/caching.py)."""
        places = getattr(getattr(self, "filterset", None), "places", None)
        return places is not None and bool(place_limit_errors(places, None))


class ServerPricesView(ValidatedFirstMixin, ReadOnlyListAPIView):
    queryset = ServerPrice.objects.none()
    filterset_class = ServerPricesFilterSet

    @extend_schema(
        operation_id="server_prices_of_server",
        summary="Prices of a server",
        description=(
            "The server's active prices in every zone and allocation (as upstream stores them), "
            "ordered by region, zone and allocation; `countries` and `vendor_regions` narrow them."
        ),
        tags=TAGS,
        parameters=SERVER_PATH,
        responses={200: ServerPriceSerializer(many=True), 404: OpenApiResponse(description="Unknown server.")},
    )
    @cached_catalog_response(kind=PRICES)
    def get(self, request: Request, vendor: str, server: str) -> Response:
        rows = selectors.server_price_rows(
            vendor_id=vendor, server=server, places=self.filterset.places, currency=self.filterset.currency_code
        )
        if rows is None:
            raise unknown_server(vendor, server)
        return Response(rows)


class ServerBenchmarksView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="server_benchmarks",
        summary="Benchmark scores of a server",
        description="The server's active benchmark scores, in the Spare Cores display order of benchmarks.",
        tags=TAGS,
        parameters=SERVER_PATH,
        responses={200: BenchmarkScoreSerializer(many=True), 404: OpenApiResponse(description="Unknown server.")},
    )
    @cached_catalog_response
    def get(self, request: Request, vendor: str, server: str) -> Response:
        self.query_params(request)
        rows = selectors.server_benchmark_rows(vendor_id=vendor, server=server)
        if rows is None:
            raise unknown_server(vendor, server)
        return Response(rows)


class ServerDescriptionsView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="server_descriptions",
        summary="Descriptions of a server",
        description="The generated texts of the server's page.",
        tags=TAGS,
        parameters=SERVER_PATH,
        responses={
            200: ServerDescriptionSerializer,
            404: OpenApiResponse(description="Unknown server, or a server without descriptions."),
        },
    )
    @cached_catalog_response
    def get(self, request: Request, vendor: str, server: str) -> Response:
        self.query_params(request)
        found = selectors.server_description_row(vendor_id=vendor, server=server)
        if not found.server_found:
            raise unknown_server(vendor, server)
        if found.row is None:
            raise NotFound(f"Server {server!r} of vendor {vendor!r} has no descriptions.")
        return Response(found.row)


def _needs_caller(by: str, query: Any) -> bool:
    return by.startswith("benchmark_") or "benchmark_id" in query


class BenchmarkRankingsNeedCaller(BasePermission):
    """The benchmark_score kinds, and `benchmark_id`, are for authenticated callers (401 otherwise)."""

    message = "Ranking or filtering by benchmark_id requires authentication."

    def has_permission(self, request: Request, view: Any) -> bool:
        return caller_of(request.user) is not None or not _needs_caller(view.kwargs["by"], request.query_params)


class SimilarServersView(ValidatedFirstMixin, ReadOnlyListAPIView):
    queryset = Server.objects.none()
    filterset_class = SimilarServersFilterSet
    permission_classes = [BenchmarkRankingsNeedCaller]

    def validate_path(self, kwargs: dict[str, Any]) -> None:
        path_params = SimilarServersPath(data={"by": kwargs["by"], "num": kwargs["num"]})
        path_params.is_valid(raise_exception=True)
        self.path_params = path_params.validated_data

    def validate_together(self) -> None:
        by = self.path_params["by"]
        if by.startswith("benchmark_") and not self.filterset.params.get("benchmark_id"):
            raise ValidationError({"benchmark_id": [f"Ranking by {by} requires a benchmark_id."]})

    @extend_schema(
        operation_id="similar_servers",
        summary="Servers similar to a server",
        description=(
            "The `num` (at most 100) active servers most like the given one, itself left out, as `/servers` rows.\n\n"
            "- `family`: the same vendor and family, by vCPUs, GPUs and memory;\n"
            "- `specs`: the closest number of GPUs, then of vCPUs, then memory;\n"
            "- `score`: the closest stress-ng score (multi-core);\n"
            "- `score_per_price`: the closest stress-ng score per USD/hour of `best_price_allocation`'s price "
            "(the given server's price in `server_region` when set);\n"
            "- `benchmark_score`, `benchmark_score_per_price`: the same with the best score of `benchmark_id` "
            "(in `benchmark_config`); authenticated callers only.\n\n"
            "With `countries` or `vendor_regions`, only servers with a price there are ranked, with their cheapest "
            "prices there."
        ),
        tags=TAGS,
        parameters=[
            *SERVER_PATH,
            OpenApiParameter(
                "by",
                str,
                OpenApiParameter.PATH,
                enum=list(selectors.SIMILARITY_KINDS),
                description="How similarity is measured.",
            ),
            OpenApiParameter(
                "num",
                {"type": "integer", "minimum": 0, "maximum": selectors.MAX_SIMILAR_SERVERS},
                OpenApiParameter.PATH,
                description=f"How many servers (at most {selectors.MAX_SIMILAR_SERVERS}).",
            ),
        ],
        responses={200: SimilarServerSerializer(many=True), 404: OpenApiResponse(description="Unknown server.")},
    )
    @cached_catalog_response
    def get(self, request: Request, vendor: str, server: str, by: str, num: str) -> Response:
        params = self.filterset.params
        similarity = selectors.Similarity(
            by=self.path_params["by"],
            num=self.path_params["num"],
            places=self.filterset.places,
            price_column=self.filterset.price_column,
            server_region=params.get("server_region") or None,
            benchmark_id=params.get("benchmark_id") or None,
            benchmark_config=params.get("benchmark_config"),
            currency=self.filterset.currency_code,
        )
        rows = selectors.similar_server_rows(vendor_id=vendor, server=server, similarity=similarity)
        if rows is None:
            raise unknown_server(vendor, server)
        return Response(rows)

    def answer_needs_caller(self, request: Request) -> bool:
        """Benchmark rankings, like more places than anonymous callers may name, are for authenticated callers."""
        return _needs_caller(self.kwargs.get("by", ""), request.query_params) or super().answer_needs_caller(request)


def server_detail_urls() -> list:
    """The routes of one server's resources; they must precede `/server/{vendor}/{server}`, whose
    `server` may contain slashes (otherwise `m5.large/prices` would be looked up as a server id)."""
    prefix = "server/<str:vendor>/<path:server>"
    return [
        path(f"{prefix}/prices", ServerPricesView.as_view(), name="server-detail-prices"),
        path(f"{prefix}/benchmarks", ServerBenchmarksView.as_view(), name="server-benchmarks"),
        path(f"{prefix}/descriptions", ServerDescriptionsView.as_view(), name="server-descriptions"),
        path(
            f"{prefix}/similar_servers/<str:by>/<str:num>",
            SimilarServersView.as_view(),
            name="server-similar-servers",
        ),
    ]
