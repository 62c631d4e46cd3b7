from typing import Any

from rest_framework import serializers


class StrictSerializerMixin:
    """Refuses fields the serializer does not know (a typo must not be silently ignored)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            read_only = sorted(name for name in self.initial_data if self.fields[name].read_only)
            if read_only:
                raise serializers.ValidationError({name: ["This field is read-only."] for name in read_only})
        return super().validate(attrs)
