"""OpenAPI generation (drf-spectacular): the error answers, and the authentication classes."""

from typing import Any

from django.core.validators import RegexValidator
from django.db import DatabaseError
from django_filters import filters
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from keeper.api.serializers import ErrorSerializer, StrictSerializerMixin

# Why each error can happen; every one of them has the body of keeper.api.exceptions.error_body.
ERROR_RESPONSES: dict[str, str] = {
    "400": "Invalid query parameters or body: `errors` names each one.",
    "401": "No valid credentials: a protected operation called anonymously, or an unknown, expired or revoked key.",
    "403": (
        "Not allowed: the key's scope is too small, the operation is for staff, or the key is restricted "
        "to other endpoints or IP addresses."
    ),
    "404": "Not found.",
    "409": "The resource's state rules the change out (e.g. a revoked or expired key), or the name is taken.",
    "408": "The body did not arrive within KEEPER_BODY_TIMEOUT_SECONDS.",
    "413": "The body is larger than KEEPER_MAX_REQUEST_BODY_BYTES.",
    "414": "The request line (path and query string) is longer than the server reads.",
    "415": "The body is not JSON (Content-Type must be application/json).",
    "429": "Rate limited (the caller's credits, the key's daily quota or the global limit); see Retry-After.",
    "431": "The request headers are larger than the server reads.",
    "503": (
        "Try again later: the identity provider, the JWKS or the API key service could not check the bearer "
        "token, or the server has too many open connections."
    ),
}
RETRY_AFTER = {
    "description": "Seconds until the request can succeed.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
# RejectNullBytesMiddleware refuses NUL in every query parameter value, DRF's CharField in every body.
NO_NUL_PATTERN = r"^[^\x00]*$"
TOKEN_AUTHENTICATION = "apps.accounts.authentication.TokenIntrospectionAuthentication"


class KeeperAutoSchema(AutoSchema):
    """Documents, on every operation, the errors it can answer with and their one body shape.

    They are the same everywhere because they come from shared machinery: the server's own
    limits (request line, headers, body, connections), every query string validated (and NUL
    bytes refused) before any view runs, authentication on every request (a bad key is a 401
    even where anonymous calls are fine, an identity provider that is down a 503), a key's
    endpoint and IP restrictions on every operation, and throttles on every view. A code an
    operation declares itself (e.g. /healthcheck's 503) keeps its own body.
    """

    def get_override_parameters(self) -> list[Any]:
        # ReadOnlyAPIView validates the query string with query_serializer_class: document its fields
        # (parameters given with @extend_schema come after these, and win).
        query = getattr(self.view, "query_serializer_class", None)
        return [query] if query is not None and query().fields else []

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and _is_strict(serializer):
            # StrictSerializerMixin refuses unknown fields: say so, or every extra property looks valid.
            schema["additionalProperties"] = False
        return schema

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "query":
                _refuse_nul(parameter["schema"])
        return parameters

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.IPAddressField) and field.protocol == "both" and "format" not in schema:
            # drf-spectacular documents only the single-protocol fields with a format; this one takes either.
            schema = {**schema, "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
        if direction == "request" and isinstance(field, serializers.CharField) and not _has_regex(field):
            # Every DRF CharField refuses NUL (ProhibitNullCharactersValidator); a field with a pattern
            # of its own (RegexField, SlugField) gets that one from drf-spectacular instead.
            _refuse_nul(schema)
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            error = self._get_response_for_code(ErrorSerializer, code, ["application/json"], direction)
            documented = responses.setdefault(code, {**error, "description": ERROR_RESPONSES[code]})
            own = documented.setdefault("content", error["content"]).get("application/json", {})
            error_schema = error["content"]["application/json"]["schema"]
            if own.get("schema", error_schema) != error_schema:
                # The operation's own body for this code (/healthcheck's 503), or the shared machinery's.
                own["schema"] = {"anyOf": [own["schema"], error_schema]}
            if code == "429":
                documented.setdefault("headers", {"Retry-After": RETRY_AFTER})
        return dict(sorted(responses.items()))

    def _error_codes(self) -> list[str]:
        # 414, 431 and 503 (too many connections) come from the server (keeper/server.py), before Django.
        codes = ["400", "401", "403", "414", "429", "431", "503"]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["408", "413", "415"]
        if self.method != "GET":
            codes += [code for code in getattr(self.view, "write_error_codes", []) if code not in codes]
        return sorted(codes)


def _has_regex(field: Any) -> bool:
    return any(isinstance(validator, RegexValidator) for validator in field.validators)


def _is_strict(serializer: Any) -> bool:
    cls = serializer if isinstance(serializer, type) else type(serializer)
    return issubclass(cls, StrictSerializerMixin)


def _refuse_nul(schema: dict[str, Any]) -> None:
    target = schema.get("items", {}) if schema.get("type") == "array" else schema
    if target.get("type") == "string" and not {"enum", "format", "pattern", "anyOf"} & set(target):
        target["pattern"] = NO_NUL_PATTERN


class StrictFilterExtension(DjangoFilterExtension):
    """Documents what the FilterSets of StrictFilterBackend accept where django-filter's extension cannot tell.

    Values checked against the database (vendor ids) or a function (currencies) are listed as
    an enum, since any other value is a 400; they are read when the schema is generated, so
    /openapi.json follows the loaded catalog, as the Spare Cores API's does. Text filters get
    their max_length.
    """

    target_class = "keeper.api.filters.StrictFilterBackend"
    match_subclasses = True
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        values = _accepted_values(filter_field)
        max_length = filter_field.extra.get("max_length")
        for parameter in parameters:
            schema = parameter["schema"]
            is_array = schema.get("type") == "array"
            target = schema["items"] if is_array else schema
            if values:
                target["enum"] = values
            elif values is not None and is_array:
                # No value is accepted while there are none (an empty catalog), and "enum" may not be empty.
                schema["maxItems"] = 0
            if max_length is not None:
                target["maxLength"] = max_length
        return parameters


def _accepted_values(filter_field: filters.Filter) -> list[str] | None:
    """The values a filter validates against, when they are not a static list of choices."""
    if isinstance(filter_field, (filters.ModelChoiceFilter, filters.ModelMultipleChoiceFilter)):
        column = filter_field.extra.get("to_field_name") or "pk"
        try:
            return sorted(str(value) for value in filter_field.get_queryset(None).values_list(column, flat=True))
        except DatabaseError:
            # `manage.py spectacular` may run before `migrate` (CI does): the values are unknown then.
            return None
    choices = filter_field.extra.get("choices")
    if callable(choices):
        try:
            return sorted(str(value) for value, _ in choices())
        except DatabaseError:
            return None  # as above: catalog-driven choices before `migrate`
    return None


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = TOKEN_AUTHENTICATION
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An OAuth 2.0 access token (checked by introspection, RFC 7662, or as an RS256/ES256 JWT), "
                "an API key of the configured key service, or a static token."
            ),
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.keys.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "A Keeper API key (also accepted as `Authorization: Bearer keeper_...`).",
        }


class SessionCookieScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.SessionCookieAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The session of a user signed in to the admin.",
        }
