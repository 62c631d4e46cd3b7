"""Copy the upstream tables into Keeper's catalog models, computing derived columns on the way.

Reads a sparecores-crawler SQLite database and writes through the fastest path
each backend has: ``executemany`` on SQLite, ``COPY`` on PostgreSQL. The caller
runs it inside one transaction (see services.catalog_sync).
"""

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models

from apps.catalog import choices
from apps.catalog.models import (
    REGION_PRICES,
    Benchmark,
    BenchmarkScore,
    ComplianceFramework,
    Country,
    Database,
    DatabasePrice,
    DatabaseRegionPrice,
    DatabaseStorage,
    DatabaseStoragePrice,
    Ipv4Price,
    Region,
    Server,
    ServerCountryPrice,
    ServerDescription,
    ServerPrice,
    ServerRegionPrice,
    Storage,
    StoragePrice,
    TrafficPrice,
    Vendor,
    VendorComplianceLink,
    Zone,
)
from apps.catalog.pricing import exchange_rate, monthly_price, round_half_up, round_sql, usd_sql

SUPPORTED_SCHEMA_VERSIONS = {"37c49fd74cce": "sparecores-crawler 0.10"}
SCORE_BENCHMARK = "stress_ng:bestn"
SCORE1_BENCHMARK = "stress_ng:best1"
BATCH = 5000

# Upstream table -> model, in import order: prices and scores come before servers (and database
# prices before databases) because their derived columns are computed from them.
TABLES: list[tuple[str, type[models.Model]]] = [
    ("country", Country),
    ("compliance_framework", ComplianceFramework),
    ("vendor", Vendor),
    ("vendor_compliance_link", VendorComplianceLink),
    ("region", Region),
    ("zone", Zone),
    ("storage", Storage),
    ("benchmark", Benchmark),
    ("benchmark_score", BenchmarkScore),
    ("server_price", ServerPrice),
    ("server", Server),
    ("server_description", ServerDescription),
    ("storage_price", StoragePrice),
    ("traffic_price", TrafficPrice),
    ("ipv4_price", Ipv4Price),
    ("database_storage", DatabaseStorage),
    ("database_price", DatabasePrice),
    ("database", Database),
    ("database_storage_price", DatabaseStoragePrice),
]
# Tables older catalogs lack (managed databases came with sparecores-crawler 0.8.3): a catalog without
# them loads with none of their rows. A catalog that has one must have every column Keeper reads.
OPTIONAL_TABLES = {"database_storage", "database_price", "database", "database_storage_price"}
DERIVED_COLUMNS = {
    Server: [
        "min_price",
        "min_price_spot",
        "min_price_ondemand",
        "min_price_ondemand_monthly",
        "score",
        "score1",
        "score_per_price",
    ],
    ServerPrice: ["price_monthly", "country_id"],
    Database: ["min_price", "min_price_ondemand", "min_price_ondemand_monthly"],
    DatabasePrice: ["price_monthly", "country_id"],
}

TableProgress = Callable[[str, int, int], None]


class CatalogSchemaError(Exception):
    """The source is not a catalog of a supported sparecores-crawler schema."""


def upstream_columns(model: type[models.Model]) -> list[str]:
    derived = set(DERIVED_COLUMNS.get(model, []))
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id" and f.column not in derived]
    # Upstream puts the shared bookkeeping columns last; so do the API rows.
    trailing = [c for c in ("status", "observed_at") if c in columns]
    return [c for c in columns if c not in trailing] + trailing


def check_schema(source: sqlite3.Connection) -> str:
    """The source's schema version; CatalogSchemaError when it is not one Keeper reads."""
    try:
        (version,) = source.execute("SELECT version_num FROM zzz_alembic_version").fetchone()
    except (sqlite3.Error, TypeError) as exc:
        raise CatalogSchemaError(
            "The source has no zzz_alembic_version table: it is not a Spare Cores catalog database."
        ) from exc
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(f"{v} ({name})" for v, name in SUPPORTED_SCHEMA_VERSIONS.items())
        raise CatalogSchemaError(
            f"The catalog has schema version {version}, which this Keeper does not support "
            f"(supported: {supported}). Upgrade Keeper or use a catalog of a supported version."
        )
    for table, model in TABLES:
        present = {row[1] for row in source.execute(f'PRAGMA table_info("{table}")')}
        if not present and table in OPTIONAL_TABLES:
            continue
        if not present:
            raise CatalogSchemaError(f"The catalog has no {table} table.")
        missing = [c for c in upstream_columns(model) if c not in present]
        if missing:
            raise CatalogSchemaError(f"The catalog's {table} table lacks columns: {', '.join(missing)}.")
    return version


@dataclass
class ServerFigures:
    """Per-server values gathered while streaming prices and scores."""

    min_price: float | None = None
    min_price_spot: float | None = None
    min_price_ondemand: float | None = None
    min_price_ondemand_monthly: float | None = None
    score: float | None = None
    score1: float | None = None

    def offer(self, name: str, value: float) -> None:
        current = getattr(self, name)
        if current is None or value < current:
            setattr(self, name, value)

    def database_derived(self) -> tuple:
        """A database's DERIVED_COLUMNS: only on-demand prices count (`min_price` is their minimum)."""
        return (
            _round(self.min_price_ondemand, 4),
            _round(self.min_price_ondemand, 4),
            _round(self.min_price_ondemand_monthly, 2),
        )

    def derived(self) -> tuple:
        score_per_price = None
        min_price = _round(self.min_price, 4)
        if self.score is not None and min_price:
            # Per the price as published (rounded to 4 digits), as the Spare Cores API computes it.
            score_per_price = round(self.score / min_price, 4)
        return (
            min_price,
            _round(self.min_price_spot, 4),
            _round(self.min_price_ondemand, 4),
            _round(self.min_price_ondemand_monthly, 2),
            self.score,
            self.score1,
            score_per_price,
        )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round_half_up(value, digits)


@dataclass
class ImportResult:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class CatalogImporter:
    """Replaces the catalog tables with the source's rows. Run it inside a transaction."""

    def __init__(self, source: sqlite3.Connection, progress: TableProgress | None = None):
        self.source = source
        self.progress = progress
        self.figures: dict[tuple[str, str], ServerFigures] = {}
        # The same per database, from the database prices.
        self.database_figures: dict[tuple[str, str], ServerFigures] = {}
        self.postgres = connection.vendor == "postgresql"

    def run(self) -> ImportResult:
        result = ImportResult()
        deferred = [] if self.postgres else self._drop_secondary_indexes()
        self._delete_all()
        for table, model in TABLES:
            if table in OPTIONAL_TABLES and not _has_table(self.source, table):
                # Recorded as none (not left out), so that a run tells a catalog without them from one
                # loaded by a Keeper that did not read them (services.catalog_sync reloads those).
                result.rows[table], result.seconds[table] = 0, 0.0
                continue
            started = time.perf_counter()
            result.rows[table] = self._copy_table(table, model)
            result.seconds[table] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        self._derive_region_prices()
        # Timed like a table, not counted as one: the rows are upstream's, the derived table Keeper's.
        result.seconds["server_region_price (derived)"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        self._derive_database_region_prices()
        result.seconds["database_region_price (derived)"] = round(time.perf_counter() - started, 3)
        if deferred:
            started = time.perf_counter()
            self._create_indexes(deferred)
            result.seconds["indexes (rebuilt)"] = round(time.perf_counter() - started, 3)
        return result

    def _drop_secondary_indexes(self) -> list[str]:
        """SQLite: drop the catalog tables' own indexes for the load, returning how to rebuild them.

        Building an index once over loaded rows is several times cheaper than updating it for each
        of hundreds of thousands of inserts and deletes. Inside the sync's transaction, so readers
        keep the old catalog with its indexes until the commit. (PostgreSQL is left alone: there
        DROP INDEX would lock readers out of the table until the commit.) Unique constraints stay.
        """
        tables = [model._meta.db_table for _table, model in TABLES] + [
            ServerRegionPrice._meta.db_table,
            ServerCountryPrice._meta.db_table,
            DatabaseRegionPrice._meta.db_table,
        ]
        marks = ", ".join(["%s"] * len(tables))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                f"WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
                tables,
            )
            indexes = cursor.fetchall()
            for name, _sql in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
        return [sql for _name, sql in indexes]

    def _create_indexes(self, statements: list[str]) -> None:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _delete_all(self) -> None:
        with connection.cursor() as cursor:
            for derived in (ServerCountryPrice, ServerRegionPrice, DatabaseRegionPrice):
                cursor.execute(f'DELETE FROM "{derived._meta.db_table}"')
            for _table, model in reversed(TABLES):
                cursor.execute(f'DELETE FROM "{model._meta.db_table}"')

    def _derive_region_prices(self) -> None:
        """Each server's cheapest active hourly prices per region, then per country, in USD and rounded
        as the API shows them, by INSERT ... SELECT."""
        prices, regions = ServerPrice._meta.db_table, Region._meta.db_table
        usd, monthly = usd_sql("p.price", "p.currency"), usd_sql("p.price_monthly", "p.currency")
        spot, ondemand = str(choices.Allocation.SPOT), str(choices.Allocation.ONDEMAND)

        def rounded(expression: str, digits: int) -> str:
            # Stored as the API shows them, so that a search in one region reads them as they are.
            return round_sql(expression, digits, postgres=self.postgres)

        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{ServerRegionPrice._meta.db_table}" (vendor_id, server_id, region_id, country_id, '
                "min_price, min_price_spot, min_price_ondemand, min_price_ondemand_monthly) "
                f"SELECT p.vendor_id, p.server_id, p.region_id, MAX(r.country_id), {rounded(f'MIN({usd})', 4)}, "
                f"{rounded(f'MIN(CASE WHEN p.allocation = {spot!r} THEN {usd} END)', 4)}, "
                f"{rounded(f'MIN(CASE WHEN p.allocation = {ondemand!r} THEN {usd} END)', 4)}, "
                f"{rounded(f'MIN(CASE WHEN p.allocation = {ondemand!r} THEN {monthly} END)', 2)} "
                f'FROM "{prices}" p LEFT JOIN "{regions}" r ON r.vendor_id = p.vendor_id AND r.region_id = p.region_id '
                f"WHERE p.status = '{choices.Status.ACTIVE}' AND p.unit = '{choices.PriceUnit.HOUR}' "
                "GROUP BY p.vendor_id, p.server_id, p.region_id"
            )
            columns = ", ".join(REGION_PRICES)
            minima = ", ".join(
                round_sql(f"MIN({c})", 2 if c.endswith("monthly") else 4, postgres=self.postgres) for c in REGION_PRICES
            )
            cursor.execute(
                f'INSERT INTO "{ServerCountryPrice._meta.db_table}" (vendor_id, server_id, country_id, {columns}) '
                f'SELECT vendor_id, server_id, country_id, {minima} FROM "{ServerRegionPrice._meta.db_table}" '
                "WHERE country_id IS NOT NULL GROUP BY vendor_id, server_id, country_id"
            )

    def _derive_database_region_prices(self) -> None:
        """Each database's cheapest active on-demand hourly price (and month) per region, in USD and rounded
        as answered, by INSERT ... SELECT over the prices with their derived country and month."""
        usd, monthly = usd_sql("p.price", "p.currency"), usd_sql("p.price_monthly", "p.currency")
        hourly = round_sql(f"MIN({usd})", 4, postgres=self.postgres)
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{DatabaseRegionPrice._meta.db_table}" (vendor_id, database_id, region_id, country_id, '
                "min_price, min_price_ondemand, min_price_ondemand_monthly) "
                f"SELECT p.vendor_id, p.database_id, p.region_id, MAX(p.country_id), {hourly}, {hourly}, "
                f"{round_sql(f'MIN({monthly})', 2, postgres=self.postgres)} "
                f'FROM "{DatabasePrice._meta.db_table}" p '
                f"WHERE p.status = '{choices.Status.ACTIVE}' AND p.unit = '{choices.PriceUnit.HOUR}' "
                f"AND p.allocation = '{choices.Allocation.ONDEMAND}' "
                "GROUP BY p.vendor_id, p.database_id, p.region_id"
            )

    def _copy_table(self, table: str, model: type[models.Model]) -> int:
        columns = upstream_columns(model)
        total = self.source.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        select = ", ".join(_upstream_value_sql(model, c) for c in columns)
        cursor = self.source.execute(f'SELECT {select} FROM "{table}"')
        converted = self._convert(model, columns, cursor)
        rows: Iterator[tuple] = converted
        if model is ServerPrice:
            rows = self._with_monthly_prices(columns, rows, resource="server_id", figures=self.figures)
        elif model is DatabasePrice:
            rows = self._with_monthly_prices(columns, rows, resource="database_id", figures=self.database_figures)
        elif model is BenchmarkScore:
            rows = self._collect_scores(columns, rows)
        elif model is Server:
            rows = self._with_server_figures(columns, rows)
        elif model is Database:
            rows = self._with_database_figures(columns, rows)
        target_columns = columns + DERIVED_COLUMNS.get(model, [])
        try:
            return self._write(table, model._meta.db_table, target_columns, rows, total)
        finally:
            # A failed write leaves the generators half-read: closed now, while the source is open, not by
            # the garbage collector after it closed (which raised in the cursor they read).
            for generator in (rows, converted):
                getattr(generator, "close", lambda: None)()

    def _convert(self, model: type[models.Model], columns: list[str], rows: Iterable[tuple]) -> Iterator[tuple]:
        """Adapt values to the target backend: booleans and, on PostgreSQL, time zones."""
        by_column = {f.column: f for f in model._meta.concrete_fields}
        fixes: list[tuple[int, Callable[[Any], Any]]] = []
        for index, column in enumerate(columns):
            kind = by_column[column].get_internal_type()
            if kind == "BooleanField":
                fixes.append((index, _to_bool))
            elif kind == "DateTimeField" and self.postgres:
                fixes.append((index, _utc_timestamp))
        if not fixes:
            yield from rows
            return
        for row in rows:
            values = list(row)
            for index, fix in fixes:
                values[index] = fix(values[index])
            yield tuple(values)

    def _with_monthly_prices(
        self,
        columns: list[str],
        rows: Iterable[tuple],
        *,
        resource: str,
        figures: dict[tuple[str, str], ServerFigures],
    ) -> Iterator[tuple]:
        """The price rows with their monthly price and country, gathering each resource's (server's or
        database's) cheapest prices in USD on the way."""
        at = {c: i for i, c in enumerate(columns)}
        i_vendor, i_server, i_alloc, i_status = at["vendor_id"], at[resource], at["allocation"], at["status"]
        i_price, i_tiers, i_currency, i_unit = at["price"], at["price_tiered"], at["currency"], at["unit"]
        i_region = at["region_id"]
        rates: dict[str, float] = {}
        countries = {
            (vendor_id, region_id): country_id
            for vendor_id, region_id, country_id in self.source.execute(
                'SELECT vendor_id, region_id, country_id FROM "region"'
            )
        }
        for row in rows:
            monthly = None
            # Only hourly prices compare; a monthly or yearly price is not a candidate for the hourly minimum.
            if row[i_status] == choices.Status.ACTIVE and row[i_unit] == choices.PriceUnit.HOUR:
                currency = row[i_currency]
                rate = rates.get(currency)
                if rate is None:
                    rate = rates[currency] = exchange_rate(currency, "USD")
                price_usd = row[i_price] * rate
                key = (row[i_vendor], row[i_server])
                found = figures.get(key)
                if found is None:
                    found = figures[key] = ServerFigures()
                found.offer("min_price", price_usd)
                allocation = row[i_alloc]
                if allocation == choices.Allocation.SPOT:
                    found.offer("min_price_spot", price_usd)
                elif allocation == choices.Allocation.ONDEMAND:
                    found.offer("min_price_ondemand", price_usd)
                    tiers = row[i_tiers]
                    tiers = json.loads(tiers) if tiers and tiers != "[]" else []
                    monthly = monthly_price(tiers, row[i_price])
                    found.offer("min_price_ondemand_monthly", monthly * rate)
            yield (*row, monthly, countries.get((row[i_vendor], row[i_region])))

    def _collect_scores(self, columns: list[str], rows: Iterable[tuple]) -> Iterator[tuple]:
        at = {c: i for i, c in enumerate(columns)}
        i_vendor, i_bench, i_type, i_resource, i_score = (
            at["vendor_id"],
            at["benchmark_id"],
            at["resource_type"],
            at["resource_id"],
            at["score"],
        )
        wanted = {SCORE_BENCHMARK: "score", SCORE1_BENCHMARK: "score1"}
        for row in rows:
            name = wanted.get(row[i_bench])
            if name and row[i_type] == choices.ResourceType.SERVER and math.isfinite(row[i_score]):
                key = (row[i_vendor], row[i_resource])
                figures = self.figures.get(key)
                if figures is None:
                    figures = self.figures[key] = ServerFigures()
                current = getattr(figures, name)
                if current is None or row[i_score] > current:
                    setattr(figures, name, row[i_score])
            yield row

    def _with_server_figures(self, columns: list[str], rows: Iterable[tuple]) -> Iterator[tuple]:
        i_vendor, i_server = columns.index("vendor_id"), columns.index("server_id")
        empty = ServerFigures().derived()
        for row in rows:
            figures = self.figures.get((row[i_vendor], row[i_server]))
            yield (*row, *(figures.derived() if figures else empty))

    def _with_database_figures(self, columns: list[str], rows: Iterable[tuple]) -> Iterator[tuple]:
        i_vendor, i_database = columns.index("vendor_id"), columns.index("database_id")
        empty = ServerFigures().database_derived()
        for row in rows:
            figures = self.database_figures.get((row[i_vendor], row[i_database]))
            yield (*row, *(figures.database_derived() if figures else empty))

    def _write(self, table: str, db_table: str, columns: list[str], rows: Iterable[tuple], total: int) -> int:
        names = ", ".join(f'"{c}"' for c in columns)
        count = 0
        report = self.progress or (lambda *_: None)
        report(table, 0, total)
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if self.postgres:
                with raw.copy(f'COPY "{db_table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
                        if count % BATCH == 0:
                            report(table, count, total)
            else:
                sql = f'INSERT INTO "{db_table}" ({names}) VALUES ({", ".join(["%s"] * len(columns))})'
                batch: list[tuple] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) == BATCH:
                        raw.executemany(sql, batch)
                        count += len(batch)
                        batch.clear()
                        report(table, count, total)
                if batch:
                    raw.executemany(sql, batch)
                    count += len(batch)
        report(table, count, total)
        return count


def _has_table(source: sqlite3.Connection, table: str) -> bool:
    found = source.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    return found.fetchone() is not None


def _upstream_value_sql(model: type[models.Model], column: str) -> str:
    """The source column as Keeper stores it: an enumeration's member names read as its values."""
    field = next(f for f in model._meta.concrete_fields if f.column == column)
    if not field.choices:
        return f'"{column}"'
    names = choices.upstream_names([value for value, _ in field.choices])
    cases = " ".join(f"WHEN '{name}' THEN '{value}'" for name, value in names.items())
    return f'CASE "{column}" {cases} ELSE "{column}" END'


def _to_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _utc_timestamp(value: Any) -> Any:
    # Upstream stores naive UTC timestamps.
    if isinstance(value, str) and "+" not in value[10:]:
        return value + "+00:00"
    return value
