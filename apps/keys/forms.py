"""Admin forms for API keys. Parsing here; the rules (IPs, path patterns, expiry, the policy) live in services."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from apps.keys import policy, services
from apps.keys.models import ApiKey


class LinesField(forms.CharField):
    """A list of strings edited as a textarea, one per line (blank lines ignored)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return [str(item) for item in value]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class ApiKeyForm(forms.ModelForm):
    """The fields staff may set; the secret and its hashes are not among them."""

    allowed_endpoints = LinesField(
        label="Allowed endpoints",
        help_text="Path patterns the key may call, one per line, e.g. /server/*. Empty: all.",
    )
    blocked_endpoints = LinesField(
        label="Blocked endpoints", help_text="Path patterns refused even if allowed, one per line."
    )
    allowed_ips = LinesField(
        label="Allowed IPs", help_text="IP addresses or CIDR ranges, one per line, e.g. 10.0.0.0/8. Empty: any."
    )

    class Meta:
        model = ApiKey
        fields = [
            "name",
            "owner",
            "organization",
            "scope",
            "description",
            "allowed_endpoints",
            "blocked_endpoints",
            "allowed_ips",
            "credits_per_minute",
            "daily_quota",
            "expires_at",
        ]

    # Who saves: set by the admin for each request (ApiKeyAdmin.get_form).
    actor: policy.Actor

    def create_arguments(self) -> dict[str, Any]:
        """services.key_create's arguments: the fields given, the empty ones left to the service's defaults."""
        data = self.cleaned_data
        given = {name: data[name] for name in services.EDITABLE_FIELDS if data.get(name) not in (None, "", [])}
        return {**given, "owner": data["owner"], "name": data["name"], "scope": data["scope"]}

    def changes(self) -> dict[str, Any]:
        """services.key_update's arguments: the fields changed on the page."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in services.EDITABLE_FIELDS}

    def clean(self) -> dict[str, Any]:
        """The service's own rules, so a refusal shows on the page (on its field where the form has one)
        before anything is saved; the admin's save_model then writes through the same service."""
        data = super().clean()
        if self.errors:
            return data
        try:
            if self.instance.pk is None:
                arguments = self.create_arguments()
                del arguments["name"]
                services.key_create_check(actor=self.actor, **arguments)
            else:
                services.key_update_check(self.instance, actor=self.actor, **self.changes())
        except policy.NotAllowed as refusal:
            raise ValidationError(str(refusal)) from None
        except ValidationError as error:
            if not hasattr(error, "error_dict"):
                raise
            for field, messages in error.message_dict.items():
                if field in self.fields:
                    self.add_error(field, messages)
                else:
                    self.add_error(None, [f"{field}: {message}" for message in messages])
        return data


GRACE_PERIODS = [
    (0, "none: the old key stops working now"),
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "7 days"),
]


class RotateForm(forms.Form):
    grace_seconds = forms.TypedChoiceField(
        label="Old key keeps working for",
        choices=GRACE_PERIODS,
        coerce=int,
        initial=0,
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason (for the audit log)",
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
    )
