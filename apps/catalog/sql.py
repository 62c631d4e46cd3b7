"""The catalog's one SQL layer: how the read side spells SQL on SQLite and on PostgreSQL, and reads rows back.

Selectors build statements from these pieces and nothing else knows which database it talks to:
`postgres()` is the one switch. Statements are plain text (cached by their shape by the selectors
that build them), bound per request; rows come straight from the cursor into dicts for the orjson
renderer (`RowFormat`): JSON columns as their text, embedded as they are (orjson.Fragment, no
parsing), timestamps as ISO 8601 text, booleans as booleans.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import orjson
from django.db import connection
from django.db.models import Model

from apps.catalog.importer import upstream_columns
from apps.catalog.models import Database, Server, Vendor
from apps.catalog.places import Places
from apps.catalog.pricing import round_sql


def postgres() -> bool:
    """Whether the catalog is on PostgreSQL (else SQLite): the read side's one database switch."""
    return connection.vendor == "postgresql"


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def rounded(expression: str, digits: int) -> str:
    """SQL rounding half away from zero to `digits`, as a float, on either database."""
    return round_sql(expression, digits, postgres=postgres())


def json_text(expression: str) -> str:
    return f"CAST({expression} AS TEXT)" if postgres() else expression


def json_list_holds(expression: str, count: int) -> str:
    """SQL true when the JSON list `expression` holds each of `count` bound text values: jsonb containment on
    PostgreSQL, one json_each lookup per value on SQLite."""
    if postgres():
        return f"{expression} @> jsonb_build_array({', '.join(['CAST(%s AS TEXT)'] * count)})"
    return "(" + " AND ".join([f"EXISTS (SELECT 1 FROM json_each({expression}) WHERE value = %s)"] * count) + ")"


def timestamp(expression: str, utc: str = "Z") -> str:
    """ISO 8601 in UTC ending in `utc` ("Z", or "+00:00" as orjson prints an aware datetime), microseconds
    only when there are some (as Python's isoformat)."""
    if postgres():
        moment = f"({expression} AT TIME ZONE 'UTC')"
        return (
            f"""to_char({moment}, 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN to_char({moment}, 'US') = '000000' """
            f"""THEN '' ELSE to_char({moment}, '.US') END || '{utc}'"""
        )
    return f"REPLACE(REPLACE({expression}, ' ', 'T'), '.000000', '') || '{utc}'"


def output_column(alias: str, model: type[Model], column: str, utc: str = "Z") -> str:
    """SQL selecting `alias`.`column` in the form RowFormat reads (JSON as text, timestamps as ISO text
    ending in `utc`)."""
    kind = _internal_types(model)[column]
    quoted = f"{alias}.{quote(column)}"
    if kind == "JSONField":
        return json_text(quoted)
    if kind == "DateTimeField":
        return timestamp(quoted, utc)
    return quoted


def fetch(sql: str, params: Sequence[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def table_columns(model: type[Model]) -> list[str]:
    """The upstream columns of a catalog model (no surrogate id, no derived values), in upstream's order."""
    return upstream_columns(model)


SERVER_COLUMNS = table_columns(Server)
VENDOR_COLUMNS = table_columns(Vendor)


@lru_cache(maxsize=32)
def _internal_types(model: type[Model]) -> dict[str, str]:
    return {field.column: field.get_internal_type() for field in model._meta.concrete_fields}


# --- rows from the cursor ---------------------------------------------------------------------


@dataclass(frozen=True)
class RowFormat:
    """How a model's columns are selected and read back into a row (a dict) for the orjson renderer."""

    model: type[Model]
    columns: tuple[str, ...]
    utc: str = "Z"  # how timestamps end (the price searches print "+00:00", as the renderer did)

    def select(self, alias: str) -> str:
        """The select list of `columns` from table `alias` (its text built once per alias and database)."""
        return _select(self, alias, postgres())

    @property
    def width(self) -> int:
        return len(self.columns)

    def read(self, values: Sequence[Any], *, parse: Sequence[str] = (), start: int = 0) -> dict[str, Any]:
        """A row of `values` (in `columns` order, from `start`); JSON columns in `parse` decoded, the others
        embedded. Read once per row of every search: no copy of the record (/servers?gpu_min=1&limit=-1
        reads 428 rows of 80 columns)."""
        json_at, bool_at = self._kinds
        columns = self.columns
        row = dict(zip(columns, values[start : start + len(columns)] if start else values))
        for index in json_at:
            text = values[start + index]
            if text is not None:
                row[columns[index]] = decoded(text) if parse and columns[index] in parse else orjson.Fragment(text)
        for index in bool_at:
            value = values[start + index]
            if value is not None:
                row[columns[index]] = bool(value)
        return row

    @cached_property
    def _kinds(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return _kinds(self.model, self.columns)


def decoded(text: str) -> Any:
    """JSON text as Python values: orjson's fast strict parser, json's for what it refuses (NaN, huge integers)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@lru_cache(maxsize=256)
def _select(row: RowFormat, alias: str, postgres: bool) -> str:
    # Quoting and typing 80 columns cost ~0.3 ms: too much for a statement built per request.
    return ", ".join(output_column(alias, row.model, column, row.utc) for column in row.columns)


@lru_cache(maxsize=32)
def _kinds(model: type[Model], columns: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Positions of the JSON columns (embedded as text) and of the booleans (SQLite answers 0 or 1)."""
    kinds = _internal_types(model)
    json_at = tuple(i for i, column in enumerate(columns) if kinds[column] == "JSONField")
    bool_at = tuple(i for i, column in enumerate(columns) if kinds[column] == "BooleanField")
    return json_at, bool_at


SERVER_ROW = RowFormat(Server, tuple(SERVER_COLUMNS))
VENDOR_ROW = RowFormat(Vendor, tuple(VENDOR_COLUMNS))
DATABASE_ROW = RowFormat(Database, tuple(table_columns(Database)))


# --- places -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceShape:
    """How many values each place filter has: what the SQL text of a place condition depends on."""

    regions: int = 0
    vendor_regions: int = 0
    countries: int = 0

    @classmethod
    def of(cls, places: Places) -> "PlaceShape":
        return cls(len(places.regions), len(places.vendor_regions), len(places.countries))

    def __bool__(self) -> bool:
        return bool(self.regions or self.vendor_regions or self.countries)

    def conditions(self, alias: str, *, country: str | None = None) -> list[str]:
        """The conditions (AND) on price rows `alias` (with vendor_id, region_id); `country` is the SQL
        of a row's country code (default `alias`.country_id). Bound by `place_params`, in this order."""
        parts: list[str] = []
        if self.regions:
            parts.append(f"{alias}.region_id IN ({placeholders(self.regions)})")
        if self.vendor_regions:
            pairs = " OR ".join([f"({alias}.vendor_id = %s AND {alias}.region_id = %s)"] * self.vendor_regions)
            parts.append(f"({pairs})")
        if self.countries:
            parts.append(f"{country or f'{alias}.country_id'} IN ({placeholders(self.countries)})")
        return parts

    def condition(self, alias: str, *, country: str | None = None) -> str:
        return " AND ".join(self.conditions(alias, country=country)) or "1 = 1"


def place_params(places: Places) -> list[Any]:
    """The values of PlaceShape's conditions, in their order."""
    return [*places.regions, *(item for pair in places.vendor_regions for item in pair), *places.countries]
