import math
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from apps.throttling.models import RATE_BURST_MAX, RATE_BURST_MIN, RATE_LIMIT_MAX, RATE_LIMIT_MIN, GlobalRateLimit


class StrictFloatField(serializers.FloatField):
    """A JSON number only: DRF's FloatField also takes true/false (as 1.0/0.0) and numeric strings."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: DRF's IntegerField also takes 5.0 and "5"."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def _refuse_unknown_keys(serializer: serializers.Serializer, data: Any) -> None:
    # Checked on the data this serializer is given, so it holds for a nested serializer too
    # (StrictSerializerMixin reads initial_data, which only the outermost serializer has).
    if not isinstance(data, Mapping):
        return
    errors = {}
    for name in data:
        if name not in serializer.fields:
            errors[name] = ["Unknown field."]
        elif serializer.fields[name].read_only:
            errors[name] = ["This field is read-only."]
    if errors:
        raise serializers.ValidationError(errors)


class GlobalRateLimitSerializer(serializers.ModelSerializer):
    """The global bucket: what GET /config answers, and the flat body of PATCH /config."""

    rate_limit = StrictFloatField(
        min_value=RATE_LIMIT_MIN,
        max_value=RATE_LIMIT_MAX,
        help_text=(
            f"Requests per second the whole API admits, refilled continuously: a JSON number from "
            f"{RATE_LIMIT_MIN:g} to {RATE_LIMIT_MAX:,.0f} (not a string or a boolean)."
        ),
    )
    rate_burst = StrictIntegerField(
        min_value=RATE_BURST_MIN,
        max_value=RATE_BURST_MAX,
        help_text=(
            f"Bucket size, the requests admitted at once: a JSON integer from {RATE_BURST_MIN} to {RATE_BURST_MAX:,}."
        ),
    )

    class Meta:
        model = GlobalRateLimit
        fields = ["rate_limit", "rate_burst", "updated_at"]
        read_only_fields = ["updated_at"]

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        _refuse_unknown_keys(self, data)
        return super().to_internal_value(data)


class NestedGlobalRateLimitSerializer(serializers.Serializer):
    """The same change under "api", the shape of the Spare Cores API's configuration."""

    api = GlobalRateLimitSerializer(partial=True, help_text="rate_limit and/or rate_burst, as in the flat body.")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping) and "api" in data:
            flat_names = set(self.fields["api"].fields)
            beside = sorted(name for name in data if name != "api")
            if beside:
                raise serializers.ValidationError(
                    {
                        name: ["Give the values either flat or under api, not both."]
                        if name in flat_names
                        else ["Unknown field."]
                        for name in beside
                    }
                )
        _refuse_unknown_keys(self, data)
        return super().to_internal_value(data)


def global_limit_changes(data: Any) -> dict[str, Any]:
    """The validated changes of a PATCH /config body, flat or under "api"; ValidationError otherwise."""
    if isinstance(data, Mapping) and "api" in data:
        nested = NestedGlobalRateLimitSerializer(data=data, partial=True)
        nested.is_valid(raise_exception=True)
        return dict(nested.validated_data["api"])
    flat = GlobalRateLimitSerializer(data=data, partial=True)
    flat.is_valid(raise_exception=True)
    return dict(flat.validated_data)
