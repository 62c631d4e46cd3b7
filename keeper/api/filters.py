"""FilterSet plumbing shared by every list endpoint.

Query strings are validated here, never parsed by hand: unknown parameters,
malformed numbers, booleans and enum values are all 400s naming the parameter.
"""

import copy
import re
from typing import Any

import django_filters
from django import forms
from django.core.validators import MaxValueValidator, ProhibitNullCharactersValidator
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from drf_spectacular.drainage import set_override
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from keeper.api.pagination import MAX_PAGE, LimitField, Page
from keeper.api.serializers import BLANK_MESSAGE

MAX_VALUE_LENGTH = 200
# Numbers above this are refused. It is far above any catalog value, and small enough that the
# integers near it are exact as floats: django-filter's own cap, 1e50, let 10**50 + 1 through
# (it compares equal to the float 1e50), so "at most" meant one thing to the API, another to OpenAPI.
MAX_NUMBER = 10**15
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class StrictBooleanField(forms.Field):
    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        try:
            return _BOOLEANS[str(value).strip().lower()]
        except KeyError:
            raise forms.ValidationError("Must be true or false.", code="invalid") from None


class DocumentedType:
    """Documents the parameter's own type and bounds in OpenAPI, not the model column's (GB given, MiB stored)."""

    openapi_type = "string"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        schema: dict[str, Any] = {"type": self.openapi_type, "description": str(self.label or "")}
        if self.extra.get("min_value") is not None:
            schema["minimum"] = self.extra["min_value"]
        # Number filters also refuse values above get_max_validator(), whatever their max_value.
        validator = self.get_max_validator() if hasattr(self, "get_max_validator") else None
        maxima = [self.extra.get("max_value"), getattr(validator, "limit_value", None)]
        maxima = [bound for bound in maxima if bound is not None]
        if maxima:
            schema["maximum"] = min(maxima)
        set_override(self, "field", schema)


class BooleanFilter(DocumentedType, django_filters.BooleanFilter):
    """A boolean that rejects anything but true/false/1/0/yes/no (django-filter silently ignores junk)."""

    field_class = StrictBooleanField
    openapi_type = "boolean"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class NumberFilter(DocumentedType, django_filters.NumberFilter):
    """A number within ±MAX_NUMBER, unless narrower bounds are given.

    The lower bound matters too: -1e308 GB scaled to MiB is -inf, which no column can be compared with.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -MAX_NUMBER)
        super().__init__(*args, **kwargs)

    def get_max_validator(self) -> MaxValueValidator:
        return MaxValueValidator(MAX_NUMBER)


class IntegerFilter(NumberFilter):
    field_class = forms.IntegerField
    openapi_type = "integer"


class FloatFilter(NumberFilter):
    field_class = forms.FloatField
    openapi_type = "number"


class ScaledFloatFilter(FloatFilter):
    """A minimum given in one unit and stored in another (GB in the query, MiB in the table)."""

    def __init__(self, *args, scale: float, **kwargs):
        self.scale = scale
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        return super().filter(qs, None if value is None else value * self.scale)


class FreeMultipleChoiceField(forms.MultipleChoiceField):
    """Any values: for catalog-driven lists (CPU families, GPU models) that change with the data."""

    default_validators = [ProhibitNullCharactersValidator()]

    def valid_value(self, value: str) -> bool:
        return len(value) <= MAX_VALUE_LENGTH

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        for item in value:
            ProhibitNullCharactersValidator()(item)


class EnumMultipleChoiceField(forms.MultipleChoiceField):
    """Enum values as the Spare Cores API spells them (x86_64, nvme ssd) or as upstream's files store
    them (X86_64, NVME_SSD: the value in capitals, words joined by _), any case."""

    def to_python(self, value: object) -> list[str]:
        values = super().to_python(value)
        if not values:
            # Not given: the choices (read from the catalog for some) are not needed.
            return values
        aliases: dict[str, str] = {}
        for stored, label in self.choices:
            stored = str(stored)
            for spelling in (stored, str(label), re.sub(r"\W+", "_", stored)):
                aliases[spelling.lower()] = stored
        return [aliases.get(item.lower(), item) for item in values]


class MultipleValueFilter(django_filters.MultipleChoiceFilter):
    """Repeated keys (`?vendor=aws&vendor=gcp`) matching any of the values.

    With `choices`, values outside them are a 400; without, any value is accepted.
    """

    def __init__(self, *args, **kwargs):
        self.field_class = EnumMultipleChoiceField if "choices" in kwargs else FreeMultipleChoiceField
        super().__init__(*args, **kwargs)
        if "choices" not in kwargs:
            # The limit FreeMultipleChoiceField applies, not the model column's max_length.
            schema = {"type": "string", "maxLength": MAX_VALUE_LENGTH, "description": str(self.label or "")}
            set_override(self, "field", schema)

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class StrictFilterSet(FilterSet):
    """A FilterSet that applies documented defaults and rejects parameters it does not know.

    `extra_parameters` names query parameters handled elsewhere (pagination).
    """

    defaults: dict[str, str] = {}
    extra_parameters: frozenset[str] = frozenset()
    _form_classes: dict[tuple, type] = {}

    def __init__(self, data: QueryDict | None = None, queryset=None, *, request=None, prefix=None):
        if data is not None and self.defaults:
            data = data.copy()
            for key, value in self.defaults.items():
                if key not in data:
                    data[key] = value
        # django-filter deep-copies all of its filters and validates a form of all of them on
        # every request: for /servers, ~45 filters cost ~7 ms when a request gives three. Only the
        # given ones (and the defaults) are copied, shallowly, and validated.
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        names = [name for name in self.base_filters if name in self.data] if self.is_bound else self.base_filters
        self.filters = {name: copy.copy(self.base_filters[name]) for name in names}
        for filter_ in self.filters.values():
            filter_.model = queryset.model
            filter_.parent = self
            if getattr(filter_, "_method", None) is not None:
                # Rebinds the method to this copy (the shallow copy's still points at the declaration).
                filter_.method = filter_._method

    def get_form_class(self) -> type:
        key = (type(self), tuple(self.filters))
        form_class = self._form_classes.get(key)
        if form_class is None:
            form_class = self._form_classes[key] = super().get_form_class()
        return form_class

    def unknown_parameters(self) -> list[str]:
        if self.data is None:
            return []
        return sorted(set(self.data) - set(self.base_filters) - set(self.extra_parameters))

    def blank_parameters(self) -> list[str]:
        """Numbers, booleans and choices given without a value (`?order_by=`).

        A form field takes an empty value for "not given"; here it is refused, as the Spare
        Cores API refuses it and as the OpenAPI types say (an empty string is no number, no
        boolean, no member of an enumeration). Free text may be empty: it then filters nothing.
        """
        if self.data is None:
            return []
        return sorted(
            name
            for name, field in self.form.fields.items()
            if name in self.data
            and not isinstance(field, (forms.CharField, FreeMultipleChoiceField))
            and "" in _values(self.data, name)
        )

    @property
    def params(self) -> dict[str, Any]:
        """The validated values, for parameters that shape the response rather than filter it."""
        return self.form.cleaned_data


class SerializerValueField(forms.Field):
    """A form field that converts and checks its value with a DRF serializer field (same rules, same messages)."""

    def __init__(self, *, serializer_field: serializers.Field, **kwargs: Any) -> None:
        self.serializer_field = serializer_field
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self.serializer_field.run_validation(value)
        except serializers.ValidationError as exc:
            raise forms.ValidationError([str(message) for message in exc.detail]) from None


class PageFilter(django_filters.Filter):
    """A page parameter (`limit`, `page`, `add_total_count_header`): validated here, applied by the paginator."""

    field_class = SerializerValueField

    def __init__(self, serializer_field: serializers.Field, openapi_type: str) -> None:
        super().__init__(serializer_field=serializer_field)
        # Documented by LimitPagePagination.get_schema_operation_parameters, whose parameters win.
        set_override(self, "field", {"type": openapi_type})

    def filter(self, qs: Any, value: Any) -> Any:
        return qs


class OrderByFilter(django_filters.ChoiceFilter):
    """`order_by`: one of `fields`, a leading `-` sorting descending; ties by `tiebreak` so pages are stable.

    Give the FilterSet a default for it (StrictFilterSet.defaults): then every list is ordered.
    """

    def __init__(self, *args: Any, fields: list[str], tiebreak: str = "-id", **kwargs: Any) -> None:
        kwargs.setdefault("choices", [(f"{sign}{name}", f"{sign}{name}") for name in fields for sign in ("", "-")])
        kwargs.setdefault("empty_label", None)
        self.tiebreak = tiebreak
        super().__init__(*args, **kwargs)

    def filter(self, qs: Any, value: Any) -> Any:
        return qs.order_by(value, self.tiebreak) if value else qs


class PagingFilterSet(StrictFilterSet):
    """A list FilterSet that validates the page parameters with the filters, in the one validation of a
    query string; `paging` is the validated page, which LimitPagePagination reads."""

    limit = PageFilter(LimitField(required=False), "integer")
    page = PageFilter(serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE), "integer")
    add_total_count_header = PageFilter(serializers.BooleanField(required=False), "boolean")

    @property
    def paging(self) -> Page:
        data = self.form.cleaned_data
        return Page(data.get("limit"), data.get("page") or 1, bool(data.get("add_total_count_header")))


def _values(data: Any, name: str) -> list[str]:
    return data.getlist(name) if hasattr(data, "getlist") else [data[name]]


class StrictFilterBackend(DjangoFilterBackend):
    """Validates the whole query string (400 naming each bad parameter) and keeps the FilterSet on the view."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.validated_filterset(request, queryset, view)
        return queryset if filterset is None else filterset.qs

    def validated_filterset(self, request, queryset, view) -> FilterSet | None:
        """The view's FilterSet over the whole query string (a 400 naming each bad parameter), kept on the view."""
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors: dict[str, list[str]] = {}
        if not filterset.is_valid():
            errors.update({name: [str(m) for m in messages] for name, messages in filterset.errors.items()})
        if isinstance(filterset, StrictFilterSet):
            errors.update({name: ["Unknown query parameter."] for name in filterset.unknown_parameters()})
            errors.update({name: [BLANK_MESSAGE] for name in filterset.blank_parameters()})
        if errors:
            raise ValidationError(errors)
        view.filterset = filterset
        return filterset
