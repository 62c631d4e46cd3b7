"""Request bodies: StrictSerializerMixin refuses unknown fields and values of another JSON type,
and the OpenAPI document says so (additionalProperties: false, the JSON types)."""

import json

import pytest
from rest_framework import serializers

from keeper.api.serializers import StrictSerializerMixin


class Body(StrictSerializerMixin, serializers.Serializer):
    name = serializers.CharField(required=False)
    count = serializers.IntegerField(required=False)
    rate = serializers.FloatField(required=False)
    enabled = serializers.BooleanField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    limit = serializers.IntegerField(required=False, allow_null=True)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": 0}, "name"),
        ({"name": True}, "name"),
        ({"count": "5"}, "count"),
        ({"count": 5.0}, "count"),
        ({"count": True}, "count"),
        ({"rate": "2.5"}, "rate"),
        ({"rate": False}, "rate"),
        ({"enabled": "true"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"tags": "a"}, "tags"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_a_value_of_another_json_type_is_refused(data, field):
    # DRF alone takes all of these: 0 as "0", "5" and 5.0 as 5, "true" and 1 as True, "a" as ["a"]...
    body = Body(data=data)

    assert not body.is_valid()
    assert field in body.errors


def test_values_of_the_documented_json_types_are_taken():
    data = {"name": "n", "count": 5, "rate": 2, "enabled": False, "tags": ["a"], "limit": None}
    body = Body(data=data)

    assert body.is_valid(), body.errors
    assert body.validated_data == data


@pytest.fixture
def schema(db, api) -> dict:
    return json.loads(api.get("/openapi.json").content)


@pytest.mark.parametrize("component", ["ValidateRequest", "RotateRequest", "RevokeRequest", "KeyCreateRequest"])
def test_strict_request_bodies_document_that_other_properties_are_refused(schema, component):
    assert schema["components"]["schemas"][component]["additionalProperties"] is False


def test_an_ip_address_field_documents_both_protocols(schema):
    ip = schema["components"]["schemas"]["ValidateRequest"]["properties"]["ip"]

    assert ip["anyOf"] == [{"format": "ipv4"}, {"format": "ipv6"}]
