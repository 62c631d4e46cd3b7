from django.apps import AppConfig


class ThrottlingConfig(AppConfig):
    name = "apps.throttling"
    label = "throttling"
    verbose_name = "Rate limits"
