from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What Keeper tells callers about: events (catalog watches, keys, syncs) and their webhook deliveries."""

    name = "keeper.events"
    label = "events"
    verbose_name = "Events and webhooks"
    default_auto_field = "django.db.models.BigAutoField"
