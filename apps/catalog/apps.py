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
        # Below the keys' section: the last sync runs.
        admin.register_overview_section(
            "catalog", template="admin/catalog/staff_overview.html", build=catalog_overview, position=20
        )
