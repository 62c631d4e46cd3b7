"""keeper.api.generics.validated_query: an empty query string read once per serializer where that is safe."""

import itertools

import pytest
from django.http import QueryDict
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from keeper.api.generics import validated_query


def request_for(query: str = "") -> Request:
    return Request(RequestFactory().get(f"/anything{query}"))


class FixedDefaults(serializers.Serializer):
    currency = serializers.ChoiceField(choices=["USD", "EUR"], default="USD")
    days = serializers.IntegerField(default=30, min_value=1, max_value=90)
    only_active = serializers.BooleanField(default=True)


def read_by_drf(serializer_class: type[serializers.Serializer], query: str = "") -> dict:
    serializer = serializer_class(data=QueryDict(query))
    assert serializer.is_valid(), serializer.errors
    return dict(serializer.validated_data)


def test_an_empty_query_reads_what_drf_reads_and_each_caller_gets_its_own_dict():
    expected = read_by_drf(FixedDefaults)
    assert set(expected) == {"currency", "days", "only_active"}
    first = validated_query(FixedDefaults, request_for())
    assert first == expected
    first["days"] = 1
    assert validated_query(FixedDefaults, request_for()) == expected


def test_given_parameters_are_still_validated_in_full():
    given = validated_query(FixedDefaults, request_for("?currency=EUR&days=7"))
    assert given == read_by_drf(FixedDefaults, "currency=EUR&days=7")
    assert (given["currency"], given["days"]) == ("EUR", 7)
    with pytest.raises(ValidationError) as refused:
        validated_query(FixedDefaults, request_for("?days=0&colour=red"))
    assert set(refused.value.detail) == {"days", "colour"}


def test_a_callable_default_is_read_on_every_request():
    counter = itertools.count()

    class Counted(serializers.Serializer):
        number = serializers.IntegerField(default=lambda: next(counter))

    assert [validated_query(Counted, request_for())["number"] for _ in range(3)] == [0, 1, 2]


def test_a_required_parameter_left_out_is_refused_every_time():
    class Required(serializers.Serializer):
        text = serializers.CharField()

    for _ in range(2):
        with pytest.raises(ValidationError) as refused:
            validated_query(Required, request_for())
        assert list(refused.value.detail) == ["text"]


def test_a_serializer_with_validation_of_its_own_runs_it_on_every_request():
    calls = []

    class Validating(serializers.Serializer):
        days = serializers.IntegerField(default=30)

        def validate(self, attrs):
            calls.append(attrs)
            return attrs

    validated_query(Validating, request_for())
    validated_query(Validating, request_for())
    assert len(calls) == 2
