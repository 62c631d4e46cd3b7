"""Price searches (`/server_prices`, `/storage_prices`, `/traffic_prices`, `/database_storage_prices`) and the
`/table/server_prices` and `/table/database_price` dumps.

A search is a validated `PriceSearch` (apps/catalog/price_criteria.py); its page is one SQL statement
(text cached per shape, values bound): the page's ids and sort keys first, sorted on that narrow key
alone (SQLite walks a price index, PostgreSQL sorts the key, not the wide rows), then the page's wide
rows with their related rows joined (`JoinedRows`, built from sql.RowFormat). A price never vanishes
because its region's country or its zone is missing from the catalog (real dumps have such gaps): the
row then says `"country": null` or `"zone": null`.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from apps.catalog import choices
from apps.catalog.criteria import COLUMN, TEXT, VENDOR_FRAMEWORK, Condition
from apps.catalog.models import (
    Country,
    DatabasePrice,
    DatabaseStorage,
    DatabaseStoragePrice,
    Region,
    Server,
    ServerPrice,
    Storage,
    StoragePrice,
    TrafficPrice,
    Vendor,
    VendorComplianceLink,
    Zone,
)
from apps.catalog.price_criteria import (
    DATABASE_STORAGE_PRICE_ORDERS,
    PRICE_IN_CURRENCY,
    REGION,
    SCORE_PER_USD,
    SCORED_ORDERS,
    SERVER,
    SERVER_DERIVED,
    SERVER_PRICE_ORDERS,
    SIZE_WITHIN,
    STORAGE,
    STORAGE_PRICE_ORDERS,
    TRAFFIC_PRICE_ORDERS,
    PriceSearch,
    PriceTableQuery,
)
from apps.catalog.pricing import (
    MONTHLY_PRICE_DIGITS,
    SERVER_PRICE_DIGITS,
    UNIT_PRICE_DIGITS,
    convert_amount,
    convert_price_row,
    converted,
    exchange_rate,
    known_currencies,
    tiered_price,
)
from apps.catalog.selectors.history import (
    DATABASE_STORAGE_PRICE_CHANGES,
    SERVER_PRICE_CHANGES,
    TrackedPrices,
    previous_prices,
    prices_changed_since,
)
from apps.catalog.sql import PlaceShape, RowFormat, fetch, place_params, placeholders, postgres, quote, table
from apps.catalog.sql import table_columns as _table_columns
from apps.catalog.version import catalog_version, derived_per_catalog
from keeper.api.streams import MAKING_CHUNKS, json_array, stream_connection


def _keys_first(model: type[Model], keys: tuple[str, ...]) -> list[str]:
    """The upstream columns with the natural key first, in the order upstream's rows have them."""
    columns = _table_columns(model)
    return [*keys, *(column for column in columns if column not in keys)]


SERVER_PRICE_COLUMNS = _keys_first(
    ServerPrice, ("vendor_id", "region_id", "zone_id", "server_id", "operating_system", "allocation")
)
STORAGE_PRICE_COLUMNS = _keys_first(StoragePrice, ("vendor_id", "region_id", "storage_id"))
TRAFFIC_PRICE_COLUMNS = _keys_first(TrafficPrice, ("vendor_id", "region_id", "direction"))
DATABASE_PRICE_COLUMNS = _keys_first(
    DatabasePrice, ("vendor_id", "region_id", "database_id", "allocation", "ha", "ha_strategy")
)
DATABASE_STORAGE_PRICE_COLUMNS = _keys_first(DatabaseStoragePrice, ("vendor_id", "region_id", "database_storage_id"))
SERVER_COLUMNS = _table_columns(Server)
# A server's derived prices (USD), as /servers reports them.
SERVER_HOURLY_PRICES = ("min_price", "min_price_spot", "min_price_ondemand")
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
# Timestamps end as the renderer printed the aware datetimes these answers once held.
_UTC = "+00:00"


# --- rows: a price row with its related rows nested ------------------------------------------------


@dataclass(frozen=True)
class Nested:
    """A related row (`row`, selected from `alias`) nested under `key` of its parent (the price row, or
    the nested row named `parent`), found by (its column, the parent's column) pairs. `kept` rows (the
    small tables: vendors, regions with their country, zones, storages) are read once per catalog version
    (`kept_rows`) and looked up; the others are joined."""

    key: str
    row: RowFormat
    alias: str
    on: tuple[tuple[str, str], ...]
    parent: str = ""
    kept: bool = False


@dataclass(frozen=True)
class JoinedRows:
    """Rows of `row` (from alias "p") with their related rows nested, each read by its RowFormat.

    LEFT JOINs (and lookups of kept rows): a related row missing from the catalog (a region's country, a
    zone) keeps the price, with `None` in its place. JSON is decoded and re-encoded (upstream's text has
    spaces the answers never had), so the answers are those the ORM's values once made.
    """

    row: RowFormat
    nested: tuple[Nested, ...]
    joined: tuple[Nested, ...] = field(default=(), init=False, compare=False)
    # The JSON columns each RowFormat decodes: the price row's, then each joined row's.
    parse: list[tuple[str, ...]] = field(default_factory=list, init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "joined", tuple(part for part in self.nested if not part.kept))
        self.parse.extend(_json_columns(row) for row in (self.row, *(part.row for part in self.joined)))

    def select(self) -> str:
        return ", ".join([self.row.select("p"), *(part.row.select(part.alias) for part in self.joined)])

    def joins(self) -> str:
        joins = []
        for part in self.joined:
            on = " AND ".join(f"{part.alias}.{quote(mine)} = p.{quote(theirs)}" for mine, theirs in part.on)
            joins.append(f"LEFT JOIN {table(part.row.model)} {part.alias} ON ({on})")
        return " ".join(joins)

    def read(self, values: Sequence[Any], start: int, kept: dict[str, dict[tuple, dict[str, Any]]]) -> dict[str, Any]:
        """The row of `values` (from `start`) with its related rows nested (`kept`: `kept_rows()`)."""
        row = self.row.read(values, parse=self.parse[0], start=start)
        start += self.row.width
        joined = iter(zip(self.joined, self.parse[1:]))
        for part in self.nested:
            if part.kept:
                if not part.parent:  # a kept row's own related rows are nested in it already
                    row[part.key] = kept[part.key].get(tuple(row[theirs] for _, theirs in part.on))
                continue
            part, parse = next(joined)
            # Not joined: its first column (a key) is NULL.
            row[part.key] = None if values[start] is None else part.row.read(values, parse=parse, start=start)
            start += part.row.width
        return row


def _json_columns(row: RowFormat) -> tuple[str, ...]:
    return tuple(
        column for column in row.columns if row.model._meta.get_field(column).get_internal_type() == "JSONField"
    )


def _format(model: type[Model], columns: Sequence[str] | None = None) -> RowFormat:
    return RowFormat(model, tuple(columns or _table_columns(model)), _UTC)


_VENDOR = Nested("vendor", _format(Vendor), "v", (("vendor_id", "vendor_id"),), kept=True)
_REGION = Nested("region", _format(Region), "r", (("vendor_id", "vendor_id"), ("region_id", "region_id")), kept=True)
_COUNTRY = Nested("country", _format(Country), "c", (("country_id", "country_id"),), parent="region", kept=True)
_ZONE = Nested(
    "zone",
    _format(Zone),
    "z",
    (("vendor_id", "vendor_id"), ("region_id", "region_id"), ("zone_id", "zone_id")),
    kept=True,
)
_SERVER = Nested(
    "server",
    _format(Server, (*SERVER_COLUMNS, *SERVER_DERIVED)),
    "s",
    (("vendor_id", "vendor_id"), ("server_id", "server_id")),
)
_STORAGE = Nested(
    "storage", _format(Storage), "st", (("vendor_id", "vendor_id"), ("storage_id", "storage_id")), kept=True
)
# A managed database's storage product: the STORAGE relation of its prices (joined: a few rows a page).
_DATABASE_STORAGE = Nested(
    "database_storage",
    _format(DatabaseStorage),
    "st",
    (("vendor_id", "vendor_id"), ("database_storage_id", "database_storage_id")),
)
SERVER_PRICE_ROWS = JoinedRows(
    _format(ServerPrice, (*SERVER_PRICE_COLUMNS, "price_monthly")), (_VENDOR, _REGION, _COUNTRY, _ZONE, _SERVER)
)
STORAGE_PRICE_ROWS = JoinedRows(_format(StoragePrice, STORAGE_PRICE_COLUMNS), (_REGION, _COUNTRY, _VENDOR, _STORAGE))
TRAFFIC_PRICE_ROWS = JoinedRows(_format(TrafficPrice, TRAFFIC_PRICE_COLUMNS), (_REGION, _COUNTRY, _VENDOR))
DATABASE_STORAGE_PRICE_ROWS = JoinedRows(
    _format(DatabaseStoragePrice, DATABASE_STORAGE_PRICE_COLUMNS), (_REGION, _COUNTRY, _VENDOR, _DATABASE_STORAGE)
)


def _read_kept_rows() -> dict[str, dict[tuple, dict[str, Any]]]:
    """The kept related rows by their key: vendors, regions (each with its country), zones, storages. A few
    thousand small rows, read once per catalog version instead of joined to every page (rows are shared
    between answers: nothing changes them)."""

    def rows(part: Nested) -> list[dict[str, Any]]:
        parse = _json_columns(part.row)
        records = fetch(f"SELECT {part.row.select(part.alias)} FROM {table(part.row.model)} {part.alias}", [])
        return [part.row.read(record, parse=parse) for record in records]

    def by_key(part: Nested, found: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
        return {tuple(row[mine] for mine, _ in part.on): row for row in found}

    countries = {row["country_id"]: row for row in rows(_COUNTRY)}
    regions = rows(_REGION)
    for region in regions:
        region["country"] = countries.get(region["country_id"])
    return {
        "vendor": by_key(_VENDOR, rows(_VENDOR)),
        "region": by_key(_REGION, regions),
        "zone": by_key(_ZONE, rows(_ZONE)),
        "storage": by_key(_STORAGE, rows(_STORAGE)),
    }


kept_rows = derived_per_catalog(_read_kept_rows)


# --- the statement of a search -------------------------------------------------------------------


@cache
def rates_to(currency: str) -> dict[str, float]:
    """Units of `currency` per unit of each known currency (bundled ECB rates), USD and EUR first:
    most prices are in them, and a SQL CASE tries its branches in order."""
    codes = sorted(known_currencies(), key=lambda code: (code not in ("USD", "EUR"), code != "USD", code))
    return {code: exchange_rate(code, currency) for code in codes}


def _price_in_sql() -> str:
    """SQL: the price row's price in the currency whose rates are bound (`_rate_params`)."""
    return f"(p.price * CASE p.currency {' '.join(['WHEN %s THEN %s'] * len(rates_to('USD')))} END)"


def _rate_params(currency: str) -> list[Any]:
    return [value for code, rate in rates_to(currency).items() for value in (code, rate)]


Binder = Callable[[PriceSearch], list[Any]]


@dataclass(frozen=True)
class Part:
    """A piece of SQL and how its values are bound from the search."""

    sql: str
    bind: Binder = lambda search: []  # noqa: E731


@dataclass(frozen=True, eq=False)
class Kind:
    """One price search: its table, the relations its conditions and orderings reach, its rows, and how the
    catalog history records its price changes (for `price_change_since`, where the search takes it)."""

    model: type[Model]
    orders: dict[str, tuple[str, str]]
    rows: JoinedRows
    relations: dict[str, Nested]
    country: str  # SQL of a price's country code
    changes: TrackedPrices | None = None


SERVER_PRICES = Kind(
    ServerPrice,
    SERVER_PRICE_ORDERS,
    SERVER_PRICE_ROWS,
    {SERVER: _SERVER, REGION: _REGION},
    "p.country_id",
    SERVER_PRICE_CHANGES,
)
STORAGE_PRICES = Kind(
    StoragePrice,
    STORAGE_PRICE_ORDERS,
    STORAGE_PRICE_ROWS,
    {STORAGE: _STORAGE, REGION: _REGION},
    "r.country_id",
)
TRAFFIC_PRICES = Kind(TrafficPrice, TRAFFIC_PRICE_ORDERS, TRAFFIC_PRICE_ROWS, {REGION: _REGION}, "r.country_id")
DATABASE_STORAGE_PRICES = Kind(
    DatabaseStoragePrice,
    DATABASE_STORAGE_PRICE_ORDERS,
    DATABASE_STORAGE_PRICE_ROWS,
    {STORAGE: _DATABASE_STORAGE, REGION: _REGION},
    "r.country_id",
    DATABASE_STORAGE_PRICE_CHANGES,
)
# ServerPrice's index of one server's prices (apps/catalog/models.py).
SERVER_PRICES_BY_SERVER = "server_price_server"
_ALIASES = {COLUMN: "p", SERVER: "s", REGION: "r", STORAGE: "st", TEXT: "s", SCORE_PER_USD: "s"}
_COMPARISONS = {"exact": "=", "gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _condition(index: int, shape: tuple[str, str, tuple[str, ...], int]) -> Part:
    """The SQL of the search's `index`-th condition (of this shape) and its binder."""
    on, lookup, columns, count = shape

    def values(search: PriceSearch) -> list[Any]:
        return list(search.conditions[index].values)

    if on == TEXT:
        like = "ILIKE" if postgres() else "LIKE"
        sql = "(" + " OR ".join(f"s.{quote(column)} {like} %s ESCAPE '\\'" for column in columns) + ")"
        return Part(sql, lambda search: [_like(search.conditions[index].values[0])] * len(columns))
    if on == SIZE_WITHIN:
        return Part("st.min_size <= %s AND st.max_size >= %s", lambda search: values(search) * 2)
    if on == VENDOR_FRAMEWORK:
        frameworks = f"SELECT vendor_id FROM {table(VendorComplianceLink)} WHERE compliance_framework_id"
        return Part(f"p.vendor_id IN ({frameworks} IN ({placeholders(count)}))", values)
    if on == PRICE_IN_CURRENCY:
        return Part(
            f"{_price_in_sql()} {_COMPARISONS[lookup]} %s",
            lambda search: [*_rate_params(search.currency), *values(search)],
        )
    if on == SCORE_PER_USD:
        return Part(
            f"s.score / NULLIF({_price_in_sql()}, 0) {_COMPARISONS[lookup]} %s",
            lambda search: [*_rate_params("USD"), *values(search)],
        )
    operand = f"{_ALIASES[on]}.{quote(columns[0])}"
    if lookup == "in":
        return Part(f"{operand} IN ({placeholders(count)})", values)
    return Part(f"{operand} {_COMPARISONS[lookup]} %s", values)


@dataclass(frozen=True)
class Shape:
    """What the statement's text depends on; everything else is a bound value."""

    kind: Kind
    conditions: tuple[tuple[str, str, tuple[str, ...], int], ...]
    places: PlaceShape
    order_by: str
    descending: bool
    only_active: bool
    changed_since: bool
    paged: bool
    join_servers: bool

    def reaches(self, relation: str) -> bool:
        """Whether a condition, the order or a country (not stored on the price) needs the `relation` joined."""
        ons = {on for on, *_ in self.conditions} | {self.kind.orders[self.order_by][0]}
        if relation == REGION and self.places.countries and self.kind.country.startswith("r."):
            return True
        return bool(ons & _REACHING[relation])


# What needs each relation joined.
_REACHING = {SERVER: {SERVER, TEXT, SCORE_PER_USD}, REGION: {REGION}, STORAGE: {STORAGE, SIZE_WITHIN}}


@dataclass(frozen=True)
class Statement:
    sql: str
    count_sql: str
    binders: tuple[Binder, ...]  # the filters' values, bound in both statements
    order_binder: Binder  # the sort key's values (before the filters')

    def params(self, search: PriceSearch) -> list[Any]:
        return [value for bind in self.binders for value in bind(search)]


def _order_key(shape: Shape) -> tuple[str, bool]:
    """SQL of the sort key, and whether it can be NULL (then NULLs come last in both directions)."""
    on, column = shape.kind.orders[shape.order_by]
    if on == SCORE_PER_USD:
        return f"s.score / NULLIF({_price_in_sql()}, 0)", True
    model = shape.kind.model if on == COLUMN else shape.kind.relations[on].row.model
    return f"{_ALIASES[on]}.{quote(column)}", model._meta.get_field(column).null


@lru_cache(maxsize=256)
def _statement(shape: Shape) -> Statement:
    kind = shape.kind
    where_parts = [_condition(index, condition) for index, condition in enumerate(shape.conditions)]
    where: list[Part] = list(where_parts)
    server_where = [part for part, (on, *_) in zip(where, shape.conditions) if on in (SERVER, TEXT, SCORE_PER_USD)]
    where = [part for part in where if part not in server_where]
    if shape.places:
        where.append(Part(shape.places.condition("p", country=kind.country), lambda s: place_params(s.places)))
    if shape.only_active:
        where.append(Part(f"p.status = '{choices.Status.ACTIVE}'"))
    if shape.changed_since and kind.changes is not None:
        # The statement's text (the time is bound per search).
        changed = prices_changed_since(kind.changes, datetime.now(UTC)).sql
        where.append(Part(f"p.id IN ({changed})", lambda s: [s.price_change_since]))
    joins = []
    prices = f"{table(kind.model)} p"
    if kind.model is ServerPrice:
        if shape.only_active:
            server_where.append(Part(f"s.status = '{choices.Status.ACTIVE}'"))
        if shape.order_by in SCORED_ORDERS:
            server_where.append(Part("s.score IS NOT NULL"))
        server = kind.relations[SERVER]
        on = " AND ".join(f"s.{quote(mine)} = p.{quote(theirs)}" for mine, theirs in server.on)
        conditions = " AND ".join([on, *(part.sql for part in server_where)])
        if shape.join_servers:
            joins.append(f"JOIN {table(Server)} s ON ({on})")
            where = [*server_where, *where]
            if not postgres():
                # Each server's prices from the index that starts with the server: SQLite, planning without
                # statistics, would otherwise read every price of the server's vendor from an index that
                # also matches the price conditions (vendor, allocation, status), once per server.
                prices = f"{prices} INDEXED BY {SERVER_PRICES_BY_SERVER}"
        else:
            # The database reads the prices in the order's index and checks each one's server, stopping after
            # a page (the fast way when most servers match): with EXISTS, or on SQLite for the servers of the
            # vendors asked for, in the list of those that match (read once from a server index, never the
            # wide server rows; a reference to the price, as score per price, needs EXISTS).
            vendors = next((i for i, c in enumerate(shape.conditions) if c[:3] == (COLUMN, "in", ("vendor_id",))), None)
            if postgres() or vendors is None or any(c[0] == SCORE_PER_USD for c in shape.conditions):
                check = Part(f"EXISTS (SELECT 1 FROM {table(Server)} s WHERE {conditions})", _binder(server_where))
            else:
                among = Part(
                    f"s.vendor_id IN ({placeholders(shape.conditions[vendors][3])})", where_parts[vendors].bind
                )
                matching = " AND ".join(part.sql for part in (among, *server_where))
                listed = f"SELECT s.vendor_id, s.server_id FROM {table(Server)} s WHERE {matching}"
                check = Part(f"(p.vendor_id, p.server_id) IN ({listed})", _binder([among, *server_where]))
            where = [check, *where]
    for relation in (REGION, STORAGE):
        if relation in kind.relations and shape.reaches(relation):
            part = kind.relations[relation]
            on = " AND ".join(f"{part.alias}.{quote(mine)} = p.{quote(theirs)}" for mine, theirs in part.on)
            joins.append(f"JOIN {table(part.row.model)} {part.alias} ON ({on})")
    key, nullable = _order_key(shape)
    direction = "DESC" if shape.descending else "ASC"
    nulls = " NULLS LAST" if nullable else ""
    tables = f"{prices} {' '.join(joins)}"
    condition = " AND ".join(part.sql for part in where) or "1 = 1"
    paging = " LIMIT %s OFFSET %s" if shape.paged else ""
    page = (
        f"SELECT p.id AS id, {key} AS k FROM {tables} WHERE {condition} ORDER BY {key} {direction}{nulls}, p.id{paging}"
    )
    rows = kind.rows
    sql = (
        f"WITH page AS ({page}) SELECT page.id, {rows.select()} FROM page "
        f"JOIN {table(kind.model)} p ON (p.id = page.id) {rows.joins()} ORDER BY page.k {direction}{nulls}, page.id"
    )
    count_sql = f"SELECT COUNT(*) FROM {tables} WHERE {condition}"
    order_binder: Binder = (lambda s: _rate_params("USD")) if "CASE p.currency" in key else (lambda s: [])
    return Statement(sql, count_sql, tuple(part.bind for part in where), order_binder)


def _binder(parts: list[Part]) -> Binder:
    return lambda search: [value for part in parts for value in part.bind(search)]


def _shape(kind: Kind, search: PriceSearch, join_servers: bool = False) -> Shape:
    return Shape(
        kind,
        tuple(condition.shape for condition in search.conditions),
        PlaceShape.of(search.places),
        search.order_by,
        search.descending,
        search.only_active,
        search.price_change_since is not None,
        search.limit != -1,
        join_servers,
    )


def _page(kind: Kind, search: PriceSearch, shape: Shape) -> tuple[list[int], list[dict[str, Any]], int | None]:
    """The page's price ids, rows and (when asked) the total count of matching prices."""
    statement = _statement(shape)
    params = statement.params(search)
    order = statement.order_binder(search)
    paging = [search.limit, (search.page - 1) * search.limit] if shape.paged else []
    # The key is selected (its values first), then ordered by (again); the filters' values come between.
    records = fetch(statement.sql, [*order, *params, *order, *paging])
    total = fetch(statement.count_sql, params)[0][0] if search.count else None
    kept = kept_rows() if records else {}
    return [record[0] for record in records], [kind.rows.read(record, 1, kept) for record in records], total


def _joins_servers(search: PriceSearch) -> bool:
    """Whether to join the servers (few match) or to check each price's server with EXISTS (most do).

    SQLite plans without table statistics (the catalog is not ANALYZEd): joined, it starts from the
    servers and sorts all their prices, even when nearly every server matches; with EXISTS it reads
    the cheapest prices from a price index and stops after a page, the fast way when most servers
    match and the slow way when few do. So: sorting by a server column needs the join; the default
    conditions alone are broad; otherwise the share of matching servers decides (counted once per
    catalog and set of conditions). PostgreSQL plans with statistics and turns either form into the
    plan it prefers.
    """
    on, _ = SERVER_PRICE_ORDERS[search.order_by]
    if on in (SERVER, SCORE_PER_USD):
        return True
    server = tuple(c for c in search.conditions if c.on in (SERVER, TEXT))
    if not server or all(c.columns == ("vcpus",) and c.lookup == "gte" and c.values[0] <= 1 for c in server):
        return False
    version = catalog_version()
    if version is None:
        return _few_servers_match(server, search.only_active)
    return _few_servers_match_in(version, server, search.only_active)


@lru_cache(maxsize=256)
def _few_servers_match_in(version: str, conditions: tuple[Condition, ...], only_active: bool) -> bool:
    return _few_servers_match(conditions, only_active)


def _few_servers_match(conditions: tuple[Condition, ...], only_active: bool) -> bool:
    search = PriceSearch(conditions=conditions)
    parts = [_condition(index, condition.shape) for index, condition in enumerate(conditions)]
    if only_active:
        parts.append(Part(f"s.status = '{choices.Status.ACTIVE}'"))
    matching = " AND ".join(part.sql for part in parts)
    total, count = fetch(
        f"SELECT COUNT(*), SUM(CASE WHEN {matching} THEN 1 ELSE 0 END) FROM {table(Server)} s",
        _binder(parts)(search),
    )[0]
    return (count or 0) * 2 < total


# --- the searches ---------------------------------------------------------------------------------


def server_prices(search: PriceSearch) -> tuple[list[dict[str, Any]], int | None]:
    """`/server_prices` rows and their total count (when asked): the price (in `currency`), its vendor,
    region (with country), zone and server; with `price_change_since`, also `previous_price`.

    The server is as in `/servers` (its cheapest prices in `currency`, its scores), except that its
    `score_per_price` is the score per USD/hour of *this* price, as upstream reports it.
    """
    ids, rows, total = _page(SERVER_PRICES, search, _shape(SERVER_PRICES, search, _joins_servers(search)))
    currency = search.currency
    if search.price_change_since is not None:
        add_previous_prices(SERVER_PRICE_CHANGES, ids, rows, search.price_change_since, currency, SERVER_PRICE_DIGITS)
    usd_rate = exchange_rate("USD", currency)
    to_usd = rates_to("USD")
    for row in rows:
        server = row["server"]
        # In Python rather than SQL: one multiplication per row of a page beats a 40-branch CASE.
        usd_price = row["price"] * to_usd.get(row["currency"], 0.0)
        score = server["score"]
        server["score_per_price"] = round(score / usd_price, 6) if score is not None and usd_price else None
        if usd_rate != 1.0:
            for column in SERVER_HOURLY_PRICES:
                server[column] = convert_amount(server[column], usd_rate, SERVER_PRICE_DIGITS)
            server["min_price_ondemand_monthly"] = convert_amount(
                server["min_price_ondemand_monthly"], usd_rate, MONTHLY_PRICE_DIGITS
            )
        server["price"] = server["min_price"]
        # No benchmark is selected in this search (upstream answers null too).
        server["selected_benchmark_score"] = server["selected_benchmark_score_per_price"] = None
        row["server"] = {key: server[key] for key in _SERVER_KEYS}
        convert_price_row(row, currency, SERVER_PRICE_DIGITS)
    return rows, total


def add_previous_prices(
    changes: TrackedPrices,
    ids: list[int],
    rows: list[dict[str, Any]],
    since: datetime,
    currency: str,
    digits: int,
) -> None:
    """Each row's (of the price ids `ids`) `previous_price`: its price before its first change since `since`
    (as `changes` records them), in `currency` to `digits` (one more query)."""
    previous = previous_prices(changes, ids, since)
    for price_id, row in zip(ids, rows):
        price, price_currency = previous.get(price_id, (None, None))
        row["previous_price"] = converted(price, price_currency, currency, digits)


def storage_prices(search: PriceSearch) -> tuple[list[dict[str, Any]], int | None]:
    """`/storage_prices` rows: the price (in `currency`), its region (with country), vendor and storage."""
    _, rows, total = _page(STORAGE_PRICES, search, _shape(STORAGE_PRICES, search))
    for row in rows:
        convert_price_row(row, search.currency, UNIT_PRICE_DIGITS)
    return rows, total


def database_storage_prices(search: PriceSearch) -> tuple[list[dict[str, Any]], int | None]:
    """`/database_storage_prices` rows: the price (in `currency`), its region (with country), vendor and database
    storage; with `price_change_since`, also `previous_price`."""
    ids, rows, total = _page(DATABASE_STORAGE_PRICES, search, _shape(DATABASE_STORAGE_PRICES, search))
    for row in rows:
        convert_price_row(row, search.currency, UNIT_PRICE_DIGITS)
    if search.price_change_since is not None:
        since, currency = search.price_change_since, search.currency
        add_previous_prices(DATABASE_STORAGE_PRICE_CHANGES, ids, rows, since, currency, UNIT_PRICE_DIGITS)
    return rows, total


def traffic_prices(search: PriceSearch) -> tuple[list[dict[str, Any]], int | None]:
    """`/traffic_prices` rows: the price (in `currency`), its region (with country) and vendor, and
    `price_monthly_traffic`, the cost of `monthly_traffic` GB under the (converted) tiers."""
    _, rows, total = _page(TRAFFIC_PRICES, search, _shape(TRAFFIC_PRICES, search))
    for row in rows:
        convert_price_row(row, search.currency, UNIT_PRICE_DIGITS)
        cost = tiered_price(row["price_tiered"], search.monthly_traffic, row["price"])
        row["price_monthly_traffic"] = round(cost, UNIT_PRICE_DIGITS) if cost else 0
    return rows, total


# --- /table/server_prices --------------------------------------------------------------------------

# About 280 KB of JSON (and 1.5 MB of dicts while it is made): what a dump holds for its client.
TABLE_CHUNK_ROWS = 1000
_TABLE_ROW = RowFormat(ServerPrice, tuple(SERVER_PRICE_COLUMNS), _UTC)
_DATABASE_PRICE_TABLE_ROW = RowFormat(DatabasePrice, tuple(DATABASE_PRICE_COLUMNS), _UTC)


def _table_statement(query: PriceTableQuery, row: RowFormat) -> tuple[str, list[Any]]:
    """The statement of a price table dump of `row`'s prices (and its values)."""
    search = PriceSearch(conditions=query.conditions, places=query.places, only_active=query.only_active)
    parts = [_condition(index, condition.shape) for index, condition in enumerate(query.conditions)]
    shape = PlaceShape.of(query.places)
    if shape:
        parts.append(Part(shape.condition("p"), lambda s: place_params(s.places)))
    if query.only_active:
        parts.append(Part(f"p.status = '{choices.Status.ACTIVE}'"))
    condition = " AND ".join(part.sql for part in parts) or "1 = 1"
    sql = f"SELECT {row.select('p')} FROM {table(row.model)} p WHERE {condition} ORDER BY p.id"
    return sql, _binder(parts)(search)


def server_price_table_stream(query: PriceTableQuery, *, using: str = "default") -> Iterator[bytes]:
    """`/table/server_prices` as the bytes of one JSON array, chunk by chunk, read on a connection of its
    own (opened at the first chunk, closed with the stream): the whole table is never held."""
    reading = stream_connection(using)

    def body() -> Iterator[bytes]:
        with reading() as db:
            yield from json_array(server_price_table_chunks(query, db=db, making=MAKING_CHUNKS), making=MAKING_CHUNKS)

    return body()


def server_price_table_chunks(
    query: PriceTableQuery,
    *,
    db: BaseDatabaseWrapper | None = None,
    making: AbstractContextManager = nullcontext(),
) -> Iterator[list[dict[str, Any]]]:
    """`/table/server_prices`: the price rows alone, in chunks (the whole table does not fit in memory as
    dicts), read on `db` (by default this thread's connection); each chunk's rows made within `making`,
    the database read outside it.

    Read on the cursor with sql.RowFormat: the tiers' JSON text goes to orjson as it is (re-encoded only
    when the prices are converted), timestamps come as text.
    """
    db = db or connections["default"]
    sql, params = _table_statement(query, _TABLE_ROW)
    currency = query.currency
    # PostgreSQL's text of a jsonb has spaces the answers never had: decoded there (as psycopg did).
    parse = ("price_tiered",) if currency or postgres() else ()
    with db.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while records := cursor.fetchmany(TABLE_CHUNK_ROWS):
            with making:
                chunk = [_TABLE_ROW.read(record, parse=parse) for record in records]
                if currency:
                    for row in chunk:
                        convert_price_row(row, currency, SERVER_PRICE_DIGITS)
            yield chunk


def database_price_table_rows(query: PriceTableQuery) -> list[dict[str, Any]]:
    """`/table/database_price`: the managed database prices alone, in their own currency unless `currency` is
    given (4 digits, as upstream). Tens of thousands of rows at most: answered whole (and cached), not streamed."""
    sql, params = _table_statement(query, _DATABASE_PRICE_TABLE_ROW)
    currency = query.currency
    # PostgreSQL's text of a jsonb has spaces the answers never had: decoded there, as for /table/server_prices.
    parse = ("price_tiered",) if currency or postgres() else ()
    rows = [_DATABASE_PRICE_TABLE_ROW.read(values, parse=parse) for values in fetch(sql, params)]
    if currency:
        for row in rows:
            convert_price_row(row, currency, SERVER_PRICE_DIGITS)
    return rows
