"""The JSON request parser: orjson, a size limit and a nesting limit, every failure a 4xx."""

from typing import Any

import orjson
from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser

# No Keeper request body nests deeper than a few levels; 32 leaves room and keeps every
# recursive walk over the data (validation, error rendering) far from Python's recursion limit.
MAX_JSON_DEPTH = 32


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.KEEPER_MAX_REQUEST_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"The request body is not valid JSON: {exc}") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        return data


def json_depth(data: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (the data may be as deep as orjson allows)."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        pending.extend((item, depth + 1) for item in value)
    return deepest
