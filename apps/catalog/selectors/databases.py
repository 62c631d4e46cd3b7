"""`GET /databases` as one SQL statement, rows straight from the cursor (as selectors/servers.py does for servers).

DatabaseFilterSet (apps/catalog/filters/databases.py) declares and validates every parameter and hands this
selector one `DatabaseSearch` (apps/catalog/criteria.py). A search's *shape* (its conditions and how many
values each has, the places' counts, and the few values that change the statement: ordering, allocation,
statuses, extra storage) selects a plan, cached per shape: a request only binds values, runs the statement
and zips rows into dicts for orjson.

Prices follow the newest Spare Cores API: databases are priced on demand only (`min_price` is
`min_price_ondemand`). With `regions`, `vendor_regions` or `countries` the cheapest prices are those in the
places asked (DatabaseRegionPrice, derived at sync time); `extra_storage_size` adds the vendor's cheapest
data storage per month (/730 per hour) to every price; with `best_price_allocation` other than ANY that
allocation's price is `min_price` (and `price`), the ordering and the per-price score. All in USD, then
converted to `currency` with the bundled ECB rates.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection

from apps.catalog import choices, criteria
from apps.catalog.criteria import DatabaseSearch
from apps.catalog.models import (
    DATABASE_PRICES,
    BenchmarkScore,
    Database,
    DatabaseRegionPrice,
    DatabaseStorage,
    DatabaseStoragePrice,
    Server,
    Vendor,
)
from apps.catalog.places import Places
from apps.catalog.price_criteria import SERVER
from apps.catalog.pricing import (
    HOURS_PER_MONTH,
    SERVER_PRICE_DIGITS,
    Breakdown,
    exchange_rate,
    server_price_digits,
    tiered_price,
)
from apps.catalog.sql import (
    DATABASE_ROW,
    VENDOR_ROW,
    PlaceShape,
    fetch,
    json_list_holds,
    json_text,
    place_params,
    placeholders,
    postgres,
    quote,
    rounded,
    table,
)
from apps.catalog.version import catalog_version, derived_per_catalog

LIVE_COLUMNS = tuple(DATABASE_PRICES)  # min_price, min_price_ondemand, min_price_ondemand_monthly
BEST_PRICE_COLUMN = {
    choices.BestDatabasePriceAllocation.ANY: "min_price",
    choices.BestDatabasePriceAllocation.ONDEMAND_ONLY: "min_price_ondemand",
    choices.BestDatabasePriceAllocation.MONTHLY: "min_price_ondemand_monthly",
}
# A row's `price_breakdown`: its parts and their digits (per hour, or per month for the monthly ones).
PRICE_BREAKDOWN = tuple(
    (name, server_price_digits(name))
    for name in (
        "compute_min_price",
        "compute_min_price_ondemand",
        "compute_min_price_ondemand_monthly",
        "extra_storage_hourly",
        "extra_storage_monthly",
    )
)
# Orderings that leave out the databases without a price (in the asked places).
PRICED_ORDERINGS = frozenset(
    {*criteria.DATABASE_PRICE_ORDERINGS, "score_per_price", "selected_benchmark_score_per_price"}
)
# Orderings by upstream's DatabaseExtra scores, which no database has: the catalog order alone.
NULL_ORDERINGS = frozenset({"score", "score1", "score_per_price"})
# Orderings whose key the conditions keep from being null.
NEVER_NULL_ORDERINGS = frozenset({*criteria.DATABASE_PRICE_ORDERINGS, "selected_benchmark_score"})
_COMPARISONS = {"gte": ">=", "lte": "<=", "exact": "=", "gt": ">", "lt": "<"}


@dataclass(frozen=True)
class Bound:
    """A search with its extra storage's monthly cost in USD per vendor, bundled size and minimum extra."""

    search: DatabaseSearch
    storage: tuple = ()  # ((vendor_id, bundled GB or 0, storage_extra_min or 0, monthly USD), ...)


Binder = Callable[[Bound], list]


@dataclass(frozen=True)
class Shape:
    """What the statement's text depends on; everything else is a bound parameter."""

    conditions: tuple[tuple[str, str, tuple[str, ...], int], ...] = ()
    places: PlaceShape = PlaceShape()
    allocation: str = choices.BestDatabasePriceAllocation.ANY
    order_by: str = "min_price"
    descending: bool = False
    statuses: tuple[str, ...] | None = choices.ORDERABLE_DATABASE_STATUSES
    benchmark: bool = False
    benchmark_config: bool = False
    storage: int = 0
    paged: bool = True

    @classmethod
    def of(cls, bound: Bound) -> "Shape":
        search = bound.search
        return cls(
            conditions=tuple(condition.shape for condition in search.conditions),
            places=PlaceShape.of(search.places),
            allocation=search.allocation,
            order_by=search.order_by,
            descending=search.order_dir == "desc",
            statuses=search.statuses,
            benchmark=bool(search.benchmark_id),
            benchmark_config=bool(search.benchmark_config),
            storage=len(bound.storage),
            paged=search.limit != -1,
        )

    @property
    def priced_order(self) -> bool:
        return self.order_by in PRICED_ORDERINGS

    @property
    def on_server(self) -> bool:
        return any(on == SERVER for on, *_ in self.conditions)


@dataclass(frozen=True)
class Part:
    """A piece of SQL and what binds its parameters (None: it has none)."""

    sql: str
    bind: Binder | None = None


def _bind(parts: Iterable[Part]) -> list[Binder]:
    return [part.bind for part in parts if part.bind is not None]


@dataclass
class Plan:
    select: str
    count: str
    binders: list[Binder]
    count_binders: list[Binder]
    figures: tuple[str, ...]  # the computed columns after the database's and the vendor's, but the breakdown

    def bind(self, bound: Bound) -> list:
        return [item for binder in self.binders for item in binder(bound)]

    def bind_count(self, bound: Bound) -> list:
        return [item for binder in self.count_binders for item in binder(bound)]


@dataclass(frozen=True)
class Prices:
    """The price expressions of a shape: per live column its compute price (USD, before the extra storage),
    the best price (with it) that the ordering and conditions use, and the extra storage's monthly SQL."""

    live: bool
    compute: dict[str, str]
    best: str
    storage_monthly: str | None


# --- The pieces of a plan -------------------------------------------------------------------


def _live_prices_join(shape: Shape) -> Part:
    """The cheapest prices in the requested places (USD, rounded per region at sync) per database, as `lp`.

    Ordered by a price, only databases priced in those places are listed: an inner join then.
    """
    join = "JOIN" if shape.priced_order else "LEFT JOIN"
    minima = ", ".join(f"MIN(p.{column}) AS {column}" for column in LIVE_COLUMNS)
    live = (
        f"SELECT p.vendor_id, p.database_id, {minima} FROM {table(DatabaseRegionPrice)} p "
        f"WHERE {shape.places.condition('p')} GROUP BY p.vendor_id, p.database_id"
    )
    return Part(
        f"{join} ({live}) lp ON lp.vendor_id = d.vendor_id AND lp.database_id = d.database_id",
        lambda b: place_params(b.search.places),
    )


def _benchmark_join(shape: Shape) -> Part:
    """The selected benchmark's best score per database, joined as `bs`."""
    config = f" AND {json_text('b.config')} = %s" if shape.benchmark_config else ""
    scores = (
        f"SELECT b.vendor_id, b.resource_id, MAX(b.score) AS score FROM {table(BenchmarkScore)} b "
        f"WHERE b.benchmark_id = %s AND b.resource_type = '{choices.ResourceType.DATABASE.value}'{config} "
        "GROUP BY b.vendor_id, b.resource_id"
    )
    if shape.benchmark_config:
        bind: Binder = lambda b: [b.search.benchmark_id, b.search.benchmark_config]  # noqa: E731
    else:
        bind = lambda b: [b.search.benchmark_id]  # noqa: E731
    return Part(f"LEFT JOIN ({scores}) bs ON bs.vendor_id = d.vendor_id AND bs.resource_id = d.database_id", bind)


def _storage_parts(shape: Shape) -> tuple[Part, Part, Part]:
    """The extra storage: its costs as VALUES (WITH), their join, and the condition that the database can grow
    to the size asked (bundled + storage_extra_max; an unknown maximum does not exclude)."""
    row = "(" + placeholders(4) + ")"
    values = Part(
        f"st(vendor_id, bundled, extra_min, total) AS (VALUES {', '.join([row] * shape.storage)})",
        lambda b: [item for r in b.storage for item in r],
    )
    join = Part(
        "JOIN st ON st.vendor_id = d.vendor_id AND st.bundled = COALESCE(d.storage_size, 0) "
        "AND st.extra_min = COALESCE(d.storage_extra_min, 0)"
    )
    fits = Part(
        "(d.storage_extra_max IS NULL OR COALESCE(d.storage_size, 0) + d.storage_extra_max >= %s)",
        lambda b: [b.search.extra_storage_size],
    )
    return values, join, fits


def _prices(shape: Shape) -> Prices:
    live = bool(shape.places)
    source = "COALESCE(lp.{0}, d.{0})" if live else "d.{0}"
    compute = {column: source.format(column) for column in LIVE_COLUMNS}
    raw_best = f"{'lp' if live else 'd'}.{BEST_PRICE_COLUMN[shape.allocation]}"
    storage_monthly = "st.total" if shape.storage else None
    if storage_monthly is None:
        best = raw_best
    elif shape.allocation == choices.BestDatabasePriceAllocation.MONTHLY:
        best = f"({raw_best} + {storage_monthly})"
    else:
        best = f"({raw_best} + {storage_monthly} / {HOURS_PER_MONTH!r})"
    return Prices(live, compute, best, storage_monthly)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _condition(index: int, shape: tuple[str, str, tuple[str, ...], int], prices: Prices) -> Part:
    """The SQL of the search's `index`-th condition (of this shape) and its binder."""
    on, lookup, columns, count = shape
    values: Binder = lambda b: list(b.search.conditions[index].values)  # noqa: E731
    if on == criteria.TEXT:
        like = "ILIKE" if postgres() else "LIKE"
        sql = "(" + " OR ".join(f"d.{quote(c)} {like} %s ESCAPE '\\'" for c in columns) + ")"
        return Part(sql, lambda b: [_like(b.search.conditions[index].values[0])] * len(columns))
    if on == criteria.JSON_LIST:
        return Part(json_list_holds(f"d.{quote(columns[0])}", count), values)
    operand = {
        criteria.COLUMN: lambda: f"d.{quote(columns[0])}",
        SERVER: lambda: f"sv.{quote(columns[0])}",
        criteria.BENCHMARK_SCORE: lambda: "bs.score",
        criteria.BENCHMARK_SCORE_PER_PRICE: lambda: f"bs.score / NULLIF({prices.best}, 0)",
    }[on]()
    if lookup == "in":
        return Part(f"{operand} IN ({placeholders(count)})", values)
    return Part(f"{operand} {_COMPARISONS[lookup]} %s", values)


def _where(shape: Shape, prices: Prices) -> list[Part]:
    """The search's conditions, then what the shape implies (statuses, priced, scored)."""
    where = [_condition(index, condition, prices) for index, condition in enumerate(shape.conditions)]
    best, order_by = prices.best, shape.order_by
    if shape.statuses is not None:
        # Constants of the shape: written out, so an index on (status, ...) can serve them.
        where.append(Part(f"d.status IN ({', '.join(repr(str(status)) for status in shape.statuses)})"))
    if shape.statuses is not None or shape.allocation != choices.BestDatabasePriceAllocation.ANY or shape.priced_order:
        where.append(Part(f"{best} IS NOT NULL"))
    if order_by in ("min_price_ondemand", "min_price_ondemand_monthly"):
        where.append(Part(f"{'lp.' + order_by if prices.live else prices.compute[order_by]} IS NOT NULL"))
    if order_by == "score_per_price":
        where.append(Part("1 = 0"))  # no database has a score (upstream's DatabaseExtra.score is always null)
    if order_by in criteria.BENCHMARK_ORDERINGS:
        where.append(Part("bs.score IS NOT NULL"))
    if prices.live and shape.priced_order:
        # Strictly the databases priced in those places.
        live_column = order_by if order_by in LIVE_COLUMNS else BEST_PRICE_COLUMN[shape.allocation]
        where.append(Part(f"lp.{live_column} IS NOT NULL"))
    return where


def _order_key(shape: Shape, prices: Prices) -> str | None:
    order_by = shape.order_by
    if order_by == "min_price":
        return prices.best
    if order_by in ("min_price_ondemand", "min_price_ondemand_monthly"):
        return f"lp.{order_by}" if prices.live else f"d.{order_by}"
    if order_by == "selected_benchmark_score":
        return "bs.score"
    if order_by == "selected_benchmark_score_per_price":
        return f"bs.score / NULLIF({prices.best}, 0)"
    if order_by in NULL_ORDERINGS:
        return None
    return f"d.{quote(order_by)}"


def _order(shape: Shape, key: str | None, on_postgres: bool) -> str:
    """Ties by the catalog's own order (the upstream file's). Nulls first ascending, last descending (SQLite's
    order); a key the conditions keep from being null is left to PostgreSQL's own null order (its indexes')."""
    if key is None:
        return "ORDER BY d.id"
    direction, nulls = ("DESC", " NULLS LAST") if shape.descending else ("ASC", " NULLS FIRST")
    if on_postgres and shape.order_by in NEVER_NULL_ORDERINGS:
        nulls = ""
    return f"ORDER BY {key} {direction}{nulls}, d.id"


def _computed(shape: Shape, prices: Prices) -> dict[str, str]:
    """The figures a row gets after its database and vendor columns (USD; converted in `run`), the breakdown
    last."""
    compute, storage = prices.compute, prices.storage_monthly or "0"
    if prices.storage_monthly is None:
        # Nothing added: the prices are stored rounded (Database's and DatabaseRegionPrice's, at sync time).
        # SQLite's ROUND formats and parses each value: three per row were a third of a page's SQL.
        derived = dict(compute)
    else:
        hourly_storage = f"({storage} / {HOURS_PER_MONTH!r})"
        derived = {
            column: rounded(
                f"{compute[column]} + {storage if column.endswith('monthly') else hourly_storage}",
                server_price_digits(column),
            )
            for column in LIVE_COLUMNS
        }
    if shape.allocation != choices.BestDatabasePriceAllocation.ANY:
        derived["min_price"] = derived[BEST_PRICE_COLUMN[shape.allocation]]
    breakdown = {
        **{f"compute_{column}": compute[column] for column in LIVE_COLUMNS},
        "extra_storage_hourly": rounded(f"{storage} / {HOURS_PER_MONTH!r}", SERVER_PRICE_DIGITS),
        "extra_storage_monthly": rounded(storage, server_price_digits("extra_storage_monthly")),
    }
    return {
        **derived,
        "selected_benchmark_score": "bs.score" if shape.benchmark else "NULL",
        "selected_benchmark_score_per_price": (
            f"bs.score / NULLIF({derived['min_price']}, 0)" if shape.benchmark else "NULL"
        ),
        **breakdown,
    }


# The partial index that serves the default listing (the orderable databases by price) in order.
ORDERABLE_INDEX = "database_orderable_min_price"


@lru_cache(maxsize=512)
def plan_for(shape: Shape, on_postgres: bool) -> Plan:
    """The statement of a shape (on this database's SQL) and how to bind a search's values to it."""
    prices = _prices(shape)
    with_parts: list[Part] = []
    joins: list[Part] = []
    if shape.on_server:
        joins.append(Part(f"JOIN {table(Server)} sv ON sv.vendor_id = d.vendor_id AND sv.server_id = d.server_id"))
    live_join = [_live_prices_join(shape)] if prices.live else []
    # Joins the row's figures need too (the prices in the places are carried out of the ids, below).
    figure_joins = [*([_benchmark_join(shape)] if shape.benchmark else [])]
    where = _where(shape, prices)
    if shape.storage:
        values, join, fits = _storage_parts(shape)
        with_parts.append(values)
        figure_joins.append(join)
        where.append(fits)
    joins += [*live_join, *figure_joins]
    computed = _computed(shape, prices)
    # The vendor's row comes from a memo (`_vendors`): joined only so that a database of an unknown vendor is
    # left out, as the servers of one are.
    select_list = ", ".join([DATABASE_ROW.select("d"), *(f"{sql} AS {name}" for name, sql in computed.items())])
    with_sql = ("WITH " + ", ".join(part.sql for part in with_parts) + " ") if with_parts else ""
    databases = f"FROM {table(Database)} d JOIN {table(Vendor)} v ON v.vendor_id = d.vendor_id"
    from_sql = " ".join([databases, *(p.sql for p in joins)])
    where_sql = (" WHERE " + " AND ".join(part.sql for part in where)) if where else ""
    filtered = [*_bind(with_parts), *_bind(joins), *_bind(where)]
    paging = " LIMIT %s OFFSET %s" if shape.paged else ""
    order = _order(shape, _order_key(shape, prices), on_postgres)
    plan = Plan(
        select=f"{with_sql}SELECT {select_list} {from_sql}{where_sql} {order}{paging}",
        count=f"{with_sql}SELECT COUNT(*) {from_sql}{where_sql}",
        binders=[*filtered, *([_paging_binder] if shape.paged else [])],
        count_binders=filtered,
        figures=tuple(computed)[: -len(PRICE_BREAKDOWN)],
    )
    if on_postgres or not shape.paged:
        return plan
    if (
        order == _order(shape, "d.min_price", on_postgres)
        and shape.statuses == choices.ORDERABLE_DATABASE_STATUSES
        and not (joins or with_parts)
    ):
        # The default listing: without statistics SQLite reads (status, min_price) per status and sorts every
        # match; named, the partial index on the orderable databases reads the page in order and stops
        # (sample catalog, /databases?limit=25: 0.39 -> 0.13 ms of SQL).
        indexed = f"FROM {table(Database)} d INDEXED BY {ORDERABLE_INDEX} JOIN"
        plan.select = plan.select.replace(f"FROM {table(Database)} d JOIN", indexed, 1)
        return plan
    # SQLite computes the whole select list of every match before it sorts them: for a page of the ~300
    # orderable databases, ~80 columns each, that was most of the statement's time (sample catalog,
    # /databases?limit=25: 0.83 -> 0.5 ms of SQL). So a page's ids come first, sorted on the key alone (with
    # the places' prices carried out as `lp`), then the rows of those ids. PostgreSQL computes the select
    # list after the sort and the limit: one statement.
    carried = "".join(f", lp.{column} AS {column}" for column in LIVE_COLUMNS) if prices.live else ""
    ids = f"SELECT d.id AS id{carried} {from_sql}{where_sql} {order}{paging}"
    rows_from = " ".join([f"FROM ({ids}) lp CROSS JOIN {table(Database)} d", *(part.sql for part in figure_joins)])
    plan.select = f"{with_sql}SELECT {select_list} {rows_from} WHERE d.id = lp.id {order}"
    plan.binders = [*filtered, _paging_binder, *_bind(figure_joins)]
    return plan


def _paging_binder(bound: Bound) -> list:
    search = bound.search
    return [search.limit, (search.page - 1) * search.limit]


# --- Running it ----------------------------------------------------------------------------


def search_databases(search: DatabaseSearch) -> tuple[list[dict[str, Any]], int | None]:
    """`GET /databases`: the validated search in, the rows (and the total when it asks) out."""
    storage = ()
    if search.extra_storage_size:
        storage = storage_totals(search.extra_storage_size, search.places)
        if not storage:
            return [], 0 if search.count else None  # no vendor prices data storage there: nothing to rank
    bound = Bound(search, storage)
    plan = plan_for(Shape.of(bound), postgres())
    with connection.cursor() as cursor:
        cursor.execute(plan.select, plan.bind(bound))
        fetched = cursor.fetchall()
        total = None
        if search.count:
            cursor.execute(plan.count, plan.bind_count(bound))
            total = cursor.fetchone()[0]
    return _rows(fetched, plan.figures, exchange_rate("USD", search.currency)), total


_VENDOR_ID_AT = DATABASE_ROW.columns.index("vendor_id")
_FIGURES_AT = DATABASE_ROW.width
_CONVERTED = tuple((column, server_price_digits(column)) for column in LIVE_COLUMNS)
_BREAKDOWN = Breakdown(PRICE_BREAKDOWN)


def _rows(fetched: list[tuple], figures: tuple[str, ...], rate: float) -> list[dict[str, Any]]:
    """Rows as the newest Spare Cores API answers them: the database's columns, its vendor, the figures,
    `price` and `price_breakdown`."""
    breakdown_at = _FIGURES_AT + len(figures)
    vendors = _vendors() if fetched else {}
    rows = []
    for record in fetched:
        row = DATABASE_ROW.read(record)
        row["vendor"] = vendors[record[_VENDOR_ID_AT]]
        row["price"] = None  # the documented order: price first (set below)
        row.update(zip(figures, record[_FIGURES_AT:breakdown_at]))
        _BREAKDOWN.finish(row, record[breakdown_at:], _CONVERTED, rate)
        rows.append(row)
    return rows


@derived_per_catalog
def _vendors() -> dict[str, dict[str, Any]]:
    """Every vendor's row, by id: read once per catalog version (rows share them; nothing changes them)."""
    return {
        record[_VENDOR_ROW_ID_AT]: VENDOR_ROW.read(record)
        for record in fetch(f"SELECT {VENDOR_ROW.select('v')} FROM {table(Vendor)} v", ())
    }


_VENDOR_ROW_ID_AT = VENDOR_ROW.columns.index("vendor_id")


# --- Extra storage: the vendor's cheapest data storage, billed per database ---------------


def storage_totals(size: int, places: Places) -> tuple[tuple[str, int, int, float], ...]:
    """Per vendor, bundled storage and minimum extra storage of its databases, the monthly cost in USD of
    `size` GB of storage.

    The vendor's cheapest active data storage (by unit price, in the places asked) is the one used. A
    database whose bundled storage covers `size` pays nothing; otherwise it is billed for
    MAX(size - bundled, storage_extra_min, the product's min_size) GB (tiers applied), as the newest
    Spare Cores API bills it.
    """
    return _storage_totals(catalog_version(), int(size), places)


@lru_cache(maxsize=256)
def _storage_totals(version: str | None, size: int, places: Places) -> tuple:
    data_storages = {
        (vendor_id, storage_id): min_size or 0
        for vendor_id, storage_id, min_size in DatabaseStorage.objects.filter(
            scope=choices.DatabaseStorageScope.DATA
        ).values_list("vendor_id", "database_storage_id", "min_size")
    }
    prices = DatabaseStoragePrice.objects.filter(status=choices.Status.ACTIVE)
    if places:
        prices = prices.filter(places.q())
    best: dict[str, tuple[float, tuple]] = {}
    for vendor_id, storage_id, price, upfront, tiers, currency in prices.values_list(
        "vendor_id", "database_storage_id", "price", "price_upfront", "price_tiered", "currency"
    ):
        min_size = data_storages.get((vendor_id, storage_id))
        if min_size is None:
            continue
        rate = exchange_rate(currency, "USD")
        if vendor_id not in best or price * rate < best[vendor_id][0]:
            best[vendor_id] = (price * rate, (price, upfront or 0.0, tiers or [], min_size, rate))
    kinds = (
        Database.objects.filter(vendor_id__in=best)
        .order_by()
        .values_list("vendor_id", "storage_size", "storage_extra_min")
        .distinct()
    )
    totals: dict[tuple[str, int, int], float] = {}
    for vendor_id, bundled, extra_min in kinds:
        bundled, extra_min = bundled or 0, extra_min or 0
        price, upfront, tiers, min_size, rate = best[vendor_id][1]
        if bundled >= size:
            total = 0.0
        else:
            usage = max(size - bundled, extra_min, min_size)
            total = round((tiered_price(tiers, usage, price) + upfront) * rate, SERVER_PRICE_DIGITS)
        totals[(vendor_id, bundled, extra_min)] = total
    return tuple((*key, total) for key, total in sorted(totals.items()))
