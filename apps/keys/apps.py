from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "apps.keys"
    label = "keys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.keys import bootstrap

        post_migrate.connect(bootstrap.merge_after_migrate, sender=self, dispatch_uid="keys-bootstrap")
        self._defer_writes()
        self._show_on_the_overview()
        self._rebuild_key_callers()

    @staticmethod
    def _defer_writes() -> None:
        """What a gunicorn worker's flusher writes behind the requests (keeper/writes.py)."""
        from apps.keys.bookkeeping import key_bookkeeping
        from apps.keys.traffic import traffic_buffer
        from apps.keys.usage import usage_buffer
        from keeper import writes

        writes.register("keys.bookkeeping", key_bookkeeping.flush)
        writes.register("keys.usage", usage_buffer.flush, flush_due=usage_buffer.flush_if_due)
        writes.register("keys.traffic", traffic_buffer.flush, flush_due=traffic_buffer.flush_if_due)

    @staticmethod
    def _rebuild_key_callers() -> None:
        """Work done later for a key's caller (watches) runs as the key stands then (apps/keys/callers.py)."""
        from apps.keys.callers import LOADER
        from keeper.api.callers import register_caller_loader

        register_caller_loader(LOADER)

    @staticmethod
    def _show_on_the_overview() -> None:
        """The staff overview's first section (keeper/admin.py): traffic, top callers, keys expiring soon."""
        from apps.keys.overview import keys_overview
        from keeper import admin

        admin.register_overview_section(
            "keys", template="admin/keys/staff_overview.html", build=keys_overview, position=10
        )
