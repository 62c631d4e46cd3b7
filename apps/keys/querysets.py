from datetime import timedelta

from django.db import models
from django.utils import timezone

from apps.keys.choices import KeyStatus


class ApiKeyQuerySet(models.QuerySet):
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
