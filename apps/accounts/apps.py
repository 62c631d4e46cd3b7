from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from apps.accounts import bearer, verification

        # Compile the CEL rules, regexes and keys now: a mistake must stop start-up, not the first request.
        verification.get_verifier()
        bearer.get_bearer_verifiers()
        setting_changed.connect(verification.reset_on_setting_change, dispatch_uid="accounts-reset-verifier")
        setting_changed.connect(bearer.reset_on_setting_change, dispatch_uid="accounts-reset-bearer-verifiers")
