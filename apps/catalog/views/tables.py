"""The server table with chosen columns (`/table/server/select`) and its description (`/table/server/meta`)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.caching import cached_catalog_response
from apps.catalog.selectors import tables as selectors
from apps.catalog.serializers_details import ServerColumnsParameters, TableMetaSerializer
from keeper.api.generics import ReadOnlyAPIView

# The rows' keys are the columns asked for, so they have no fixed shape.
SERVER_COLUMN_ROWS = OpenApiResponse(
    {
        "type": "array",
        "items": {
            "type": "object",
            "description": 'A server\'s requested columns (see /table/server/meta), e.g. {"vcpus": 2}.',
            "additionalProperties": True,
        },
    },
    description="Every server with the requested columns.",
)


class ServerTableSelectView(ReadOnlyAPIView):
    query_serializer_class = ServerColumnsParameters

    @extend_schema(
        operation_id="table_server_select",
        summary="Table dump: server, chosen columns",
        description=(
            "Every server with the `columns` asked for (all of them when none is given), in that order; "
            "the servers in upstream's order."
        ),
        tags=["Table dumps"],
        responses={200: SERVER_COLUMN_ROWS},
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        return Response(selectors.server_column_rows(self.query_params(request).get("columns")))


class ServerTableMetaView(ReadOnlyAPIView):
    @extend_schema(
        operation_id="table_server_meta",
        summary="Table metadata: server",
        description="The server table's description, and each column's name, description, category and unit.",
        tags=["Table metadata"],
        responses=TableMetaSerializer,
    )
    @cached_catalog_response
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(selectors.server_table_meta())
