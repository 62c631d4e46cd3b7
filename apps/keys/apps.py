from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "apps.keys"
    label = "keys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.keys import bootstrap

        post_migrate.connect(bootstrap.merge_after_migrate, sender=self, dispatch_uid="keys-bootstrap")
