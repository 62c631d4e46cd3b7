"""Admin forms for API keys. Parsing only: the rules (IPs, path patterns, expiry) live in services."""

from typing import Any

from django import forms

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
