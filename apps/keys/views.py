"""The key management API (`/keys`). There is no anonymous access: every call needs a caller."""

import re
import time
from collections.abc import Iterator

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import Organization
from apps.keys import services
from apps.keys.choices import SCOPE_RANK, KeySource, KeyStatus, Scope
from apps.keys.filters import KeyFilterSet
from apps.keys.models import ApiKey, AuditEvent
from apps.keys.selectors import KeyManager, key_manager, usage_summary
from apps.keys.serializers import (
    AuditEventSerializer,
    IssuedKeySerializer,
    JsonWebKeySetSerializer,
    KeyCreateSerializer,
    KeySerializer,
    KeyUpdateSerializer,
    RevokeSerializer,
    RotateSerializer,
    ScopeSerializer,
    UsageQuerySerializer,
    UsageSerializer,
    ValidateSerializer,
    ValidationResultSerializer,
)
from apps.keys.signing import ACTIVATION_DELAY_SECONDS, key_set
from apps.throttling import services as throttling
from keeper.api.callers import IsAuthenticatedCaller, caller_of, client_ip
from keeper.api.filters import StrictFilterBackend
from keeper.api.generics import KeeperViewMixin, ReadOnlyAPIView, validated_query
from keeper.api.pagination import LimitPagePagination
from keeper.api.renderers import ORJSONRenderer
from keeper.api.streams import StreamSlots

# Audit event ids are 64-bit: a larger number would overflow the database's integer. The header
# takes up to 18 digits, all below that bound, so that its pattern says exactly what is accepted.
MAX_EVENT_ID = 2**63 - 1
_EVENT_ID = re.compile(r"^[0-9]{1,18}$")


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return orjson.dumps(data)


class KeyManagementMixin(KeeperViewMixin):
    permission_classes = [IsAuthenticatedCaller]

    @property
    def manager(self) -> KeyManager:
        if not hasattr(self, "_manager"):
            self._manager = key_manager(caller_of(self.request.user), client_ip(self.request._request))
        return self._manager

    def require(self, needed: str) -> None:
        if not self.manager.may(needed):
            raise exceptions.PermissionDenied(f"This needs the {needed} scope; your key has {self.manager.scope}.")


@extend_schema(tags=["API keys"])
class KeyViewSet(KeyManagementMixin, viewsets.GenericViewSet):
    serializer_class = KeySerializer
    # 404: an owner or organization named in the body that does not exist; 409: the key's state, or a taken name.
    write_error_codes = ["404", "409"]
    filter_backends = [StrictFilterBackend]
    filterset_class = KeyFilterSet
    pagination_class = LimitPagePagination
    lookup_field = "key_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9A-Za-z]{12}"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return ApiKey.objects.none()
        return self.manager.keys()

    def get_object(self) -> ApiKey:
        # Detail routes take no query parameters: one given is a typo, not to be ignored.
        validated_query(serializers.Serializer, self.request)
        key = self.get_queryset().filter(key_id=self.kwargs["id"]).first()
        if key is None:
            raise exceptions.NotFound(f"No key {self.kwargs['id']} among the keys you can see.")
        return key

    @extend_schema(summary="List keys", responses=KeySerializer(many=True))
    def list(self, request: Request) -> Response:
        self.require(Scope.READ)
        keys = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(KeySerializer(keys, many=True).data)

    @extend_schema(
        summary="Create (or import) a key", request=KeyCreateSerializer, responses={201: IssuedKeySerializer}
    )
    def create(self, request: Request) -> Response:
        self.require(Scope.WRITE)
        serializer = KeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        owner = self._owner(fields.pop("owner", None))
        fields["organization"] = self._organization(fields.get("organization"))
        custom_value = fields.pop("key", None)
        issued = services.key_create(owner=owner, actor=self.manager.actor, custom_value=custom_value, **fields)
        body = IssuedKeySerializer(issued.api_key).data
        body["key"] = issued.value
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(summary="Get a key", responses=KeySerializer)
    def retrieve(self, request: Request, id: str) -> Response:
        self.require(Scope.READ)
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(summary="Change a key", request=KeyUpdateSerializer, responses=KeySerializer)
    def partial_update(self, request: Request, id: str) -> Response:
        self.require(Scope.WRITE)
        key = self.get_object()
        serializer = KeyUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        new_status = changes.pop("status", None)
        if "organization" in changes:
            changes["organization"] = self._organization(changes["organization"])
        if changes:
            key = services.key_update(key, actor=self.manager.actor, **changes)
        if new_status == KeyStatus.SUSPENDED and key.status != KeyStatus.SUSPENDED:
            key = services.key_suspend(key, actor=self.manager.actor)
        elif new_status == KeyStatus.ACTIVE and key.status == KeyStatus.SUSPENDED:
            key = services.key_reactivate(key, actor=self.manager.actor)
        return Response(KeySerializer(key).data)

    @extend_schema(summary="Delete a key", responses={204: None})
    def destroy(self, request: Request, id: str) -> Response:
        self.require(Scope.WRITE)
        services.key_delete(self.get_object(), actor=self.manager.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Rotate a key", request=RotateSerializer, responses=IssuedKeySerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, id: str) -> Response:
        self.require(Scope.WRITE)
        key = self.get_object()
        serializer = RotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        grace_seconds = serializer.validated_data["grace_period_seconds"]
        issued = services.key_rotate(key, actor=self.manager.actor, grace_seconds=grace_seconds)
        body = IssuedKeySerializer(issued.api_key).data
        body["key"] = issued.value
        return Response(body, headers={"Cache-Control": "no-store"})

    @extend_schema(summary="Revoke a key", request=RevokeSerializer, responses=KeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, id: str) -> Response:
        self.require(Scope.WRITE)
        key = self.get_object()
        serializer = RevokeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = services.key_revoke(key, actor=self.manager.actor, reason=serializer.validated_data.get("reason", ""))
        return Response(KeySerializer(key).data)

    @extend_schema(summary="A key's usage", parameters=[UsageQuerySerializer], responses=UsageSerializer)
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, id: str) -> Response:
        days = validated_query(UsageQuerySerializer, request)["days"]
        self.require(Scope.READ)
        key = self.get_queryset().filter(key_id=id).first()
        if key is None:
            raise exceptions.NotFound(f"No key {id} among the keys you can see.")
        return Response(usage_summary(ApiKey.objects.filter(pk=key.pk), days))

    def _owner(self, username: str | None):
        if username is None:
            return self.manager.user
        if not self.manager.sees_all:
            # Said before looking the name up, so the answer tells nothing about who exists.
            raise exceptions.PermissionDenied("Only staff may create keys for someone else.")
        owner = get_user_model().objects.filter(username=username).first()
        if owner is None:
            raise exceptions.NotFound(f"No user {username!r}.")
        return owner

    def _organization(self, slug: str | None) -> Organization | None:
        if not slug:
            return None
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise exceptions.NotFound(f"No organization {slug!r}.")
        return organization


class KeyUsageView(KeyManagementMixin, ReadOnlyAPIView):
    query_serializer_class = UsageQuerySerializer

    @extend_schema(
        operation_id="keys_usage_all", summary="Usage of all your keys", tags=["API keys"], responses=UsageSerializer
    )
    def get(self, request: Request) -> Response:
        days = self.query_params(request)["days"]
        self.require(Scope.READ)
        return Response(usage_summary(self.manager.keys(), days))


class KeyValidateView(KeyManagementMixin, ReadOnlyAPIView):
    @extend_schema(
        summary="Check a key",
        description=(
            "Is this key valid for this endpoint and IP, and what remains of its limits. A valid key also gets "
            "a capability token (`ttl_seconds`, default 300, at most 3600) to forward instead of the key."
        ),
        tags=["API keys"],
        request=ValidateSerializer,
        responses=ValidationResultSerializer,
    )
    def post(self, request: Request) -> Response:
        self.query_params(request)
        self.require(Scope.READ)
        serializer = ValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.key_validate(
            data["key"],
            visible=self.manager.keys(),
            ip=data.get("ip") or client_ip(request._request),
            path=data["endpoint"],
            ttl_seconds=data["ttl_seconds"],
        )
        return Response(ValidationResultSerializer(result).data)


class JwksView(ReadOnlyAPIView):
    """The public keys of capability tokens (RFC 7517), for backends verifying them offline. No credentials."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="jwks",
        summary="Capability token keys (JWKS)",
        description=(
            "The keys that verify capability tokens, newest first. A new key is listed a minute before it signs, "
            "and an old one until the last token it signed has expired."
        ),
        tags=["API keys"],
        responses=JsonWebKeySetSerializer,
    )
    def get(self, request: Request) -> Response:
        self.query_params(request)
        response = Response({"keys": [public.as_jwk() for public in key_set.published(reload=True)]})
        # No older than the head start of a new key: a cached copy always holds the kid that signs.
        response["Cache-Control"] = f"public, max-age={ACTIVATION_DELAY_SECONDS}"
        return response


class ScopeCatalogView(KeyManagementMixin, ReadOnlyAPIView):
    @extend_schema(summary="Scopes a key can have", tags=["API keys"], responses=ScopeSerializer(many=True))
    def get(self, request: Request) -> Response:
        self.query_params(request)
        return Response(
            [
                {
                    "scope": scope.value,
                    "description": scope.label,
                    "includes": [s for s in Scope.values if SCOPE_RANK[s] <= SCOPE_RANK[scope.value]],
                    "grantable": SCOPE_RANK[scope.value] <= SCOPE_RANK[self.manager.scope],
                }
                for scope in Scope
            ]
        )


class CapabilityCatalogView(KeyManagementMixin, ReadOnlyAPIView):
    @extend_schema(summary="What a key form needs", tags=["API keys"], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        self.query_params(request)
        routes = throttling.api_routes()
        return Response(
            {
                "scopes": Scope.values,
                "your_scope": self.manager.scope,
                "statuses": KeyStatus.values,
                "fields": {
                    "name": {"type": "string", "max_length": 100, "unique_per_owner": True},
                    "description": {"type": "string", "max_length": 2000},
                    "allowed_endpoints": {"type": "list of path patterns", "example": ["/servers", "/server/*"]},
                    "blocked_endpoints": {"type": "list of path patterns", "example": ["/table/*"]},
                    "allowed_ips": {"type": "list of IPs or CIDR ranges", "example": ["203.0.113.0/24"]},
                    "credits_per_minute": {
                        "type": "integer",
                        "min": 1,
                        "default": settings.RATE_LIMIT_CREDITS_PER_MINUTE,
                    },
                    "daily_quota": {"type": "integer", "min": 1, "unit": "credits per UTC day"},
                    "expires_in": {"type": "integer", "unit": "seconds", "min": 60},
                    "expires_in_days": {"type": "integer", "min": 1, "max": 3650},
                    "expires_at": {"type": "datetime"},
                    "key": {"type": "string", "min_length": 16, "note": "import an existing key value"},
                },
                "rotation": {"grace_period_seconds": {"min": 0, "max": services.MAX_GRACE_SECONDS, "default": 0}},
                "expiry_warning_days": settings.KEEPER_KEY_EXPIRY_WARNING_DAYS,
                "endpoints": routes,
                "key_format": "keeper_<12-char id>_<32-char secret><6-char checksum>",
            }
        )


class KeyWatchView(KeyManagementMixin, ReadOnlyAPIView):
    """Server-sent events of changes to the caller's keys (the audit log, as it grows)."""

    renderer_classes = [EventStreamRenderer, *ReadOnlyAPIView.renderer_classes]

    class Parameters(serializers.Serializer):
        last_event_id = serializers.IntegerField(min_value=0, max_value=MAX_EVENT_ID, required=False)
        timeout = serializers.IntegerField(min_value=1, max_value=3600, required=False)

    query_serializer_class = Parameters

    def finalize_response(self, request: Request, response, *args, **kwargs):
        if isinstance(response, Response):
            # Errors are JSON like everywhere else, whatever the client asked for.
            request.accepted_renderer = ORJSONRenderer()
            request.accepted_media_type = ORJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        summary="Watch key changes",
        description=(
            "A text/event-stream of audit events for your keys (event: key.<action>). The stream closes "
            "after KEEPER_KEY_WATCH_SECONDS; reconnect with Last-Event-ID to continue."
        ),
        tags=["API keys"],
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The id of the last event received: resume after it (last_event_id wins).",
                pattern=_EVENT_ID.pattern,
            )
        ],
        responses={200: OpenApiResponse(description="text/event-stream")},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = self.query_params(request)
        self.require(Scope.READ)
        # Checked even when the query parameter wins: a malformed header is an error, never ignored.
        header = _last_event_id(request.META.get("HTTP_LAST_EVENT_ID"))
        after = params.get("last_event_id", header)
        if after is None:
            after = _latest_event_id()
        seconds = min(params.get("timeout", settings.KEEPER_KEY_WATCH_SECONDS), settings.KEEPER_KEY_WATCH_SECONDS)
        # One share per owner, whatever the credential: an owner's many keys (and session) would
        # otherwise take every slot of the process. KEEPER_API_KEYS entries, which share a synthetic
        # owner but are the operator's separate clients, count one by one.
        key = caller_of(request.user).api_key
        if key is not None and key.source == KeySource.BOOTSTRAP:
            holder = f"key:{key.key_id}"
        else:
            holder = f"user:{self.manager.user.get_username()}"
        events = watch_streams.open(holder, self._events(after, seconds))
        response = StreamingHttpResponse(events, content_type="text/event-stream")
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"
        return response

    def _events(self, after: int, seconds: int) -> Iterator[bytes]:
        manager = self.manager
        visible = Q(key__in=manager.keys()) | Q(key__isnull=True, owner_username=manager.user.get_username())
        deadline = time.monotonic() + seconds
        yield b"retry: 2000\n\n"
        while True:
            for event in AuditEvent.objects.filter(visible, id__gt=after).order_by("id")[:100]:
                after = event.id
                payload = orjson.dumps(AuditEventSerializer(event).data)
                yield b"id: %d\nevent: key.%s\ndata: %s\n\n" % (event.id, event.action.encode(), payload)
            if time.monotonic() >= deadline:
                return
            yield b": keep-alive\n\n"
            time.sleep(1.0)


def _last_event_id(header: str | None) -> int | None:
    """The Last-Event-ID header as an event id; None when absent. ASCII digits only: str.isdigit()
    also takes "²" (byte 0xB2 read as latin-1), which int() refuses, and int() refuses 4,300+ digits."""
    if header is None:
        return None
    if _EVENT_ID.fullmatch(header) is None:
        raise exceptions.ValidationError({"Last-Event-ID": ["Must be an event id: 1 to 18 ASCII digits."]})
    return int(header)


def _watch_limits() -> tuple[int, int, float]:
    return settings.KEEPER_STREAMS_PER_PROCESS, settings.KEEPER_STREAMS_PER_CALLER, settings.KEEPER_KEY_WATCH_SECONDS


watch_streams = StreamSlots(_watch_limits)


def _latest_event_id() -> int:
    latest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return latest or 0
