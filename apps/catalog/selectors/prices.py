"""Price search rows (`/server_prices`, `/storage_prices`, `/traffic_prices`, `/table/server_prices`).

A page costs two queries whatever its size: the ids of the page (the FilterSet's filters and
order), then their rows with the related rows nested (JoinedRows), zipped into plain dicts for
the orjson renderer. A price never vanishes because its region's country or its zone is missing
from the catalog (real dumps have such gaps): the row then says `"country": null` or `"zone": null`.
"""

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, FloatField, Model, QuerySet, Value
from django.db.models.expressions import Col, RawSQL
from django.db.models.functions import NullIf

from apps.catalog.models import (
    Country,
    Region,
    Server,
    ServerPrice,
    Storage,
    StoragePrice,
    TrafficPrice,
    Vendor,
    Zone,
)
from apps.catalog.pricing import exchange_rate, known_currencies, tiered_price
from apps.catalog.selectors.catalog import table_columns
from keeper.api.streams import MAKING_CHUNKS, json_array, stream_connection

# Upstream's rounding of converted prices: 4 digits for server prices (2 for monthly), 6 for
# storage and traffic prices.
SERVER_PRICE_DIGITS = 4
MONTHLY_PRICE_DIGITS = 2
UNIT_PRICE_DIGITS = 6


def _keys_first(model: type, keys: tuple[str, ...]) -> list[str]:
    """The upstream columns with the natural key first, in the order upstream's rows have them."""
    columns = table_columns(model)
    return [*keys, *(column for column in columns if column not in keys)]


SERVER_PRICE_COLUMNS = _keys_first(
    ServerPrice, ("vendor_id", "region_id", "zone_id", "server_id", "operating_system", "allocation")
)
STORAGE_PRICE_COLUMNS = _keys_first(StoragePrice, ("vendor_id", "region_id", "storage_id"))
TRAFFIC_PRICE_COLUMNS = _keys_first(TrafficPrice, ("vendor_id", "region_id", "direction"))
SERVER_COLUMNS = table_columns(Server)
STORAGE_COLUMNS = table_columns(Storage)
REGION_COLUMNS = table_columns(Region)
ZONE_COLUMNS = table_columns(Zone)
COUNTRY_COLUMNS = table_columns(Country)
VENDOR_COLUMNS = table_columns(Vendor)
# A server's derived prices (USD) and scores, as /servers reports them.
SERVER_HOURLY_PRICES = ("min_price", "min_price_spot", "min_price_ondemand")
SERVER_DERIVED = (*SERVER_HOURLY_PRICES, "min_price_ondemand_monthly", "score", "score1")
# The nested server's fields after its columns, in upstream's order (score1 is Keeper's addition).
SERVER_EXTRA_FIELDS = (
    "score",
    "score1",
    "price",
    *SERVER_HOURLY_PRICES,
    "min_price_ondemand_monthly",
    "score_per_price",
    "selected_benchmark_score",
    "selected_benchmark_score_per_price",
)
_SERVER_KEYS = (*SERVER_COLUMNS, *SERVER_EXTRA_FIELDS)


@cache
def rates_to(currency: str) -> dict[str, float]:
    """Units of `currency` per unit of each known currency (bundled ECB rates), USD and EUR first:
    most prices are in them, and a SQL CASE tries its branches in order."""
    codes = sorted(known_currencies(), key=lambda code: (code not in ("USD", "EUR"), code != "USD", code))
    return {code: exchange_rate(code, currency) for code in codes}


def price_in(currency: str, model: type[Model] = ServerPrice, column: str = "price") -> RawSQL:
    """SQL: a price column converted from each row's `currency` to `currency` (NULL for an unknown one).

    Raw SQL: the same CASE built from When() expressions costs the ORM more to compile than the
    whole rest of a `/server_prices` query.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    rates = rates_to(currency)
    cases = " ".join(["WHEN %s THEN %s"] * len(rates))
    params = [value for code, rate in rates.items() for value in (code, rate)]
    sql = f"({table}.{quote(column)} * CASE {table}.{quote('currency')} {cases} END)"
    return RawSQL(sql, params, output_field=FloatField())


def score_per_usd_price() -> Any:
    """SQL: the server's stress-ng score per USD/hour of this price (NULL without a score or a price)."""
    return F("server__score") / NullIf(price_in("USD"), Value(0.0))


def _convert(value: float | None, rate: float, digits: int) -> float | None:
    # As upstream: zero and missing values are left as they are.
    return round(value * rate, digits) if value else value


def _tiers_in(tiers: list[dict[str, Any]], rate: float, digits: int) -> list[dict[str, Any]]:
    return [{**tier, "price": round(float(tier["price"]) * rate, digits)} for tier in tiers]


def _convert_price_row(row: dict[str, Any], currency: str, digits: int) -> None:
    """Converts a price row's price, up-front price and tiers to `currency` in place."""
    if row["currency"] == currency:
        return
    rate = exchange_rate(row["currency"], currency)
    row["price"] = round(row["price"] * rate, digits)
    row["price_upfront"] = _convert(row["price_upfront"], rate, digits)
    row["price_tiered"] = _tiers_in(row["price_tiered"], rate, digits)
    if "price_monthly" in row:
        row["price_monthly"] = _convert(row["price_monthly"], rate, MONTHLY_PRICE_DIGITS)
    row["currency"] = currency


@dataclass(frozen=True)
class Related:
    """A row nested under `key` of its parent (the price row, or the related row named `parent`),
    joined on (its column, the parent's column) pairs."""

    key: str
    model: type[Model]
    columns: tuple[str, ...]
    on: tuple[tuple[str, str], ...]
    parent: str = ""


class JoinedRows:
    """Price rows by id with their related rows nested, in one query of LEFT JOINs.

    Raw SQL: a join that is missing (a region's country, a zone absent from the catalog) must
    keep the price, with `None` in its place, where the ORM's joins along these non-null keys
    are INNER. Values go through the converters the ORM would apply (datetimes, booleans and
    JSON on SQLite), so rows read exactly as `values_list()` reads them. The SQL is built once.
    """

    def __init__(self, model: type[Model], columns: Iterable[str], related: Iterable[Related]):
        self.model = model
        self.columns = tuple(columns)
        self.related = tuple(related)
        self._sql: str | None = None
        self._converters: list[tuple[int, Any, list]] = []

    def _prepare(self) -> str:
        quote = connection.ops.quote_name
        aliases = {"": "t0"}
        selected = [(self.model, "t0", "id"), *((self.model, "t0", column) for column in self.columns)]
        joins = []
        for number, part in enumerate(self.related, start=1):
            alias = aliases[part.key] = f"t{number}"
            parent = aliases[part.parent]
            condition = " AND ".join(f"{alias}.{quote(mine)} = {parent}.{quote(theirs)}" for mine, theirs in part.on)
            joins.append(f"LEFT JOIN {quote(part.model._meta.db_table)} {alias} ON ({condition})")
            selected += [(part.model, alias, column) for column in part.columns]
        self._converters = []
        for index, (model, alias, column) in enumerate(selected):
            field = model._meta.get_field(column)
            expression = Col(alias, field)
            converters = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
            if converters:
                self._converters.append((index, expression, converters))
        select = ", ".join(f"{alias}.{quote(column)}" for _, alias, column in selected)
        table = quote(self.model._meta.db_table)
        return f"SELECT {select} FROM {table} t0 {' '.join(joins)} WHERE t0.{quote('id')} IN ({{}})"

    def fetch(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """{id: row} for the ids (the order is the caller's to restore)."""
        if not ids:
            return {}
        if self._sql is None:
            self._sql = self._prepare()
        with connection.cursor() as cursor:
            cursor.execute(self._sql.format(", ".join(["%s"] * len(ids))), ids)
            records = cursor.fetchall()
        rows = {}
        width = len(self.columns)
        for record in records:
            values = list(record)
            for index, expression, converters in self._converters:
                for converter in converters:
                    values[index] = converter(values[index], expression, connection)
            row = dict(zip(self.columns, values[1 : width + 1]))
            start = width + 1
            parts = {"": row}
            for part in self.related:
                chunk = values[start : start + len(part.columns)]
                start += len(part.columns)
                holder = parts[part.parent]
                if holder is None or chunk[0] is None:  # not joined: its first column (a key) is NULL
                    nested = None
                else:
                    nested = dict(zip(part.columns, chunk))
                parts[part.key] = nested
                if holder is not None:
                    holder[part.key] = nested
            rows[values[0]] = row
        return rows


def _region_and_country(parent: str = "") -> list[Related]:
    return [
        Related("region", Region, tuple(REGION_COLUMNS), (("vendor_id", "vendor_id"), ("region_id", "region_id"))),
        Related("country", Country, tuple(COUNTRY_COLUMNS), (("country_id", "country_id"),), parent="region"),
    ]


_VENDOR = Related("vendor", Vendor, tuple(VENDOR_COLUMNS), (("vendor_id", "vendor_id"),))
SERVER_PRICE_ROWS = JoinedRows(
    ServerPrice,
    (*SERVER_PRICE_COLUMNS, "price_monthly"),
    [
        _VENDOR,
        *_region_and_country(),
        Related(
            "zone",
            Zone,
            tuple(ZONE_COLUMNS),
            (("vendor_id", "vendor_id"), ("region_id", "region_id"), ("zone_id", "zone_id")),
        ),
        Related(
            "server",
            Server,
            (*SERVER_COLUMNS, *SERVER_DERIVED),
            (("vendor_id", "vendor_id"), ("server_id", "server_id")),
        ),
    ],
)
STORAGE_PRICE_ROWS = JoinedRows(
    StoragePrice,
    STORAGE_PRICE_COLUMNS,
    [
        *_region_and_country(),
        _VENDOR,
        Related("storage", Storage, tuple(STORAGE_COLUMNS), (("vendor_id", "vendor_id"), ("storage_id", "storage_id"))),
    ],
)
TRAFFIC_PRICE_ROWS = JoinedRows(TrafficPrice, TRAFFIC_PRICE_COLUMNS, [*_region_and_country(), _VENDOR])


def _page(page: QuerySet, joined: JoinedRows) -> list[dict[str, Any]]:
    """The rows of `page` (filtered, ordered, sliced) in its order.

    The page's ids are read first, then their rows: sorting only (price, id) lets SQLite walk
    the price index, where sorting the wide joined rows made it sort the whole table.
    """
    return _page_with_ids(page, joined)[1]


def _page_with_ids(page: QuerySet, joined: JoinedRows) -> tuple[list[int], list[dict[str, Any]]]:
    ids = list(page.values_list("id", flat=True))
    rows = joined.fetch(ids)
    found = [price_id for price_id in ids if price_id in rows]
    return found, [rows[price_id] for price_id in found]


def server_price_rows(
    page: QuerySet, *, currency: str = "USD", price_change_since: datetime | None = None
) -> list[dict[str, Any]]:
    """`/server_prices` rows of `page`: the price (in `currency`), its vendor, region (with country),
    zone and server; with `price_change_since`, also `previous_price` (in `currency`).

    The server is as in `/servers` (its cheapest prices in `currency`, its scores), except that its
    `score_per_price` is the score per USD/hour of *this* price, as upstream reports it.
    """
    ids, rows = _page_with_ids(page, SERVER_PRICE_ROWS)
    if price_change_since is not None:
        _add_previous_prices(ids, rows, price_change_since, currency)
    usd_rate = exchange_rate("USD", currency)
    to_usd = rates_to("USD")
    for row in rows:
        server = row["server"]
        if server is None:  # cannot happen through ServerPriceFilterSet, which requires the server
            continue
        # In Python rather than SQL: one multiplication per row of a page beats a 40-branch CASE.
        usd_price = row["price"] * to_usd.get(row["currency"], 0.0)
        score = server["score"]
        server["score_per_price"] = round(score / usd_price, 6) if score is not None and usd_price else None
        if usd_rate != 1.0:
            for column in SERVER_HOURLY_PRICES:
                server[column] = _convert(server[column], usd_rate, SERVER_PRICE_DIGITS)
            server["min_price_ondemand_monthly"] = _convert(
                server["min_price_ondemand_monthly"], usd_rate, MONTHLY_PRICE_DIGITS
            )
        server["price"] = server["min_price"]
        # No benchmark is selected in this search (upstream answers null too).
        server["selected_benchmark_score"] = server["selected_benchmark_score_per_price"] = None
        row["server"] = {key: server[key] for key in _SERVER_KEYS}
        _convert_price_row(row, currency, SERVER_PRICE_DIGITS)
    return rows


def _add_previous_prices(ids: list[int], rows: list[dict[str, Any]], since: datetime, currency: str) -> None:
    """Each row's price before its first change since `since`, in `currency` (one more query)."""
    # Imported here: the history selectors build on this module.
    from apps.catalog.selectors.history import converted, previous_prices

    previous = previous_prices(ids, since)
    for price_id, row in zip(ids, rows):
        price, price_currency = previous.get(price_id, (None, None))
        row["previous_price"] = converted(price, price_currency, currency, SERVER_PRICE_DIGITS)


def storage_price_rows(page: QuerySet, *, currency: str = "USD") -> list[dict[str, Any]]:
    """`/storage_prices` rows of `page`: the price (in `currency`), its region (with country), vendor and storage."""
    rows = _page(page, STORAGE_PRICE_ROWS)
    for row in rows:
        _convert_price_row(row, currency, UNIT_PRICE_DIGITS)
    return rows


def traffic_price_rows(page: QuerySet, *, currency: str = "USD", monthly_traffic: float = 1) -> list[dict[str, Any]]:
    """`/traffic_prices` rows of `page`: the price (in `currency`), its region (with country) and
    vendor, and `price_monthly_traffic`, the cost of `monthly_traffic` GB under the (converted) tiers."""
    rows = _page(page, TRAFFIC_PRICE_ROWS)
    for row in rows:
        _convert_price_row(row, currency, UNIT_PRICE_DIGITS)
        total = tiered_price(row["price_tiered"], monthly_traffic, row["price"])
        row["price_monthly_traffic"] = round(total, UNIT_PRICE_DIGITS) if total else 0
    return rows


# About 280 KB of JSON (and 1.5 MB of dicts while it is made): what a dump holds for its client.
TABLE_CHUNK_ROWS = 1000


def server_price_table_stream(queryset: QuerySet, *, currency: str | None = None) -> Iterator[bytes]:
    """`/table/server_prices` as the bytes of one JSON array, chunk by chunk, read on a connection of its
    own (opened at the first chunk, closed with the stream): the whole table is never held."""
    reading = stream_connection(queryset.db)

    def body() -> Iterator[bytes]:
        with reading() as db:
            chunks = server_price_table_chunks(queryset, currency=currency, db=db, making=MAKING_CHUNKS)
            yield from json_array(chunks, making=MAKING_CHUNKS)

    return body()


def server_price_table_chunks(
    queryset: QuerySet,
    *,
    currency: str | None = None,
    db: BaseDatabaseWrapper | None = None,
    making: AbstractContextManager = nullcontext(),
) -> Iterator[list[dict[str, Any]]]:
    """`/table/server_prices`: the price rows alone, in chunks (the whole table does not fit in memory as dicts),
    read on `db` (by default the queryset's connection of this thread); each chunk's rows made within
    `making`, the database read outside it.

    Read on the cursor rather than through values_list(): on SQLite the ORM parses every row's
    tiers (JSON) and re-parses its timestamp, 80% of the time of a 430,000-row dump (8.5 s, now
    1.7 s); here the tiers' JSON text goes to orjson as it is, and a naive timestamp is marked UTC.
    Conversion to another currency needs the values, and takes the ORM's path.
    """
    db = db or connections[queryset.db]
    if currency:
        yield from _converted_table_chunks(queryset, currency, db, making)
        return
    sql, params = queryset.values_list(*SERVER_PRICE_COLUMNS).query.get_compiler(connection=db).as_sql()
    tiers = SERVER_PRICE_COLUMNS.index("price_tiered")
    observed = SERVER_PRICE_COLUMNS.index("observed_at")
    with db.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while records := cursor.fetchmany(TABLE_CHUNK_ROWS):
            chunk = []
            with making:
                for record in records:
                    values = list(record)
                    if isinstance(values[tiers], str):
                        values[tiers] = orjson.Fragment(values[tiers])
                    stamp = values[observed]
                    if isinstance(stamp, datetime) and stamp.tzinfo is None:  # SQLite: naive, in UTC
                        values[observed] = stamp.replace(tzinfo=UTC)
                    elif isinstance(stamp, str):
                        values[observed] = _iso_utc(stamp)
                    chunk.append(dict(zip(SERVER_PRICE_COLUMNS, values)))
            yield chunk


def _iso_utc(stored: str) -> str:
    """SQLite's stored UTC timestamp ("2026-06-01 00:00:00.000000") as orjson writes the datetime."""
    if stored.endswith(".000000"):
        stored = stored[:-7]
    return stored.replace(" ", "T", 1) + "+00:00"


def _converted_table_chunks(
    queryset: QuerySet, currency: str, db: BaseDatabaseWrapper, making: AbstractContextManager
) -> Iterator[list[dict[str, Any]]]:
    def converted(rows: list[tuple]) -> list[dict[str, Any]]:
        with making:
            chunk = [dict(zip(SERVER_PRICE_COLUMNS, values)) for values in rows]
            for row in chunk:
                _convert_price_row(row, currency, SERVER_PRICE_DIGITS)
        return chunk

    rows: list[tuple] = []
    compiler = queryset.values_list(*SERVER_PRICE_COLUMNS).query.get_compiler(connection=db)
    # The ORM's values_list().iterator() on `db`: the same conversions of the values, the same chunked read.
    for values in compiler.results_iter(tuple_expected=True, chunked_fetch=True, chunk_size=TABLE_CHUNK_ROWS):
        rows.append(values)
        if len(rows) == TABLE_CHUNK_ROWS:
            yield converted(rows)
            rows = []
    if rows:
        yield converted(rows)
