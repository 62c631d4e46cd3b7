from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from apps.keys.choices import KeyStatus


class ApiKeyQuerySet(models.QuerySet):
    def for_verification(self, *, denials_at: datetime | None = None, **where: object) -> list:
        """Keys matching `where` (key_id=, id= or lookup_bucket=, with hash_kind=), with what a request needs.

        This is the hot path of every keyed request: one raw query (about a third of
        the ORM's cost, measured in bench/bench_keys.py) that also brings the owner's
        name, whether the owner is active and the organization's pool as `owner_username`,
        `owner_is_active`, `organization_slug`,
        `organization_credits`. With `denials_at`, also the key's capability-token deny
        entry in force at that time (apps.keys.denylist) as `denial_not_before_ms` and
        `denial_reason` (None without one), in the same query.
        """
        from django.apps import apps
        from django.contrib.auth import get_user_model

        from apps.accounts.models import Organization

        TokenDenial = apps.get_model("keys", "TokenDenial")  # noqa: N806 (a model, named as one)

        meta = self.model._meta
        users, organizations = get_user_model()._meta.db_table, Organization._meta.db_table
        columns = ", ".join(f'k."{field.column}"' for field in meta.concrete_fields)
        conditions = " AND ".join(f'k."{meta.get_field(name).column}" = %s' for name in where)
        denial_columns, denial_join, params = "", "", list(where.values())
        if denials_at is not None:
            denial_columns = ', d."not_before_ms" AS denial_not_before_ms, d."reason" AS denial_reason'
            denial_join = (
                f' LEFT JOIN "{TokenDenial._meta.db_table}" d ON d."key_id" = k."key_id" AND d."expires_at" > %s'
            )
            params.insert(0, denials_at)
        sql = (
            f'SELECT {columns}, u."username" AS owner_username, u."is_active" AS owner_is_active, '
            f'o."slug" AS organization_slug, '
            f'o."credits_per_minute" AS organization_credits{denial_columns} FROM "{meta.db_table}" k '
            f'JOIN "{users}" u ON u."id" = k."owner_id" LEFT JOIN "{organizations}" o ON o."id" = k."organization_id"'
            f"{denial_join} WHERE {conditions}"
        )
        return list(self.model.objects.raw(sql, params))

    def visible_to(self, user, *, sees_all: bool = False) -> "ApiKeyQuerySet":
        """Keys a user may see: their own and their organizations' (as admin), or all for admins."""
        if sees_all:
            return self.all()
        from apps.accounts.models import Membership

        admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("organization_id")
        return self.filter(models.Q(owner=user) | models.Q(organization_id__in=admin_of))

    def expiring_within(self, days: int, now=None) -> "ApiKeyQuerySet":
        now = now or timezone.now()
        return self.filter(status=KeyStatus.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(days=days))

    def past_expiry(self, now=None) -> "ApiKeyQuerySet":
        return self.filter(status=KeyStatus.ACTIVE, expires_at__lte=now or timezone.now())
