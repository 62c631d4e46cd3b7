"""One managed database's resources as the newest Spare Cores API returns them: the database itself, its
prices and its benchmark scores (`/database/{vendor}/{database}/...`).

As for one server (selectors/server_details.py): a database is named by its id or its API reference (the id
wins when both match), resolved with one indexed lookup of any status (upstream keeps every database in its
lookup, retired ones too); its rows are then read by constant keys, with statements spelled once per
database (SQL text cached) and rows read straight from the cursor (sql.RowFormat).
"""

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from apps.catalog import choices
from apps.catalog.criteria import DatabasePriceQuery
from apps.catalog.models import Database, DatabasePrice
from apps.catalog.pricing import SERVER_PRICE_DIGITS, convert_price_row
from apps.catalog.selectors.catalog import database_id_of, named_values
from apps.catalog.selectors.history import DATABASE_PRICE_CHANGES, prices_changed_since
from apps.catalog.selectors.prices import DATABASE_PRICE_COLUMNS, add_previous_prices
from apps.catalog.selectors.server_details import resource_benchmark_rows
from apps.catalog.sql import DATABASE_ROW, PlaceShape, RowFormat, fetch, place_params, postgres, table

PRICE_ROW = RowFormat(DatabasePrice, tuple(DATABASE_PRICE_COLUMNS))


def database_row(*, vendor_id: str, database: str) -> dict[str, Any] | None:
    """The database named `database` (any status) with every upstream column; None for an unknown one."""
    values = named_values(Database, "database_id", vendor_id, database, DATABASE_ROW.select("t"))
    return DATABASE_ROW.read(values, start=1) if values is not None else None


@lru_cache(maxsize=64)
def _prices_sql(places: PlaceShape, changed: bool, postgres: bool) -> str:
    # The derived country of each price (stored at sync) spares joining the regions.
    conditions = [
        "p.vendor_id = %s AND p.database_id = %s AND p.status = %s",
        *places.conditions("p", country="p.country_id"),
    ]
    if changed:
        # The text only: the time is bound per request.
        conditions.append(f"p.id IN ({prices_changed_since(DATABASE_PRICE_CHANGES, datetime.now(UTC)).sql})")
    return (
        f"SELECT p.id, {PRICE_ROW.select('p')} FROM {table(DatabasePrice)} p WHERE {' AND '.join(conditions)} "
        "ORDER BY p.region_id, p.allocation, p.ha, p.ha_strategy"
    )


def database_price_rows(*, vendor_id: str, database: str, query: DatabasePriceQuery) -> list[dict[str, Any]] | None:
    """The database's active prices in the query's places, in its currency (4 digits, as upstream); None for
    an unknown database. Ordered by region, allocation, HA level and strategy (upstream's primary key order).

    With `price_change_since`, only the prices whose price changed at a sync since then, each with
    `previous_price` (one more query)."""
    database_id = database_id_of(vendor_id, database)
    if database_id is None:
        return None
    since = query.price_change_since
    sql = _prices_sql(PlaceShape.of(query.places), since is not None, postgres())
    params = [vendor_id, database_id, choices.Status.ACTIVE, *place_params(query.places)]
    currency, currency_at = query.currency, 1 + PRICE_ROW.columns.index("currency")
    ids, rows = [], []
    for values in fetch(sql, [*params, *([since] if since is not None else [])]):
        converted = values[currency_at] != currency
        row = PRICE_ROW.read(values, parse=("price_tiered",) if converted else (), start=1)
        if converted:
            # Upstream's Python rounding, digit for digit.
            convert_price_row(row, currency, SERVER_PRICE_DIGITS)
        ids.append(values[0])
        rows.append(row)
    if since is not None:
        add_previous_prices(DATABASE_PRICE_CHANGES, ids, rows, since, currency, SERVER_PRICE_DIGITS)
    return rows


def database_benchmark_rows(*, vendor_id: str, database: str) -> list[dict[str, Any]] | None:
    """The database's active benchmark scores, in the display order of a server's; None for an unknown database."""
    database_id = database_id_of(vendor_id, database)
    if database_id is None:
        return None
    database_type = choices.ResourceType.DATABASE
    return resource_benchmark_rows(vendor_id=vendor_id, resource_id=database_id, resource_type=database_type)
