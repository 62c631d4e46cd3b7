from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from apps.catalog.metrics import CATALOG_AGE, CATALOG_AGE_HELP, catalog_age_seconds
        from apps.catalog.overview import catalog_overview
        from keeper import admin
        from keeper.observability import metrics

        metrics.gauge_at_scrape(CATALOG_AGE, CATALOG_AGE_HELP, catalog_age_seconds)
        self._evaluate_watches_after_syncs()
        # Below the keys' section: the last sync runs.
        admin.register_overview_section(
            "catalog", template="admin/catalog/staff_overview.html", build=catalog_overview, position=20
        )

    @staticmethod
    def _evaluate_watches_after_syncs() -> None:
        """A sync that loaded a catalog asks for the watches' evaluation when it commits (apps/catalog/watches)."""
        from django.db.models.signals import post_save

        from apps.catalog.models import SyncRun
        from apps.catalog.watches.signals import sync_saved

        post_save.connect(sync_saved, sender=SyncRun, dispatch_uid="catalog-watches-after-sync")
