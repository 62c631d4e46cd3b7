from typing import Any

from rest_framework import serializers

# The JSON type each kind of field takes. DRF is laxer (0 is taken as "0", "5" or true as a
# number), which the OpenAPI document, generated from the same fields, does not allow.
JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.CharField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ListField, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
]


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why `value` is not of the JSON type `field` documents, or None when it is."""
    if value is None:
        return None  # the field's allow_null decides
    for field_class, types, name in JSON_TYPES:
        if isinstance(field, field_class):
            if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
                return None
            return f"Must be {name}."
    return None


BLANK_MESSAGE = "Give a value or leave the parameter out."


def blank_parameters(serializer: serializers.Serializer, query_params: Any) -> list[str]:
    """Query parameters given empty (`?page=`) whose field is not text.

    DRF reads an empty query parameter as not given (so `?page=` was page 1); the OpenAPI
    types (integer, boolean, enum) have no empty value, and the Spare Cores API refuses it.
    """
    return sorted(
        name
        for name, field in serializer.fields.items()
        if name in query_params and not isinstance(field, serializers.CharField) and "" in query_params.getlist(name)
    )


class StrictSerializerMixin:
    """Refuses unknown fields and values of another JSON type (a typo must not be silently ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors = {}
            for name, value in data.items():
                field = self.fields.get(name)
                message = None if field is None or field.read_only else json_type_error(field, value)
                if message:
                    errors[name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            read_only = sorted(name for name in self.initial_data if self.fields[name].read_only)
            if read_only:
                raise serializers.ValidationError({name: ["This field is read-only."] for name in read_only})
        return super().validate(attrs)


class ErrorSerializer(serializers.Serializer):
    """The one error body (keeper/api/exceptions.py), as documented for every 4xx and 503."""

    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(help_text="What went wrong, for programs: invalid, not_found, throttled, ...")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: the messages for each bad parameter or field.",
    )
