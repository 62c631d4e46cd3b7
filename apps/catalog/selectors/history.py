"""Reads of the catalog history (apps/catalog/history.py): `/changes`, `/syncs`, a server's and a
managed database's `/price_history`, and the price changes behind `price_change_since` (`/server_prices`,
`/database/{vendor}/{database}/prices`, `/database_storage_prices`).

Rows are plain dicts for the orjson renderer, read with `values_list()` in one query per page.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.catalog import choices
from apps.catalog.criteria import PriceHistoryQuery
from apps.catalog.models import (
    CHANGE_KEY_COLUMNS,
    CatalogChange,
    DatabasePrice,
    DatabaseStoragePrice,
    Region,
    ServerPrice,
    SyncRun,
)
from apps.catalog.pricing import MONTHLY_PRICE_DIGITS, SERVER_PRICE_DIGITS, converted, monthly_price
from apps.catalog.selectors.catalog import database_id_of, server_id_of
from apps.catalog.sql import fetch, placeholders, table

CHANGE_VALUES = (
    "id",
    "sync_id",
    "sync__finished_at",
    "table",
    "kind",
    "field",
    *CHANGE_KEY_COLUMNS,
    "old",
    "new",
    "currency",
)
SYNC_VALUES = ("id", "finished_at", "started_at", "data_hash", "schema_version", "rows", "changes")


def change_rows(page: QuerySet) -> list[dict[str, Any]]:
    """`/changes` rows of `page` (filtered, ordered, sliced CatalogChange rows), the sync's time joined."""
    rows = []
    key_at = CHANGE_VALUES.index(CHANGE_KEY_COLUMNS[0])
    for values in page.values_list(*CHANGE_VALUES):
        key = {
            column: value
            for column, value in zip(CHANGE_KEY_COLUMNS, values[key_at : key_at + len(CHANGE_KEY_COLUMNS)])
            if value is not None
        }
        rows.append(
            {
                "id": values[0],
                "sync": values[1],
                "time": values[2],
                "table": values[3],
                "kind": values[4],
                "key": key,
                "field": values[5],
                "old": values[-3],
                "new": values[-2],
                "currency": values[-1],
            }
        )
    return rows


def sync_rows(page: QuerySet) -> list[dict[str, Any]]:
    """`/syncs` rows of `page` (SyncRun rows)."""
    return [
        {
            "id": run_id,
            "time": finished_at,
            "started_at": started_at,
            "data_hash": data_hash,
            "schema_version": schema_version,
            "rows": rows or {},
            "changes": changes,
        }
        for run_id, finished_at, started_at, data_hash, schema_version, rows, changes in page.values_list(*SYNC_VALUES)
    ]


# --- price_change_since ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackedPrices:
    """A price table whose changes the syncs record, as the reads of those changes name it: its
    `table` in CatalogChange, its model, and its natural key (CatalogChange's columns of the same names)."""

    table: str
    model: type[Model]
    keys: tuple[str, ...]


SERVER_PRICE_CHANGES = TrackedPrices(
    choices.TrackedTable.SERVER_PRICE, ServerPrice, ("vendor_id", "region_id", "zone_id", "server_id", "allocation")
)
DATABASE_PRICE_CHANGES = TrackedPrices(
    choices.TrackedTable.DATABASE_PRICE,
    DatabasePrice,
    ("vendor_id", "region_id", "database_id", "allocation", "ha", "ha_strategy"),
)
DATABASE_STORAGE_PRICE_CHANGES = TrackedPrices(
    choices.TrackedTable.DATABASE_STORAGE_PRICE, DatabaseStoragePrice, ("vendor_id", "region_id", "database_storage_id")
)


def _price_changes_sql(prices: TrackedPrices, *, from_prices: bool = False) -> str:
    """The price changes (kind `changed` of the `price` column) of the syncs finished since %s,
    joined to the prices of `prices` they are about.

    CROSS JOIN fixes SQLite's join order (PostgreSQL plans it as any join). From the syncs for the
    ids (a recent `since` reads only the recent changes, by the sync's index); from the prices for a
    page's previous prices (a few prices, each with its own changes by the server's or database's index).
    """
    on = " AND ".join(f"p.{column} = c.{column}" for column in prices.keys)
    kind = f"c.\"table\" = '{prices.table}' AND c.kind = '{choices.ChangeKind.CHANGED}' AND c.field = 'price'"
    if from_prices:
        tables = f"{table(prices.model)} p CROSS JOIN {table(CatalogChange)} c CROSS JOIN {table(SyncRun)} s"
    else:
        tables = f"{table(SyncRun)} s CROSS JOIN {table(CatalogChange)} c CROSS JOIN {table(prices.model)} p"
    return f"FROM {tables} WHERE s.finished_at >= %s AND c.sync_id = s.id AND {kind} AND {on}"


def prices_changed_since(prices: TrackedPrices, since: datetime) -> RawSQL:
    """SQL for `id__in`: the ids of the prices of `prices` whose price changed at a sync since `since`."""
    return RawSQL(f"SELECT p.id {_price_changes_sql(prices)}", [since])


def previous_prices(prices: TrackedPrices, ids: Iterable[int], since: datetime) -> dict[int, tuple[float, str]]:
    """{price id: (its price before its first change since `since`, that price's currency)}."""
    ids = list(ids)
    if not ids:
        return {}
    changes = _price_changes_sql(prices, from_prices=True)
    sql = f"SELECT p.id, c.old, c.currency {changes} AND p.id IN ({placeholders(len(ids))}) ORDER BY c.id DESC"
    previous: dict[int, tuple[float, str]] = {}
    for price_id, old, currency in fetch(sql, [since, *ids]):
        # Newest first: the last one seen is the earliest change, whose `old` is the price before.
        previous[price_id] = (json.loads(old) if isinstance(old, str) else old, currency)
    return previous


# --- /server/{vendor}/{server}/price_history, /database/{vendor}/{database}/price_history ----------------


@dataclass(frozen=True)
class PricedResource:
    """A resource whose prices `.../price_history` follows: how its price changes are recorded (`prices`),
    the column and the tracked table of the resource itself (a resource gone from the catalog keeps its
    history under its id), how it is named (its id by id or API reference), what tells its prices apart
    (`series`, after the vendor and the resource: region first), what each series carries from its latest
    state besides its unit (`described`), and a row's fields in order."""

    prices: TrackedPrices
    resource_column: str
    resource_table: str
    id_of: Callable[[str, str], str | None]
    series: tuple[str, ...]
    described: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def state(self) -> tuple[str, ...]:
        """What a price's segments are made of, as a price row and its recorded changes name it."""
        return ("status", "price", "price_tiered", "unit", "currency", *self.described)


SERVER_PRICE_HISTORY = PricedResource(
    prices=SERVER_PRICE_CHANGES,
    resource_column="server_id",
    resource_table=choices.TrackedTable.SERVER,
    id_of=server_id_of,
    series=("region_id", "zone_id", "allocation"),
    described=("operating_system",),
    fields=("region_id", "zone_id", "country_id", "allocation", "operating_system", "unit", "currency", "prices"),
)
DATABASE_PRICE_HISTORY = PricedResource(
    prices=DATABASE_PRICE_CHANGES,
    resource_column="database_id",
    resource_table=choices.TrackedTable.DATABASE,
    id_of=database_id_of,
    series=("region_id", "allocation", "ha", "ha_strategy"),
    described=(),
    fields=("region_id", "country_id", "allocation", "ha", "ha_strategy", "unit", "currency", "prices"),
)
SeriesKey = tuple[str, ...]  # the values of PricedResource.series


def history_start(*, now: datetime | None = None) -> datetime | None:
    """Since when Keeper knows the catalog's past: the last sync that compared nothing (the first
    one, or one with history off), and at most KEEPER_HISTORY_DAYS ago (older changes are pruned)."""
    baseline = (
        SyncRun.objects.succeeded().filter(changes__isnull=True).order_by("-id").values_list("finished_at", flat=True)
    ).first()
    days = settings.KEEPER_HISTORY_DAYS
    if days and baseline is not None:
        return max(baseline, (now or timezone.now()) - timedelta(days=days))
    return baseline


def price_history_rows(
    resource: PricedResource, *, vendor_id: str, name: str, query: PriceHistoryQuery
) -> list[dict[str, Any]] | None:
    """Per series of the resource's prices (a server's region, zone and allocation; a database's region,
    allocation, HA level and strategy), its active prices over time as (from, until, price) segments,
    oldest first (`until` null: still the price); None for a resource unknown to the catalog and its history.

    Rebuilt from the current prices backwards, sync by sync: each recorded change is undone in turn
    (a removed price comes back as its recorded row, an added one disappears).
    """
    resource_id = resource.id_of(vendor_id, name)
    if resource_id is None:
        # A resource gone from the catalog keeps its history, under its id.
        gone = CatalogChange.objects.filter(
            table__in=(resource.resource_table, resource.prices.table),
            vendor_id=vendor_id,
            **{resource.resource_column: name},
        ).exists()
        if not gone:
            return None
        resource_id = name
    own = {"vendor_id": vendor_id, resource.resource_column: resource_id}
    prices = resource.prices.model.objects.filter(**own)
    changes = CatalogChange.objects.filter(table=resource.prices.table, **own)
    if query.regions:
        prices, changes = prices.filter(region_id__in=query.regions), changes.filter(region_id__in=query.regions)
    if query.allocation:
        prices, changes = prices.filter(allocation=query.allocation), changes.filter(allocation=query.allocation)
    width, state_columns = len(resource.series), resource.state
    states: dict[SeriesKey, dict[str, Any] | None] = {
        tuple(values[:width]): dict(zip(state_columns, values[width:]))
        for values in prices.values_list(*resource.series, *state_columns)
    }
    records = changes.order_by("-id").values_list(
        "sync_id", "sync__finished_at", *resource.series, "kind", "field", "old"
    )
    start = history_start()
    countries = dict(Region.objects.filter(vendor_id=vendor_id).values_list("region_id", "country_id"))
    allocation_at = resource.series.index("allocation")

    def segment(key: SeriesKey, state: dict[str, Any] | None, since: datetime, end: datetime | None) -> None:
        ondemand = key[allocation_at] == choices.Allocation.ONDEMAND
        _segment(series.setdefault(key, []), ondemand, state, since, end, query.currency)

    series: dict[SeriesKey, list[dict[str, Any]]] = {key: [] for key in states}
    latest = {key: state for key, state in states.items() if state is not None}
    ends: dict[SeriesKey, datetime | None] = {}
    for (_sync_id, at), in_sync in groupby(records, key=lambda record: (record[0], record[1])):
        undone: dict[SeriesKey, dict[str, Any] | None] = {}
        for record in in_sync:
            key, (kind, field, old) = tuple(record[2 : 2 + width]), record[2 + width :]
            if key not in undone:
                state = states.get(key)
                segment(key, state, at, ends.get(key))
                undone[key] = dict(state) if state is not None else None
            before = undone[key]
            if kind == choices.ChangeKind.ADDED:
                undone[key] = None
            elif kind == choices.ChangeKind.REMOVED:
                undone[key] = dict(old or {})
                latest.setdefault(key, undone[key])
            elif before is not None:  # a status or a column: its value before
                before["status" if kind == choices.ChangeKind.STATUS else field] = old
        for key, before in undone.items():
            states[key], ends[key] = before, at
    if start is not None:
        for key, state in states.items():
            segment(key, state, start, ends.get(key))

    rows = []
    for key in sorted(series):
        country = countries.get(key[0])
        if query.countries and country not in query.countries:
            continue
        segments = _merged(reversed(series[key]))
        if query.since is not None:
            segments = [s for s in segments if s["until"] is None or s["until"] > query.since]
        if not segments:
            continue
        last = latest.get(key) or {}
        values = {
            **dict(zip(resource.series, key)),
            "country_id": country,
            **{column: last.get(column) for column in (*resource.described, "unit")},
            "currency": query.currency,
            "prices": segments,
        }
        rows.append({field: values[field] for field in resource.fields})
    return rows


def _segment(
    segments: list[dict[str, Any]],
    ondemand: bool,
    state: dict[str, Any] | None,
    start: datetime,
    end: datetime | None,
    currency: str,
) -> None:
    """Add [start, end) at the state's price when the price was active then (segments newest first).

    As the importer derives `price_monthly`: on-demand hourly prices for 730 hours, tiers applied."""
    if state is None or state.get("status") != choices.Status.ACTIVE or (end is not None and start >= end):
        return
    price, row_currency = state.get("price"), state.get("currency")
    monthly = None
    hourly = state.get("unit") == choices.PriceUnit.HOUR
    if ondemand and hourly and price is not None:
        monthly = monthly_price(state.get("price_tiered") or [], price)
    segments.append(
        {
            "from": start,
            "until": end,
            "price": converted(price, row_currency, currency, SERVER_PRICE_DIGITS),
            "price_monthly": converted(monthly, row_currency, currency, MONTHLY_PRICE_DIGITS),
        }
    )


def _merged(segments: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent segments at the same prices as one (a sync that changed something else in between)."""
    merged: list[dict[str, Any]] = []
    for segment in segments:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous["until"] == segment["from"]
            and (previous["price"], previous["price_monthly"]) == (segment["price"], segment["price_monthly"])
        ):
            previous["until"] = segment["until"]
        else:
            merged.append(segment)
    return merged


def cheapest_price_steps(*, vendor_id: str, server_id: str) -> dict[str, list[tuple[datetime, datetime | None, float]]]:
    """The server's cheapest active on-demand and spot hourly price (USD) over time, as steps
    (from, until, price) per allocation: the admin's chart of the server."""
    query = PriceHistoryQuery()
    series = price_history_rows(SERVER_PRICE_HISTORY, vendor_id=vendor_id, name=server_id, query=query) or []
    steps: dict[str, list[tuple[datetime, datetime | None, float]]] = {}
    for allocation in (choices.Allocation.ONDEMAND, choices.Allocation.SPOT):
        segments = [
            segment
            for row in series
            if row["allocation"] == allocation and row["unit"] == choices.PriceUnit.HOUR
            for segment in row["prices"]
            if segment["price"] is not None
        ]
        bounds = sorted({s["from"] for s in segments} | {s["until"] for s in segments if s["until"] is not None})
        ends: list[datetime | None] = [*bounds[1:], None]
        allocation_steps: list[tuple[datetime, datetime | None, float]] = []
        for start, end in zip(bounds, ends):
            prices = [
                s["price"]
                for s in segments
                if s["from"] <= start and (s["until"] is None or (end is not None and s["until"] >= end))
            ]
            if not prices:
                continue
            if allocation_steps and allocation_steps[-1][1] == start and allocation_steps[-1][2] == min(prices):
                allocation_steps[-1] = (allocation_steps[-1][0], end, min(prices))
            else:
                allocation_steps.append((start, end, min(prices)))
        steps[allocation] = allocation_steps
    return steps
