from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created


def _log_queries(sender, connection, **kwargs) -> None:
    # Django logs SQL only when DEBUG is on; KEEPER_DEBUG asks for the log without
    # turning on DEBUG's tracebacks.
    connection.force_debug_cursor = True


class KeeperConfig(AppConfig):
    name = "keeper"
    verbose_name = "Keeper"

    def ready(self) -> None:
        from keeper.api import schema  # noqa: F401  (registers the OpenAPI extensions)

        if settings.KEEPER_DEBUG:
            connection_created.connect(_log_queries, dispatch_uid="keeper-log-queries")
