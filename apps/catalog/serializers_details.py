"""Shapes of one server's resources, the benchmark summaries and the server table's metadata: the
query parameters they take, and (for the OpenAPI document) the rows the selectors build.

tests/catalog/test_server_benchmarks_descriptions.py and its siblings check that each row has
exactly these fields.
"""

from typing import Any

from django.db import DatabaseError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from apps.catalog.choices import Status
from apps.catalog.models import Benchmark, BenchmarkScore, ServerDescription, Vendor
from apps.catalog.selectors.benchmarks import HISTOGRAM_BINS
from apps.catalog.selectors.server_details import MAX_SIMILAR_SERVERS, SIMILARITY_KINDS
from apps.catalog.selectors.tables import SERVER_COLUMNS
from apps.catalog.serializers import (
    CatalogRowSerializer,
    PriceBreakdownSerializer,
    ServerSearchResultSerializer,
    VendorOwnedSerializer,
)
from apps.catalog.serializers_prices import ServerPriceTableRowSerializer
from apps.catalog.sql import table_columns

# --- query and path parameters ----------------------------------------------------------------


class VendorIdsField(serializers.ListField):
    """Repeated vendor ids (`?vendor=aws&vendor=gcp`), each one of the loaded catalog (one query, when given)."""

    child = serializers.CharField(max_length=255)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        known = set(Vendor.objects.filter(vendor_id__in=values).values_list("vendor_id", flat=True))
        unknown = sorted(set(values) - known)
        if unknown:
            raise serializers.ValidationError(f"Not in the catalog: {', '.join(unknown)}.")
        return values


class VendorIdsFieldExtension(OpenApiSerializerFieldExtension):
    """Lists the loaded catalog's vendor ids as the enum, as the FilterSets' `vendor` does."""

    target_class = VendorIdsField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        try:
            values = sorted(Vendor.objects.values_list("vendor_id", flat=True))
        except DatabaseError:
            # `manage.py spectacular` may run before `migrate` (CI does): the values are unknown then.
            return build_array_type(build_basic_type(OpenApiTypes.STR))
        if not values:
            # No value is accepted while there are none (an empty catalog), and "enum" may not be empty.
            return {**build_array_type(build_basic_type(OpenApiTypes.STR)), "maxItems": 0}
        return build_array_type({**build_basic_type(OpenApiTypes.STR), "enum": values})


class StatsParameters(serializers.Serializer):
    """Query parameters of `GET /stats`."""

    vendor = VendorIdsField(required=False, help_text="Count the rows of these vendors only, e.g. aws (repeatable).")
    only_active = serializers.BooleanField(
        required=False, default=False, help_text="Count active rows only (default false)."
    )


class ServerColumnField(serializers.ChoiceField):
    default_error_messages = {"invalid_choice": 'Unknown server column: "{input}".'}


class ServerColumnsParameters(serializers.Serializer):
    """Query parameters of `GET /table/server/select`."""

    columns = serializers.ListField(
        child=ServerColumnField(choices=SERVER_COLUMNS),
        required=False,
        help_text="Server columns to return, in this order (repeatable); all of them when left out.",
    )


class SimilarServersPath(serializers.Serializer):
    """Path parameters of `GET /server/{vendor}/{server}/similar_servers/{by}/{num}`."""

    by = serializers.ChoiceField(choices=SIMILARITY_KINDS)
    num = serializers.IntegerField(min_value=0, max_value=MAX_SIMILAR_SERVERS)


# --- rows -------------------------------------------------------------------------------------

BENCHMARK_SCORE_COLUMNS = table_columns(BenchmarkScore)


class ServerPriceSerializer(ServerPriceTableRowSerializer):
    """A `/server/{vendor}/{server}/prices` row: an active price of the server, in `currency`."""


class BenchmarkScoreSerializer(VendorOwnedSerializer):
    """A `/server/{vendor}/{server}/benchmarks` row: an active benchmark score of the server."""

    benchmark_id = serializers.CharField(help_text="Benchmark id, e.g. geekbench:score.")

    class Meta:
        model = BenchmarkScore
        fields = BENCHMARK_SCORE_COLUMNS


class ServerDescriptionSerializer(VendorOwnedSerializer):
    """`/server/{vendor}/{server}/descriptions`: the generated texts of the server's page."""

    class Meta:
        model = ServerDescription
        fields = table_columns(ServerDescription)


class SimilarServerSerializer(ServerSearchResultSerializer):
    """A `/server/{vendor}/{server}/similar_servers/{by}/{num}` row: a `/servers` row whose prices are the
    cheapest in `countries` / `vendor_regions` when given, with the selected benchmark's score."""

    price = serializers.FloatField(allow_null=True, help_text="Legacy: the cheapest price (`min_price`).")
    score_per_price = serializers.FloatField(
        allow_null=True, help_text="`score` per USD/hour of best_price_allocation's cheapest price."
    )
    selected_benchmark_score = serializers.FloatField(
        allow_null=True, help_text="The best score of `benchmark_id` (in `benchmark_config`); null without it."
    )
    selected_benchmark_score_per_price = serializers.FloatField(
        allow_null=True, help_text="`selected_benchmark_score` per USD/hour of best_price_allocation's price."
    )
    price_breakdown = PriceBreakdownSerializer(help_text="Not broken down here: every part is null, as upstream.")

    class Meta(ServerSearchResultSerializer.Meta):
        fields = list(
            dict.fromkeys(
                [
                    *ServerSearchResultSerializer.Meta.fields,
                    "selected_benchmark_score",
                    "selected_benchmark_score_per_price",
                    "price_breakdown",
                ]
            )
        )


class BenchmarkConfigSerializer(serializers.Serializer):
    """A `/benchmark_configs` row: a benchmark configuration with active scores (of servers or databases)."""

    benchmark_id = serializers.CharField(help_text="Benchmark id.")
    config = serializers.CharField(
        help_text='The configuration as JSON text, e.g. {"cores": 1}: what `benchmark_config` takes.'
    )
    category = serializers.CharField(allow_null=True, help_text="The benchmark's category.")
    subcategory = serializers.CharField(allow_null=True, help_text="The benchmark's subcategory.")


class BenchmarkHistogramSerializer(serializers.Serializer):
    breakpoints = serializers.ListField(
        child=serializers.FloatField(), help_text=f"The {HISTOGRAM_BINS + 1} edges of the {HISTOGRAM_BINS} bins."
    )
    counts = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Scores in each bin: [edge i, edge i+1), the last bin including the highest score.",
    )


class BenchmarkConfigFieldSerializer(serializers.Serializer):
    description = serializers.CharField(allow_null=True, help_text="What the configuration field means.")
    examples = serializers.ListField(
        child=serializers.JSONField(), help_text="The values it takes in active scores, numbers first."
    )


class BenchmarkScoreStatsSerializer(CatalogRowSerializer):
    """A `/benchmark_score_stats` row: a benchmark, how many active scores and servers it has, and their spread."""

    configs = serializers.DictField(
        child=BenchmarkConfigFieldSerializer(), help_text="The benchmark's configuration fields, by name."
    )
    status = serializers.ChoiceField(
        choices=[member.name for member in Status], help_text="Spelled by its name here (ACTIVE), as upstream does."
    )
    count = serializers.IntegerField(help_text="Active scores of the benchmark.")
    count_servers = serializers.IntegerField(help_text="Distinct servers with an active score.")
    histogram = BenchmarkHistogramSerializer(allow_null=True, help_text="Null without active scores.")

    class Meta:
        model = Benchmark
        fields = [
            "benchmark_id",
            "name",
            "description",
            "framework",
            "measurement",
            "unit",
            "higher_is_better",
            "status",
            "configs",
            "count",
            "count_servers",
            "histogram",
        ]


class VendorCoverageSerializer(serializers.Serializer):
    vendor_id = serializers.CharField()
    all = serializers.IntegerField(help_text="Servers of the vendor.")
    active = serializers.IntegerField(help_text="Active servers with a price.")
    evaluated = serializers.IntegerField(help_text="Active servers with a price and at least one benchmark score.")
    missing = serializers.IntegerField(help_text="Active servers with a price but no benchmark score.")
    inactive = serializers.IntegerField(help_text="Servers that are inactive or have no price.")


class VendorDatabaseCoverageSerializer(serializers.Serializer):
    vendor_id = serializers.CharField()
    all = serializers.IntegerField(help_text="Managed databases of the vendor.")
    active = serializers.IntegerField(help_text="Active managed databases with a price.")
    evaluated = serializers.IntegerField(help_text="Active, priced managed databases with a benchmark score.")
    missing = serializers.IntegerField(help_text="Active, priced managed databases without a benchmark score.")
    inactive = serializers.IntegerField(help_text="Managed databases that are not active or have no price.")


class ServerCoverageSerializer(serializers.Serializer):
    vendor_id = serializers.CharField()
    server_id = serializers.CharField()
    api_reference = serializers.CharField()
    status = serializers.CharField()
    has_hw_info = serializers.BooleanField(help_text="Whether the CPU flags are known.")
    has_price = serializers.BooleanField(help_text="Whether the server has an active price.")
    has_benchmarks = serializers.BooleanField(help_text="Whether any benchmark family has a score.")
    benchmarks = serializers.DictField(
        child=serializers.BooleanField(), help_text="Per benchmark family: whether the server has a score."
    )


class DebugSerializer(serializers.Serializer):
    """`/debug`: how much of the catalog has benchmark scores."""

    vendors = VendorCoverageSerializer(many=True)
    servers = ServerCoverageSerializer(many=True)
    benchmark_families = serializers.ListField(
        child=serializers.CharField(), help_text="Benchmark ids up to the first colon, e.g. geekbench."
    )
    databases = VendorDatabaseCoverageSerializer(many=True, help_text="Managed databases per vendor.")


class TableDescriptionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class ColumnDescriptionSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Column name.")
    name = serializers.CharField(help_text="Human-friendly name.")
    description = serializers.CharField()
    category = serializers.CharField(help_text="meta, cpu, memory, gpu, storage or network.")
    unit = serializers.CharField(allow_null=True)


class TableMetaSerializer(serializers.Serializer):
    """`/table/server/meta`: the server table and its columns."""

    table = TableDescriptionSerializer()
    fields = ColumnDescriptionSerializer(many=True)
