"""One server's resources: `/server/{vendor}/{server}/prices`, `/benchmarks`, `/descriptions` and
`/similar_servers/{by}/{num}`."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import PRICES, cached_catalog_response
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
from keeper.api.callers import caller_of
from keeper.api.generics import ReadOnlyAPIView, ReadOnlyListAPIView

SERVER_PATH = [
    OpenApiParameter("vendor", str, OpenApiParameter.PATH, description="Vendor id, e.g. aws."),
    OpenApiParameter("server", str, OpenApiParameter.PATH, description="Server id or API reference."),
]
TAGS = ["Server Details"]


def unknown_server(vendor: str, server: str) -> NotFound:
    return NotFound(f"Server {server!r} of vendor {vendor!r} not found (by server id or API reference).")


class ServerPricesView(ReadOnlyListAPIView):
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
        filterset = self.validated_filterset(request)
        rows = selectors.server_price_rows(
            vendor_id=vendor, server=server, places=filterset.places, currency=filterset.currency_code
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


class SimilarServersView(ReadOnlyListAPIView):
    queryset = Server.objects.none()
    filterset_class = SimilarServersFilterSet
    permission_classes = [BenchmarkRankingsNeedCaller]

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
        path_params = SimilarServersPath(data={"by": by, "num": num})
        path_params.is_valid(raise_exception=True)
        by, num = path_params.validated_data["by"], path_params.validated_data["num"]
        filterset = self.validated_filterset(request)
        params = filterset.params
        if by.startswith("benchmark_") and not params.get("benchmark_id"):
            raise ValidationError({"benchmark_id": [f"Ranking by {by} requires a benchmark_id."]})
        similarity = selectors.Similarity(
            by=by,
            num=num,
            places=filterset.places,
            price_column=filterset.price_column,
            server_region=params.get("server_region") or None,
            benchmark_id=params.get("benchmark_id") or None,
            benchmark_config=params.get("benchmark_config"),
            currency=filterset.currency_code,
        )
        rows = selectors.similar_server_rows(vendor_id=vendor, server=server, similarity=similarity)
        if rows is None:
            raise unknown_server(vendor, server)
        return Response(rows)

    def for_callers_only(self) -> bool:
        """Benchmark rankings, like more places than anonymous callers may name, are for authenticated
        callers (read by apps/catalog/caching.py once `get` validated the query)."""
        return _needs_caller(self.kwargs["by"], self.request.query_params) or self.filterset.for_callers_only()
