from django.apps import AppConfig


class ThrottlingConfig(AppConfig):
    name = "apps.throttling"
    label = "throttling"
    verbose_name = "Rate limits"

    def ready(self) -> None:
        from apps.throttling import logins, schema  # noqa: F401  (the sign-in failure counter; the OpenAPI extensions)
        from apps.throttling.services import limiters
        from keeper import writes

        # A daily quota's count deferred while the database was locked (DatabaseCounter).
        writes.register("throttling.quota", lambda: limiters().database_counter.flush())
