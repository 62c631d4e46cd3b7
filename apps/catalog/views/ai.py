"""`GET /ai/assist_*_filters`: free text to the filters of a catalog search (apps/catalog/ai.py does the work)."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import ai
from keeper.api.generics import ReadOnlyAPIView
from keeper.api.schema import KeeperAutoSchema
from keeper.api.serializers import ErrorSerializer

MAX_TEXT_LENGTH = 2000
DROPPED_HEADER = "X-Dropped-Filters"
NO_STORE = "private, no-store"


class AssistParameters(serializers.Serializer):
    # Not trimmed: the text goes to the model as the caller wrote it.
    text = serializers.CharField(
        max_length=MAX_TEXT_LENGTH,
        trim_whitespace=False,
        help_text=f"What you are looking for, in plain words (at most {MAX_TEXT_LENGTH} characters).",
    )


class AssistSchema(KeeperAutoSchema):
    """The answer is documented with the same schema the model's tool gets, generated from the FilterSet."""

    def get_operation_id(self) -> str:
        return f"assist_{self.view.target.slug}_filters"

    def get_summary(self) -> str:
        return f"Filters for {self.view.target.endpoint} from free text"

    def get_description(self) -> str:
        target = self.view.target
        return (
            f"Asks an AI model (OPENAI_MODEL) which query parameters of `{target.endpoint}` fit `text`, and "
            f"returns them as a JSON object, validated by the same FilterSet as `{target.endpoint}`: values it "
            f"refuses, and parameters it does not know, are dropped (the refused ones are named in "
            f"`{DROPPED_HEADER}`). 503 when AI assist is not configured or the provider is unavailable, "
            "504 when it does not answer within OPENAI_TIMEOUT_SECONDS."
        )

    def get_tags(self) -> list[str]:
        return ["AI"]

    def get_override_parameters(self) -> list[Any]:
        dropped = OpenApiParameter(
            DROPPED_HEADER,
            str,
            OpenApiParameter.HEADER,
            response=[200],
            description="Parameters the model gave values the FilterSet refused (dropped), comma-separated.",
        )
        return [*super().get_override_parameters(), dropped]

    def get_response_serializers(self) -> dict[int, OpenApiResponse]:
        target = self.view.target
        filterset_class = target.filterset_class()
        if filterset_class is None:
            filters: dict[str, Any] = {"type": "object", "description": "Not available yet."}
        else:
            filters = ai.filters_json_schema(filterset_class, target.exclude)
        return {
            200: OpenApiResponse(filters, description=f"Query parameters of `{target.endpoint}`."),
            503: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "Try again later: AI assist is not configured (`ai_not_configured`) or not available for "
                    "this endpoint (`ai_not_available`), this server has KEEPER_AI_CALLS_PER_PROCESS calls under way "
                    "already (`ai_busy`, with Retry-After), the AI provider is down, refused the request or answered "
                    "without usable filters (`ai_unavailable`); or the identity provider could not check the "
                    "bearer token, or the server has too many open connections."
                ),
            ),
            504: OpenApiResponse(
                ErrorSerializer, description="The AI provider did not answer within OPENAI_TIMEOUT_SECONDS."
            ),
        }


class AssistView(ReadOnlyAPIView):
    """Answers are per request and never cached: Cache-Control private, no-store, errors included."""

    # It waits on the AI provider: keeper/server.py runs it in a thread, off the worker's event loop.
    slow_upstream = True
    query_serializer_class = AssistParameters
    schema = AssistSchema()
    target: ai.AssistTarget

    def get(self, request: Request) -> Response:
        params = self.query_params(request)
        result = ai.assist_filters(target=self.target, text=params["text"], request=request)
        headers = {DROPPED_HEADER: ", ".join(result.dropped)} if result.dropped else {}
        return Response(result.filters, headers=headers)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = NO_STORE
        return response


# One view per assisted search, served at its `target.path` (apps/catalog/urls.py), in ASSIST_TARGETS' order.
ASSIST_VIEWS: dict[str, type[AssistView]] = {
    slug: type(f"Assist{slug.title().replace('_', '')}FiltersView", (AssistView,), {"target": target})
    for slug, target in ai.ASSIST_TARGETS.items()
}
