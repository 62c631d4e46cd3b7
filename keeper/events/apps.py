from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What Keeper tells callers about: events (catalog watches, keys, syncs) and their webhook deliveries."""

    name = "keeper.events"
    label = "events"
    verbose_name = "Events and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from keeper import admin
        from keeper.events.overview import webhooks_overview

        # Below the keys' traffic and the catalog's syncs.
        admin.register_overview_section(
            "webhooks", template="admin/events/staff_overview.html", build=webhooks_overview, position=30
        )
