"""Filters that declare their part in a catalog search (apps/catalog/criteria.py), not a queryset filter.

A search FilterSet (e.g. ServerFilterSet) declares each parameter once. Its declaration says what the
parameter contributes to the search, through its `role`:
- no role (any plain filter): a condition on the column `field_name`, compared by `lookup_expr`
  (a list filter: "in"), its value times `scale` where the filter has one (GB given, MiB stored);
- `Derived(on)`: a condition on a figure the search derives (criteria.SCORE_PER_PRICE, ...);
- `TextSearch(columns)`: a case-insensitive substring search over those columns;
- `Option(name)`: a `ServerSearch` field (the ordering, the currency, the benchmark, a monthly extra...);
- `AllInList()`: the JSON list column `field_name` holds every given value (criteria.JSON_LIST);
- `Unless(ignored)`: the default role, but a value equal to `ignored` (upstream ignores 0) contributes nothing;
- `Compared(columns, if_true, if_false)`: a yes/no comparing two columns of the row (criteria.COMPARED);
- `Ratio(columns)`: a condition on one column per another (criteria.RATIO), e.g. memory per vCPU;
- `ListLength()`: a condition on the number of items of the JSON list column `field_name`.
`search_terms()` gathers the validated values into the keyword arguments of the search's value object.
"""

from dataclasses import dataclass
from typing import Any

import django_filters
from django.db.models import Model, QuerySet
from drf_spectacular.drainage import set_override

from apps.catalog.criteria import COLUMN, COMPARED, JSON_LIST, LIST_LENGTH, RATIO, TEXT, Condition
from apps.catalog.filters.known import KnownRowChoiceFilter, KnownRowsMultipleChoiceFilter
from keeper.api.filters import BooleanFilter, FloatFilter, IntegerFilter, MultipleValueFilter, ScaledFloatFilter


def _plain(value: Any) -> Any:
    """A catalog row (a vendor, a benchmark) as its primary key; other values as they are."""
    return value.pk if isinstance(value, Model) else value


@dataclass(frozen=True)
class Column:
    """A condition on the filter's own column (the default role)."""

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        column = filter_.model._meta.get_field(filter_.field_name).column
        if isinstance(value, list | tuple):
            condition = Condition(COLUMN, "in", tuple(_plain(v) for v in value), (column,))
        else:
            scale = getattr(filter_, "scale", None)
            condition = Condition(COLUMN, filter_.lookup_expr, (value * scale if scale else value,), (column,))
        terms["conditions"].append(condition)


@dataclass(frozen=True)
class Derived:
    """A condition on a figure the search derives (`on`: one of apps.catalog.criteria's names)."""

    on: str

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        values = tuple(_plain(v) for v in value) if isinstance(value, list | tuple) else (value,)
        lookup = "in" if isinstance(value, list | tuple) else filter_.lookup_expr
        terms["conditions"].append(Condition(self.on, lookup, values))


@dataclass(frozen=True)
class TextSearch:
    """A case-insensitive substring search over `columns` (any of them matching)."""

    columns: tuple[str, ...]

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        terms["conditions"].append(Condition(TEXT, "contains", (value,), self.columns))


@dataclass(frozen=True)
class Option:
    """The value of the search's field `name` (e.g. "currency")."""

    name: str

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        terms[self.name] = tuple(value) if isinstance(value, list) else _plain(value)


COLUMN_ROLE = Column()


@dataclass(frozen=True)
class AllInList:
    """A condition that the JSON list column `field_name` holds every given value (one value or a list)."""

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        column = filter_.model._meta.get_field(filter_.field_name).column
        values = tuple(dict.fromkeys(value)) if isinstance(value, list | tuple) else (value,)
        terms["conditions"].append(Condition(JSON_LIST, "contains", values, (column,)))


@dataclass(frozen=True)
class Unless:
    """`role` (the filter's own column by default), unless the value is `ignored` (e.g. 0, which upstream
    treats as "not given": a NULL column then matches)."""

    ignored: Any
    role: Any = COLUMN_ROLE

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        if value != self.ignored:
            self.role.contribute(filter_, value, terms)


def _columns(filter_: django_filters.Filter, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(filter_.model._meta.get_field(name).column for name in names)


@dataclass(frozen=True)
class Compared:
    """A yes/no comparing two columns of the row: true by the lookup `if_true`, false by `if_false` (e.g.
    cpu_hyperthreading: vcpus > cpu_cores, or vcpus = cpu_cores; a NULL column matches neither)."""

    columns: tuple[str, str]
    if_true: str
    if_false: str

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        lookup = self.if_true if value else self.if_false
        terms["conditions"].append(Condition(COMPARED, lookup, (), _columns(filter_, self.columns)))


@dataclass(frozen=True)
class Ratio:
    """A condition on one column of the row per another (`columns`: numerator, denominator; a zero
    denominator matches nothing), the value times the filter's `scale` (GB per vCPU given, MiB stored)."""

    columns: tuple[str, str]

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        scale = getattr(filter_, "scale", None)
        values = (value * scale if scale else value,)
        terms["conditions"].append(Condition(RATIO, filter_.lookup_expr, values, _columns(filter_, self.columns)))


@dataclass(frozen=True)
class ListLength:
    """A condition on the number of items of the JSON list column `field_name` (e.g. the built-in storages)."""

    def contribute(self, filter_: django_filters.Filter, value: Any, terms: dict[str, Any]) -> None:
        columns = _columns(filter_, (filter_.field_name,))
        terms["conditions"].append(Condition(LIST_LENGTH, filter_.lookup_expr, (value,), columns))


class Term:
    """A filter with a `role` in a search; the selector reads it, so it filters no queryset."""

    role: Any = COLUMN_ROLE

    def __init__(self, *args: Any, role: Any, **kwargs: Any) -> None:
        self.role = role
        super().__init__(*args, **kwargs)
        if isinstance(self, django_filters.ModelChoiceFilter | django_filters.ModelMultipleChoiceFilter) or callable(
            self.extra.get("choices")
        ):
            # Values read from the catalog or a function: no model column tells drf-spectacular their type.
            # A string; keeper.api.schema.StrictFilterExtension lists the values.
            set_override(self, "field", {"type": "string", "description": str(self.label or "")})

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs


class TextTerm(Term, django_filters.CharFilter):
    pass


class ChoiceTerm(Term, django_filters.ChoiceFilter):
    pass


class BooleanTerm(Term, BooleanFilter):
    pass


class FloatTerm(Term, FloatFilter):
    pass


class IntegerTerm(Term, IntegerFilter):
    pass


class ScaledFloatTerm(Term, ScaledFloatFilter):
    pass


class ValuesTerm(Term, MultipleValueFilter):
    pass


class RowTerm(Term, KnownRowChoiceFilter):
    pass


class RowsTerm(Term, KnownRowsMultipleChoiceFilter):
    pass


def search_terms(filters: dict[str, django_filters.Filter], data: dict[str, Any]) -> dict[str, Any]:
    """What the given `filters` contribute with their validated values: {"conditions": [...], option: value}."""
    terms: dict[str, Any] = {"conditions": []}
    for name, filter_ in filters.items():
        value = data.get(name)
        if value is None or value == "" or value == []:
            continue
        getattr(filter_, "role", COLUMN_ROLE).contribute(filter_, value, terms)
    return terms
