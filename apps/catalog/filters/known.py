"""Parameters naming catalog rows (a vendor, a compliance framework, a benchmark), checked against
a per-process memo of the loaded catalog's rows instead of a query per request.

Django's ModelMultipleChoiceField validates with a query each time (compiling it cost ~3 ms of a
4 ms search, bench/README.md). The rows change only when a sync lands, so they are read once
per catalog version; before the first sync (no version) nothing is remembered.
"""

from functools import lru_cache
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Model

from apps.catalog.version import catalog_version


@lru_cache(maxsize=32)
def _rows_of(version: str, model: type[Model], to_field: str) -> dict[str, Model]:
    return {str(getattr(row, to_field)): row for row in model.objects.all()}


def known_rows(model: type[Model], to_field: str) -> dict[str, Model]:
    """Every row of a catalog model by the text of `to_field`, as of the loaded catalog."""
    version = catalog_version()
    if version is None:
        return {str(getattr(row, to_field)): row for row in model.objects.all()}
    return _rows_of(version, model, to_field)


class KnownRowsMultipleChoiceField(django_filters.fields.ModelMultipleChoiceField):
    """A ModelMultipleChoiceField over a whole catalog table, validated against `known_rows`."""

    def _check_values(self, value: Any) -> list[Model]:
        rows = known_rows(self.queryset.model, self.to_field_name or "pk")
        chosen: dict[str, Model] = {}
        for item in value:
            key = str(item)
            row = rows.get(key)
            if row is None:
                raise ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": item}
                )
            chosen.setdefault(key, row)
        return list(chosen.values())


class KnownRowsMultipleChoiceFilter(django_filters.ModelMultipleChoiceFilter):
    """A repeatable parameter naming rows of a whole catalog table (its queryset must be `.all()`)."""

    field_class = KnownRowsMultipleChoiceField


class KnownRowChoiceField(django_filters.fields.ModelChoiceField):
    """A ModelChoiceField over a whole catalog table, validated against `known_rows`."""

    def to_python(self, value: Any) -> Model | None:
        if value in self.empty_values:
            return None
        row = known_rows(self.queryset.model, self.to_field_name or "pk").get(str(value))
        if row is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value})
        return row


class KnownRowChoiceFilter(django_filters.ModelChoiceFilter):
    """A parameter naming one row of a whole catalog table (its queryset must be `.all()`)."""

    field_class = KnownRowChoiceField
