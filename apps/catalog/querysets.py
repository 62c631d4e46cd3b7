from datetime import datetime

from django.db import models

from apps.catalog import choices


class ServerQuerySet(models.QuerySet):
    def active(self) -> "ServerQuerySet":
        """Active servers that can be bought: status ACTIVE and at least one active price."""
        return self.filter(status=choices.Status.ACTIVE, min_price__isnull=False)

    def search(self, text: str) -> "ServerQuerySet":
        """Case-insensitive substring match on the id, name, API reference or display name."""
        return self.filter(
            models.Q(server_id__icontains=text)
            | models.Q(name__icontains=text)
            | models.Q(api_reference__icontains=text)
            | models.Q(display_name__icontains=text)
        )

    def by_reference(self, vendor_id: str, server: str) -> "ServerQuerySet":
        """A vendor's server by its id or its API reference (e.g. aws / p3.8xlarge)."""
        return self.filter(vendor_id=vendor_id).filter(models.Q(server_id=server) | models.Q(api_reference=server))


class SyncRunQuerySet(models.QuerySet):
    def succeeded(self) -> "SyncRunQuerySet":
        return self.filter(status=choices.SyncStatus.SUCCEEDED)

    def finished_since(self, since: datetime) -> "SyncRunQuerySet":
        return self.filter(finished_at__gte=since)

    def finished_before(self, until: datetime) -> "SyncRunQuerySet":
        return self.filter(finished_at__lt=until)

    def last_loaded(self):
        """The run whose data is in the catalog now (a skipped run reuses the data of the one before)."""
        return self.succeeded().order_by("-started_at", "-id").first()
