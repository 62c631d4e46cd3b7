import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.keys.choices import KeyStatus, Scope
from apps.keys.models import ApiKey
from keeper.api.filters import MultipleValueFilter, OrderByFilter, PagingFilterSet

ORDERINGS = ["name", "created_at", "updated_at", "last_used_at", "expires_at", "scope", "status"]


class KeyFilterSet(PagingFilterSet):
    """Parameters of `GET /keys`."""

    defaults = {"order_by": "-created_at"}

    search = django_filters.CharFilter(method="filter_search", label="Text in the name, description or key prefix.")
    status = MultipleValueFilter(
        choices=KeyStatus.choices, method="filter_status", label="active, suspended, expired or revoked."
    )
    scope = MultipleValueFilter(field_name="scope", choices=Scope.choices, label="read, write or admin.")
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner's user name (admins).")
    order_by = OrderByFilter(
        fields=ORDERINGS,
        label="Sort by name, created_at (default -created_at), updated_at, last_used_at, expires_at, scope "
        "or status; a leading - sorts descending.",
    )

    class Meta:
        model = ApiKey
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value) | Q(prefix__icontains=value))

    def filter_status(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return queryset
        now = timezone.now()
        past = Q(expires_at__isnull=False, expires_at__lte=now)
        conditions = Q()
        for status in value:
            if status == KeyStatus.ACTIVE:
                conditions |= Q(status=KeyStatus.ACTIVE) & ~past
            elif status == KeyStatus.EXPIRED:
                conditions |= Q(status=KeyStatus.EXPIRED) | (Q(status=KeyStatus.ACTIVE) & past)
            else:
                conditions |= Q(status=status)
        return queryset.filter(conditions)
