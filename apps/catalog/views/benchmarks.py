"""Benchmark summaries: `/benchmark_configs`, `/benchmark_score_stats` and the coverage report `/debug`."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import cached_catalog_response
from apps.catalog.selectors import benchmarks as selectors
from apps.catalog.serializers_details import BenchmarkConfigSerializer, BenchmarkScoreStatsSerializer, DebugSerializer
from keeper.api.generics import ReadOnlyAPIView


class BenchmarkConfigsView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="benchmark_configs",
        summary="Benchmark configurations",
        description=(
            "Every benchmark configuration with active scores, of servers and of managed databases (of "
            "stress-ng, only the `stress_ng:best*` summaries), with its category and subcategory, in the Spare "
            "Cores display order; `config` is what `benchmark_config` takes."
        ),
        tags=["Query Resources"],
        responses=BenchmarkConfigSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(selectors.benchmark_config_rows())


class BenchmarkScoreStatsView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="benchmark_score_stats",
        summary="Benchmark score statistics",
        description=(
            "Per benchmark: its description, the number of active scores and of servers scored, the values "
            "of its configuration fields, and a histogram of the scores in 20 bins."
        ),
        tags=["Administrative"],
        responses=BenchmarkScoreStatsSerializer(many=True),
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(selectors.benchmark_score_stats())


class DebugView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="debug",
        summary="Benchmark coverage",
        description=(
            "Which servers have hardware information, a price and scores of each benchmark family, and per "
            "vendor how many active, priced servers are evaluated or still missing scores. Catalog data only: "
            "no settings, versions or secrets."
        ),
        tags=["Administrative"],
        responses=DebugSerializer,
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(selectors.benchmark_coverage())
