"""`/events` and `/webhooks`: a caller's events and the endpoints they are delivered to.

Every caller sees only what has its owner (Caller.owner); staff see all. Someone else's endpoint is a 404,
as one that does not exist.
"""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from keeper.api.callers import Caller, IsAuthenticatedCaller, caller_of
from keeper.api.filters import PagingFilterSet, StrictFilterBackend
from keeper.api.generics import KeeperViewMixin, ReadOnlyListAPIView, validated_query
from keeper.api.pagination import LimitPagePagination
from keeper.events import services
from keeper.events.filters import DeliveryFilterSet, EventFilterSet
from keeper.events.models import Event, WebhookDelivery, WebhookEndpoint
from keeper.events.serializers import (
    DeliverySerializer,
    EventSerializer,
    IssuedWebhookSerializer,
    WebhookCreateSerializer,
    WebhookSerializer,
    WebhookUpdateSerializer,
)

TAG = "Events and webhooks"
NO_STORE = {"Cache-Control": "no-store"}


def sees_all(caller: Caller) -> bool:
    """Staff (and admin-scoped keys, as IsStaffCaller) see every owner's events and endpoints."""
    return caller.is_staff or caller.scope == "admin"


def visible_events(caller: Caller) -> QuerySet:
    """The events `caller` may read, newest first."""
    events = Event.objects.order_by("-created_at", "-id")
    return events if sees_all(caller) else events.filter(owner=caller.owner)


@extend_schema(tags=[TAG])
class EventListView(ReadOnlyListAPIView):
    permission_classes = [IsAuthenticatedCaller]
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    pagination_class = LimitPagePagination

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        return visible_events(caller_of(self.request.user))

    @extend_schema(summary="Your events, newest first", responses=EventSerializer(many=True))
    def get(self, request: Request) -> Response:
        events = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(EventSerializer(events, many=True).data)


@extend_schema(tags=[TAG])
class WebhookViewSet(KeeperViewMixin, viewsets.GenericViewSet):
    permission_classes = [IsAuthenticatedCaller]
    serializer_class = WebhookSerializer
    # 409: the endpoint limit reached, or a disabled endpoint asked to send.
    write_error_codes = ["404", "409"]
    pagination_class = LimitPagePagination
    filter_backends = [StrictFilterBackend]
    lookup_url_kwarg = "id"
    lookup_value_regex = "wh_[0-9a-f]{24}"

    @property
    def caller(self) -> Caller:
        return caller_of(self.request.user)

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            # The deliveries route lists (and its FilterSet filters) deliveries, not endpoints.
            model = WebhookDelivery if self.action == "deliveries" else WebhookEndpoint
            return model.objects.none()
        endpoints = WebhookEndpoint.objects.order_by("-created_at", "-id")
        return endpoints if sees_all(self.caller) else endpoints.filter(owner=self.caller.owner)

    def get_object(self) -> WebhookEndpoint:
        if self.action != "deliveries":
            # Detail routes take no query parameters: one given is a typo, not to be ignored.
            validated_query(serializers.Serializer, self.request)
        endpoint = self.get_queryset().filter(public_id=self.kwargs["id"]).first()
        if endpoint is None:
            raise exceptions.NotFound(f"No webhook endpoint {self.kwargs['id']} among yours.")
        return endpoint

    @property
    def filterset_class(self) -> type[PagingFilterSet]:
        return DeliveryFilterSet if getattr(self, "action", None) == "deliveries" else _PagingOnly

    @extend_schema(summary="List your webhook endpoints", responses=WebhookSerializer(many=True))
    def list(self, request: Request) -> Response:
        endpoints = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WebhookSerializer(endpoints, many=True).data)

    @extend_schema(
        summary="Add a webhook endpoint (its secret is shown once)",
        request=WebhookCreateSerializer,
        responses={201: IssuedWebhookSerializer},
    )
    def create(self, request: Request) -> Response:
        validated_query(serializers.Serializer, request)
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_create(
            owner=self.caller.owner, staff=sees_all(self.caller), **body.validated_data
        )
        return Response(_issued(endpoint, secret), status=status.HTTP_201_CREATED, headers=NO_STORE)

    @extend_schema(summary="Get a webhook endpoint", responses=WebhookSerializer)
    def retrieve(self, request: Request, id: str) -> Response:
        return Response(WebhookSerializer(self.get_object()).data)

    @extend_schema(summary="Change a webhook endpoint", request=WebhookUpdateSerializer, responses=WebhookSerializer)
    def partial_update(self, request: Request, id: str) -> Response:
        endpoint = self.get_object()
        body = WebhookUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = services.webhook_update(endpoint, staff=sees_all(self.caller), **body.validated_data)
        return Response(WebhookSerializer(endpoint).data)

    @extend_schema(summary="Delete a webhook endpoint", responses={204: None})
    def destroy(self, request: Request, id: str) -> Response:
        services.webhook_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the signing secret (the new one is shown once)",
        request=None,
        responses=IssuedWebhookSerializer,
    )
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request: Request, id: str) -> Response:
        endpoint, secret = services.webhook_rotate_secret(self.get_object())
        return Response(_issued(endpoint, secret), headers=NO_STORE)

    @extend_schema(
        summary="Send a webhook.test event to this endpoint", request=None, responses={202: DeliverySerializer}
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, id: str) -> Response:
        delivery = services.webhook_send_test(self.get_object())
        return Response(DeliverySerializer(_delivery(delivery.pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The endpoint's deliveries, newest first, with every attempt",
        responses=DeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, id: str) -> Response:
        endpoint = self.get_object()
        found = self.paginate_queryset(self.filter_queryset(_deliveries().filter(endpoint=endpoint)))
        return self.get_paginated_response(DeliverySerializer(found, many=True).data)

    @extend_schema(
        summary="Send a delivery again (same webhook-id, a new retry schedule)",
        request=None,
        responses={202: DeliverySerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>dlv_[0-9a-f]{24})/retry",
        url_name="delivery-retry",
    )
    def retry(self, request: Request, id: str, delivery_id: str) -> Response:
        endpoint = self.get_object()
        delivery = WebhookDelivery.objects.select_related("endpoint").filter(endpoint=endpoint, public_id=delivery_id)
        found = delivery.first()
        if found is None:
            raise exceptions.NotFound(f"No delivery {delivery_id} of webhook endpoint {id}.")
        services.delivery_retry(found)
        return Response(DeliverySerializer(_delivery(found.pk)).data, status=status.HTTP_202_ACCEPTED)


class _PagingOnly(PagingFilterSet):
    """Parameters of `GET /webhooks`: the page only."""

    class Meta:
        model = WebhookEndpoint
        fields: list[str] = []


def _deliveries() -> QuerySet:
    return (
        WebhookDelivery.objects.select_related("endpoint", "event")
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-id")
    )


def _delivery(pk: int) -> WebhookDelivery:
    return _deliveries().get(pk=pk)


def _issued(endpoint: WebhookEndpoint, secret: str) -> dict:
    """The endpoint with its secret, as IssuedWebhookSerializer documents it."""
    return {**WebhookSerializer(endpoint).data, "secret": secret}
