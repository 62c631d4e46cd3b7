"""FilterSet plumbing shared by every list endpoint.

Query strings are validated here, never parsed by hand: unknown parameters,
malformed numbers, booleans and enum values are all 400s naming the parameter.
"""

from typing import Any

import django_filters
from django import forms
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from rest_framework.exceptions import ValidationError

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


class BooleanFilter(django_filters.BooleanFilter):
    """A boolean that rejects anything but true/false/1/0/yes/no (django-filter silently ignores junk)."""

    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class FloatFilter(django_filters.NumberFilter):
    field_class = forms.FloatField


class ScaledFloatFilter(FloatFilter):
    """A minimum given in one unit and stored in another (GB in the query, MiB in the table)."""

    def __init__(self, *args, scale: float, **kwargs):
        self.scale = scale
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        return super().filter(qs, None if value is None else value * self.scale)


class FreeMultipleChoiceField(forms.MultipleChoiceField):
    """Any values: for catalog-driven lists (CPU families, GPU models) that change with the data."""

    def valid_value(self, value: str) -> bool:
        return True


class MultipleValueFilter(django_filters.MultipleChoiceFilter):
    """Repeated keys (`?vendor=aws&vendor=gcp`) matching any of the values.

    With `choices`, values outside them are a 400; without, any value is accepted.
    """

    def __init__(self, *args, **kwargs):
        if "choices" not in kwargs:
            self.field_class = FreeMultipleChoiceField
        super().__init__(*args, **kwargs)

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

    def __init__(self, data: QueryDict | None = None, *args, **kwargs):
        if data is not None and self.defaults:
            data = data.copy()
            for key, value in self.defaults.items():
                if key not in data:
                    data[key] = value
        super().__init__(data, *args, **kwargs)

    def unknown_parameters(self) -> list[str]:
        if self.data is None:
            return []
        return sorted(set(self.data) - set(self.filters) - set(self.extra_parameters))

    @property
    def params(self) -> dict[str, Any]:
        """The validated values, for parameters that shape the response rather than filter it."""
        return self.form.cleaned_data


class StrictFilterBackend(DjangoFilterBackend):
    """Validates the whole query string (400 naming each bad parameter) and keeps the FilterSet on the view."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        errors: dict[str, list[str]] = {}
        if not filterset.is_valid():
            errors.update({name: [str(m) for m in messages] for name, messages in filterset.errors.items()})
        if isinstance(filterset, StrictFilterSet):
            errors.update({name: ["Unknown query parameter."] for name in filterset.unknown_parameters()})
        if errors:
            raise ValidationError(errors)
        view.filterset = filterset
        return filterset.qs
