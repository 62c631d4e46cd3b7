from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from apps.keys import endpoints
from apps.keys.capability import DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS
from apps.keys.choices import KeyStatus, Scope
from apps.keys.models import ApiKey, AuditEvent
from apps.keys.services import MAX_GRACE_SECONDS
from apps.keys.signing import MAX_TOKEN_TTL_SECONDS
from keeper.api.serializers import StrictSerializerMixin

MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600


class KeySerializer(serializers.ModelSerializer):
    """A key as its owner sees it: everything but the secret."""

    id = serializers.CharField(source="key_id", read_only=True, help_text="The key's lookup id (part of the key).")
    masked = serializers.CharField(read_only=True, help_text="Prefix and last characters of the key.")
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    organization = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="The organization's slug, or null."
    )
    status = serializers.SerializerMethodField(help_text="active, suspended, expired or revoked.")
    expiring_soon = serializers.SerializerMethodField(help_text="Expires within the warning window.")
    rotation_grace_until = serializers.DateTimeField(
        source="previous_valid_until", read_only=True, allow_null=True, help_text="Until when the old secret works."
    )

    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "description", "masked", "owner", "organization", "scope",
            "allowed_endpoints", "blocked_endpoints", "allowed_ips", "credits_per_minute", "daily_quota",
            "expires_at", "status", "source", "expiring_soon", "expiry_warned_at", "rotation_grace_until",
            "created_at", "updated_at", "last_used_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, key: ApiKey) -> str:
        return key.effective_status()

    def get_expiring_soon(self, key: ApiKey) -> bool:
        return key.expiring_soon()


class IssuedKeySerializer(KeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown this once: store it now.")

    class Meta(KeySerializer.Meta):
        fields = ["key", *KeySerializer.Meta.fields]
        read_only_fields = fields


def _patterns(help_text: str) -> serializers.ListField:
    child = serializers.RegexField(
        regex=endpoints.PATTERN.pattern,
        max_length=endpoints.MAX_PATTERN_LENGTH,
        error_messages={"invalid": "A path pattern starts with / and has * as its only wildcard (e.g. /server/*)."},
    )
    return serializers.ListField(child=child, required=False, max_length=100, help_text=help_text)


class KeyWriteSerializer(StrictSerializerMixin, serializers.Serializer):
    """Fields a key's owner may set; expiry as one of `expires_in` (seconds), `expires_in_days` or `expires_at`."""

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    scope = serializers.ChoiceField(choices=Scope.choices, required=False)
    allowed_endpoints = _patterns("Path patterns the key may call, `*` the only wildcard; empty: all.")
    blocked_endpoints = _patterns("Path patterns refused even if allowed.")
    allowed_ips = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=100)
    credits_per_minute = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    daily_quota = serializers.IntegerField(min_value=1, max_value=1_000_000_000, required=False, allow_null=True)
    expires_in = serializers.IntegerField(min_value=60, max_value=MAX_EXPIRY_SECONDS, required=False)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Must be in the future.")
    organization = serializers.SlugField(required=False, allow_null=True, help_text="Organization slug.")

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        given = [name for name in ("expires_in", "expires_in_days", "expires_at") if name in attrs]
        if len(given) > 1:
            raise serializers.ValidationError({given[1]: [f"Give only one of {', '.join(given)}."]})
        if "expires_in" in attrs:
            attrs["expires_at"] = timezone.now() + timedelta(seconds=attrs.pop("expires_in"))
        elif "expires_in_days" in attrs:
            attrs["expires_at"] = timezone.now() + timedelta(days=attrs.pop("expires_in_days"))
        return attrs


class KeyCreateSerializer(KeyWriteSerializer):
    key = serializers.RegexField(
        regex=r"^[!-~]{16,256}$", required=False, write_only=True,
        error_messages={"invalid": "An imported key is 16 to 256 printable ASCII characters, without spaces."},
        help_text=(
            "Import a key value you already use (16 to 256 printable ASCII characters, not starting with "
            "keeper_; hashed with scrypt). Omit to generate one."
        ),
    )  # fmt: skip
    owner = serializers.CharField(required=False, help_text="Admins only: the owner's user name.")


class KeyUpdateSerializer(KeyWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)
    status = serializers.ChoiceField(
        choices=[KeyStatus.ACTIVE, KeyStatus.SUSPENDED], required=False,
        help_text="Suspend (suspended) or reactivate (active); revoke with POST /keys/{id}/revoke.",
    )  # fmt: skip


class RotateSerializer(StrictSerializerMixin, serializers.Serializer):
    grace_period_seconds = serializers.IntegerField(
        min_value=0, max_value=MAX_GRACE_SECONDS, default=0,
        help_text="How long the old secret keeps working (default 0: not at all).",
    )  # fmt: skip


class RevokeSerializer(StrictSerializerMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ValidateSerializer(StrictSerializerMixin, serializers.Serializer):
    key = serializers.CharField(max_length=256, write_only=True)
    endpoint = serializers.CharField(max_length=200, default="/servers", help_text="Path to check.")
    ip = serializers.IPAddressField(required=False, help_text="Client IP to check (default: yours).")
    ttl_seconds = serializers.IntegerField(
        min_value=MIN_TTL_SECONDS, max_value=MAX_TOKEN_TTL_SECONDS, default=DEFAULT_TTL_SECONDS,
        help_text="Lifetime of the capability token, in seconds (never beyond the key's own expiry).",
    )  # fmt: skip


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    key = KeySerializer(allow_null=True)
    credits_per_minute = serializers.IntegerField(allow_null=True)
    remaining_credits = serializers.IntegerField(allow_null=True)
    daily_quota = serializers.IntegerField(allow_null=True)
    remaining_quota = serializers.IntegerField(allow_null=True)
    capability_token = serializers.CharField(
        allow_null=True,
        help_text=(
            "A valid key only: a JWT (ES256) standing for the key, for `Authorization: Bearer` on the catalog API "
            "and for backends verifying it with /.well-known/jwks.json. Refused by Keeper once the key is revoked, "
            "suspended or changed; offline verifiers accept it until its `exp`."
        ),
    )
    capability_token_expires_at = serializers.DateTimeField(allow_null=True, help_text="The token's `exp`.")


class JsonWebKeySerializer(serializers.Serializer):
    kty = serializers.CharField(help_text="EC")
    crv = serializers.CharField(help_text="P-256")
    x = serializers.CharField()
    y = serializers.CharField()
    kid = serializers.CharField(help_text="The `kid` header of the tokens it verifies.")
    alg = serializers.CharField(help_text="ES256")
    use = serializers.CharField(help_text="sig")


class JsonWebKeySetSerializer(serializers.Serializer):
    keys = JsonWebKeySerializer(many=True, help_text="Newest first.")


class ScopeSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=Scope.choices)
    description = serializers.CharField()
    includes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices))
    grantable = serializers.BooleanField(help_text="Whether you may give a key this scope.")


class UsageQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=366, default=30, help_text="Days to cover (1 to 366).")


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    rate_limited = serializers.IntegerField()
    credits = serializers.IntegerField()


class EndpointUsageSerializer(serializers.Serializer):
    route = serializers.CharField()
    requests = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    rate_limited = serializers.IntegerField()
    credits = serializers.IntegerField()
    average_per_day = serializers.FloatField()
    top_endpoints = EndpointUsageSerializer(many=True)
    per_day = UsageDaySerializer(many=True)


class AuditEventSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="key_ref")

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "action", "key", "actor", "changes", "detail"]
        read_only_fields = fields
