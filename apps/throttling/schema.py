"""OpenAPI of PATCH /config: the flat and the nested body as two closed shapes, so exactly one matches."""

from drf_spectacular.extensions import OpenApiSerializerExtension


class GlobalRateLimitSchema(OpenApiSerializerExtension):
    target_class = "apps.throttling.serializers.GlobalRateLimitSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            # Unknown keys are a 400; saying so also keeps a nested body from matching the flat shape.
            schema["additionalProperties"] = False
        return schema


class NestedGlobalRateLimitSchema(OpenApiSerializerExtension):
    target_class = "apps.throttling.serializers.NestedGlobalRateLimitSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        # "api" is what tells this shape from the flat one, even in a PATCH.
        schema["required"] = ["api"]
        schema["additionalProperties"] = False
        return schema
