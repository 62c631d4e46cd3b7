"""The watches API: POST/GET /watches, GET/PATCH/DELETE /watches/{id}, GET /watches/{id}/events."""

from datetime import timedelta

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog import choices
from apps.catalog.models import Watch
from apps.catalog.watches import services
from apps.catalog.watches.serializers import (
    WatchCreateSerializer,
    WatchEventSerializer,
    WatchSerializer,
    WatchUpdateSerializer,
    WatchWithTokenSerializer,
)
from keeper.api.callers import Caller, IsAuthenticatedCaller, caller_of
from keeper.api.exceptions import error_body
from keeper.api.filters import PagingFilterSet, StrictFilterBackend
from keeper.api.generics import KeeperViewMixin, validated_query
from keeper.api.pagination import LimitPagePagination
from keeper.events.models import Event


class WatchFilterSet(PagingFilterSet):
    status = django_filters.ChoiceFilter(choices=choices.WatchStatus.choices, label="active or paused.")
    owner = django_filters.CharFilter(field_name="owner", label="The owner's user name (staff).")

    class Meta:
        model = Watch
        fields: list[str] = []


class WatchEventFilterSet(PagingFilterSet):
    class Meta:
        model = Event
        fields: list[str] = []


def refused(exc: services.WatchRefused) -> Response:
    body = error_body(exc.detail, "watch_refused" if exc.status == 400 else "too_many_watches")
    if exc.route_error is not None:
        body["query_error"] = exc.route_error
    return Response(body, status=exc.status)


@extend_schema(tags=["Watches"])
class WatchViewSet(KeeperViewMixin, viewsets.GenericViewSet):
    """A caller's watches: saved catalog queries re-run after each sync (README "Watches")."""

    permission_classes = [IsAuthenticatedCaller]
    serializer_class = WatchSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = WatchFilterSet
    pagination_class = LimitPagePagination
    lookup_value_regex = "[0-9]+"

    @property
    def caller(self) -> Caller:
        return caller_of(self.request.user)  # type: ignore[return-value] - IsAuthenticatedCaller

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Watch.objects.none()
        return services.watches_of(self.caller)

    def get_object(self) -> Watch:
        validated_query(serializers.Serializer, self.request)
        watch = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if watch is None:
            raise exceptions.NotFound(f"No watch {self.kwargs['pk']} among yours.")
        return watch

    @extend_schema(summary="List watches (yours; staff: all)", responses=WatchSerializer(many=True))
    def list(self, request: Request) -> Response:
        watches = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WatchSerializer(watches, many=True).data)

    @extend_schema(
        summary="Watch a catalog query",
        description=(
            "The query is run once as you (your key's limits and restrictions apply): a query you may not run "
            "is a 400 naming why, with the route's own answer in `query_error`. Its answer is the baseline the "
            "re-runs after each sync are compared with."
        ),
        request=WatchCreateSerializer,
        responses={201: WatchWithTokenSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = WatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            created = services.watch_create(self.caller, **serializer.validated_data)
        except services.WatchRefused as exc:
            return refused(exc)
        return Response(self._with_token(created.watch, created.feed_token), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Get a watch", responses=WatchSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(WatchSerializer(self.get_object()).data)

    @extend_schema(
        summary="Change, resume or re-aim a watch, or rotate its feed token",
        request=WatchUpdateSerializer,
        responses=WatchWithTokenSerializer,
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        watch = self.get_object()
        serializer = WatchUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        try:
            token = services.watch_update(
                watch,
                self.caller,
                name=fields.get("name"),
                query=fields.get("query"),
                resume=fields.get("status") == choices.WatchStatus.ACTIVE,
                rotate_feed_token=fields.get("rotate_feed_token", False),
            )
        except services.WatchRefused as exc:
            return refused(exc)
        watch.refresh_from_db()
        return Response(self._with_token(watch, token) if token else WatchSerializer(watch).data)

    @extend_schema(summary="Delete a watch", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _with_token(watch: Watch, token: str) -> dict:
        body = WatchSerializer(watch).data
        body["feed_token"] = token
        body["feed_url"] = f"/watches/{watch.pk}/events.atom?token={token}"
        return body


@extend_schema(tags=["Watches"])
class WatchEventListView(KeeperViewMixin, generics.GenericAPIView):
    """GET /watches/{id}/events: the watch's events, newest first, paged."""

    permission_classes = [IsAuthenticatedCaller]
    serializer_class = WatchEventSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = WatchEventFilterSet
    pagination_class = LimitPagePagination

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        watch = services.watches_of(caller_of(self.request.user)).filter(pk=self.kwargs["pk"]).first()
        if watch is None:
            raise exceptions.NotFound(f"No watch {self.kwargs['pk']} among yours.")
        return watch_events(watch)

    @extend_schema(summary="A watch's events (newest first)", responses=WatchEventSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        events = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WatchEventSerializer(events, many=True).data)


def watch_events(watch: Watch) -> QuerySet[Event]:
    """The watch's events of the last KEEPER_EVENTS_DAYS days, newest first."""
    events = Event.objects.filter(subject=watch.subject, owner=watch.owner).order_by("-created_at", "-id")
    days = getattr(settings, "KEEPER_EVENTS_DAYS", None)
    if days:
        events = events.filter(created_at__gte=timezone.now() - timedelta(days=days))
    return events
