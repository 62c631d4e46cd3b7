"""`GET /servers` (and one server by reference) as one SQL statement, rows straight from the cursor.

ServerFilterSet (apps/catalog/filters/servers.py) declares and validates every parameter and hands
this selector one `ServerSearch` (apps/catalog/criteria.py). A search's *shape* (its conditions and
how many values each has, the places' counts, and the few values that change the statement:
ordering, allocation, which extras) selects a plan: the statement's text and the binders that pull
its parameters from the search. Plans are cached per shape, so a request only binds values, runs the
statement and zips rows into dicts for orjson (django-filter's `qs` path spent ~10 ms per request
building and compiling a queryset, bench/README.md; this spends tens of microseconds).

Prices follow the Spare Cores API: with `regions`, `vendor_regions` or `countries` the cheapest
prices are computed from those places only (servers not priced there drop out); monthly traffic
and extra storage add their cheapest cost (per month; /730 per hour) to every price; with
`best_price_allocation` other than ANY that allocation's price is `min_price` (and `price`), the
ordering and `score_per_price`. All in USD, then converted to `currency` with the bundled ECB rates.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from django.db import connection

from apps.catalog import choices, criteria
from apps.catalog.criteria import PRICE_ORDERINGS, ServerSearch
from apps.catalog.models import (
    BenchmarkScore,
    Server,
    ServerCountryPrice,
    ServerRegionPrice,
    Storage,
    StoragePrice,
    TrafficPrice,
    Vendor,
    VendorComplianceLink,
)
from apps.catalog.places import Places
from apps.catalog.pricing import (
    HOURS_PER_MONTH,
    PRICE_BREAKDOWN,
    SERVER_BREAKDOWN,
    SERVER_PRICE_DIGITS,
    exchange_rate,
    server_price_digits,
    tiered_price,
)
from apps.catalog.sql import (
    SERVER_ROW,
    VENDOR_ROW,
    PlaceShape,
    json_list_holds,
    json_text,
    place_params,
    placeholders,
    postgres,
    quote,
    rounded,
    table,
)
from apps.catalog.version import catalog_version

BEST_PRICE_COLUMN = {
    choices.BestPriceAllocation.ANY: "min_price",
    choices.BestPriceAllocation.SPOT_ONLY: "min_price_spot",
    choices.BestPriceAllocation.ONDEMAND_ONLY: "min_price_ondemand",
    choices.BestPriceAllocation.MONTHLY: "min_price_ondemand_monthly",
}
LIVE_COLUMNS = ("min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly")
# Orderings that leave out the servers without a price (in the asked places).
PRICED_ORDERINGS = frozenset({*PRICE_ORDERINGS, "score_per_price", "selected_benchmark_score_per_price"})
# Orderings whose key the conditions keep from being null (_where).
NEVER_NULL_ORDERINGS = frozenset({*PRICE_ORDERINGS, "selected_benchmark_score"})
_COMPARISONS = {"gte": ">=", "lte": "<=", "exact": "=", "gt": ">", "lt": "<"}
# The partial indexes that serve the default listing (the orderable servers) in order, by ordering key; their
# condition is spelled as the statement's (_status_condition), so that the database sees it implied.
ORDERABLE_INDEXES = {"s.min_price": "server_orderable_min_price", "s.score_per_price": "server_orderable_score_price"}


# --- What a request binds -------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """A search with the per-vendor monthly extras it adds to every price (USD), read from the catalog."""

    search: ServerSearch
    traffic_in: tuple = ()  # ((vendor_id, monthly USD), ...)
    traffic_out: tuple = ()
    storage: tuple = ()  # ((vendor_id, server storage size, monthly USD), ...)


Binder = Callable[[Bound], list]


@dataclass(frozen=True)
class Shape:
    """What the statement's text depends on; everything else is a bound parameter."""

    conditions: tuple[tuple[str, str, tuple[str, ...], int], ...] = ()
    places: PlaceShape = PlaceShape()
    allocation: str = choices.BestPriceAllocation.ANY
    order_by: str = "min_price"
    descending: bool = False
    statuses: tuple[str, ...] | None = choices.ORDERABLE_SERVER_STATUSES
    benchmark: bool = False
    benchmark_config: bool = False
    traffic_in: int = 0
    traffic_out: int = 0
    storage: int = 0
    reference: bool = False
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
            statuses=search.statuses if search.reference is None else None,
            benchmark=bool(search.benchmark_id),
            benchmark_config=bool(search.benchmark_config),
            traffic_in=len(bound.traffic_in),
            traffic_out=len(bound.traffic_out),
            storage=len(bound.storage),
            reference=search.reference is not None,
            paged=search.limit != -1,
        )

    @property
    def priced_order(self) -> bool:
        return self.order_by in PRICED_ORDERINGS


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
    binders: list[Binder] = field(default_factory=list)
    count_binders: list[Binder] = field(default_factory=list)
    computed: tuple[str, ...] = ()  # the names of the columns after the server's and the vendor's

    def bind(self, bound: Bound) -> list:
        return [item for binder in self.binders for item in binder(bound)]

    def bind_count(self, bound: Bound) -> list:
        return [item for binder in self.count_binders for item in binder(bound)]


@dataclass(frozen=True)
class Prices:
    """The price expressions of a shape: per live column its computed (USD, before extras) price, the best
    price (with the extras) the ordering and conditions use, and the monthly extras' SQL sum."""

    live: bool
    compute: dict[str, str]
    best: str
    extra_monthly: str | None

    @property
    def best_for_filters(self) -> str:
        return self.best if self.live else f"({self.best})"


# --- The pieces of a plan -------------------------------------------------------------------


def _live_prices_join(shape: Shape) -> Part:
    """The cheapest prices in the requested places (USD) per server, joined as `lp`.

    Ordered by a price, only servers priced in those places are listed: an inner join lets the
    database start from those few instead of every server.
    """
    join = "JOIN" if shape.priced_order else "LEFT JOIN"
    places = shape.places
    on_server = "lp.vendor_id = s.vendor_id AND lp.server_id = s.server_id"
    if places.countries == 1 and not (places.regions or places.vendor_regions):
        # One country: its cheapest prices per server are stored, rounded, indexed by price.
        return Part(
            f"{join} {table(ServerCountryPrice)} lp ON {on_server} AND lp.country_id = %s",
            lambda b: [b.search.places.countries[0]],
        )
    if places.regions + places.vendor_regions == 1 and not places.countries:
        # One region: its cheapest prices per server are stored, rounded.
        if places.regions:
            region, bind = "lp.region_id = %s", (lambda b: [b.search.places.regions[0]])
        else:
            region, bind = "lp.vendor_id = %s AND lp.region_id = %s", (lambda b: [*b.search.places.vendor_regions[0]])
        return Part(f"{join} {table(ServerRegionPrice)} lp ON {on_server} AND {region}", bind)
    minima = ", ".join(f"{rounded(f'MIN(p.{c})', server_price_digits(c))} AS {c}" for c in LIVE_COLUMNS)
    live = (
        f"SELECT p.vendor_id, p.server_id, {minima} FROM {table(ServerRegionPrice)} p "
        f"WHERE {places.condition('p')} GROUP BY p.vendor_id, p.server_id"
    )
    return Part(f"{join} ({live}) lp ON {on_server}", lambda b: place_params(b.search.places))


def _benchmark_join(shape: Shape) -> Part:
    """The selected benchmark's best score per server, joined as `bs`."""
    config = f" AND {json_text('b.config')} = %s" if shape.benchmark_config else ""
    scores = (
        f"SELECT b.vendor_id, b.resource_id, MAX(b.score) AS score FROM {table(BenchmarkScore)} b "
        f"WHERE b.benchmark_id = %s AND b.resource_type = 'server'{config} GROUP BY b.vendor_id, b.resource_id"
    )
    if shape.benchmark_config:
        bind: Binder = lambda b: [b.search.benchmark_id, b.search.benchmark_config]  # noqa: E731
    else:
        bind = lambda b: [b.search.benchmark_id]  # noqa: E731
    return Part(f"LEFT JOIN ({scores}) bs ON bs.vendor_id = s.vendor_id AND bs.resource_id = s.server_id", bind)


def _values_cte(name: str, columns: str, rows: int, pick: Callable[[Bound], Iterable[tuple]]) -> Part:
    row = "(" + placeholders(len(columns.split(","))) + ")"
    return Part(
        f"{name}({columns}) AS (VALUES {', '.join([row] * rows)})", lambda b: [item for r in pick(b) for item in r]
    )


def _extras(shape: Shape) -> tuple[list[Part], list[Part], str | None]:
    """The monthly extras as VALUES (per vendor for traffic, per vendor and built-in storage size for
    storage): their WITH parts, their joins and the SQL of their monthly sum (None without extras)."""
    with_parts, joins, totals = [], [], []
    if shape.traffic_in:
        with_parts.append(_values_cte("ti", "vendor_id, total", shape.traffic_in, lambda b: b.traffic_in))
        joins.append(Part("JOIN ti ON ti.vendor_id = s.vendor_id"))
        totals.append("ti.total")
    if shape.traffic_out:
        with_parts.append(_values_cte("tout", "vendor_id, total", shape.traffic_out, lambda b: b.traffic_out))
        joins.append(Part("JOIN tout ON tout.vendor_id = s.vendor_id"))
        totals.append("tout.total")
    if shape.storage:
        with_parts.append(_values_cte("st", "vendor_id, size, total", shape.storage, lambda b: b.storage))
        joins.append(Part("JOIN st ON st.vendor_id = s.vendor_id AND st.size = s.storage_size"))
        totals.append("st.total")
    return with_parts, joins, (" + ".join(totals) if totals else None)


def _prices(shape: Shape, extra_monthly: str | None) -> Prices:
    live = bool(shape.places)
    source = "COALESCE(lp.{0}, s.{0})" if live else "s.{0}"
    compute = {column: source.format(column) for column in LIVE_COLUMNS}
    raw_best = f"{'lp' if live else 's'}.{BEST_PRICE_COLUMN[shape.allocation]}"
    if extra_monthly is None:
        best = raw_best
    elif shape.allocation == choices.BestPriceAllocation.MONTHLY:
        best = f"({raw_best} + {extra_monthly})"
    else:
        best = f"({raw_best} + ({extra_monthly}) / {HOURS_PER_MONTH!r})"
    return Prices(live, compute, best, extra_monthly)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _list_length(column: str) -> str:
    if postgres():
        return f"CASE WHEN jsonb_typeof({column}) = 'array' THEN jsonb_array_length({column}) END"
    return f"json_array_length({column})"


def _condition(index: int, shape: tuple[str, str, tuple[str, ...], int], prices: Prices) -> Part:
    """The SQL of the search's `index`-th condition (of this shape) and its binder."""
    on, lookup, columns, count = shape
    if on == criteria.TEXT:
        like = "ILIKE" if postgres() else "LIKE"
        sql = "(" + " OR ".join(f"s.{c} {like} %s ESCAPE '\\'" for c in columns) + ")"
        return Part(sql, lambda b: [_like(b.search.conditions[index].values[0])] * len(columns))
    if on == criteria.JSON_LIST:
        return Part(json_list_holds(f"s.{quote(columns[0])}", count), lambda b: list(b.search.conditions[index].values))
    if on == criteria.COMPARED:
        return Part(f"s.{quote(columns[0])} {_COMPARISONS[lookup]} s.{quote(columns[1])}")
    if on == criteria.BEST_PRICE:
        # Asked in the search's currency; the prices are compared in USD.
        return Part(
            f"{prices.best_for_filters} {_COMPARISONS[lookup]} %s",
            lambda b: [value * exchange_rate(b.search.currency, "USD") for value in b.search.conditions[index].values],
        )
    if on == criteria.VENDOR_FRAMEWORK:
        operand = "s.vendor_id"
        values = f"SELECT vendor_id FROM {table(VendorComplianceLink)} WHERE compliance_framework_id IN (%s)"
    else:
        operand = {
            criteria.COLUMN: f"s.{quote(columns[0])}" if columns else "",
            criteria.SCORE_PER_PRICE: f"s.score / NULLIF({prices.best_for_filters}, 0)",
            criteria.BENCHMARK_SCORE: "bs.score",
            criteria.BENCHMARK_SCORE_PER_PRICE: f"bs.score / NULLIF({prices.best_for_filters}, 0)",
            criteria.BENCHMARK_SCORE_PER_VCPU: "bs.score / NULLIF(s.vcpus, 0)",
            # * 1.0: integer columns divide as real numbers.
            criteria.RATIO: f"s.{quote(columns[0])} * 1.0 / NULLIF(s.{quote(columns[-1])}, 0)" if columns else "",
            criteria.LIST_LENGTH: _list_length(f"s.{quote(columns[0])}") if columns else "",
        }[on]
        values = "%s"
    if lookup == "in":
        sql = f"{operand} IN ({values.replace('%s', placeholders(count))})"
    else:
        sql = f"{operand} {_COMPARISONS[lookup]} {values}"
    return Part(sql, lambda b: list(b.search.conditions[index].values))


def _where(shape: Shape, prices: Prices) -> list[Part]:
    """The search's conditions, then what the shape implies (active, priced, scored)."""
    where = [_condition(index, condition, prices) for index, condition in enumerate(shape.conditions)]
    if shape.reference:
        where.append(Part("s.vendor_id = %s AND (s.server_id = %s OR s.api_reference = %s)", _reference_binder))
    best, order_by = prices.best, shape.order_by
    if shape.statuses:
        where.append(Part(_status_condition(shape.statuses)))
    if shape.statuses or shape.allocation != choices.BestPriceAllocation.ANY:
        # As the Spare Cores API's status filter: the listed servers have a price.
        where.append(Part(f"{best} IS NOT NULL"))
    if shape.priced_order:
        where.append(Part(f"{best} IS NOT NULL"))
    if order_by in ("min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly"):
        # Upstream lists servers without a monthly price first when ordering by it; like every other
        # derived ordering, Keeper leaves them out (README, compatibility notes).
        where.append(Part(f"{'lp.' + order_by if prices.live else prices.compute[order_by]} IS NOT NULL"))
    if order_by == "score_per_price":
        where.append(Part("s.score IS NOT NULL"))
    if order_by in criteria.BENCHMARK_ORDERINGS:
        where.append(Part("bs.score IS NOT NULL"))
    if prices.live and shape.priced_order:
        # Strictly the servers priced in those places.
        live_column = order_by if order_by in LIVE_COLUMNS else BEST_PRICE_COLUMN[shape.allocation]
        where.append(Part(f"lp.{live_column} IS NOT NULL"))
    return where


def _status_condition(statuses: tuple[str, ...]) -> str:
    if len(statuses) == 1:
        return f"s.status = '{statuses[0]}'"
    listed = ", ".join(f"'{status}'" for status in statuses)
    return f"s.status IN ({listed})"


def _order_key(shape: Shape, prices: Prices) -> str:
    order_by, best = shape.order_by, prices.best
    if order_by in ("min_price", "price"):
        return best
    if order_by == "score_per_price" and best == "s.min_price":
        # The stored score per the cheapest price: its (status, score_per_price) index serves the order.
        return "s.score_per_price"
    if order_by == "score_per_price":
        return f"s.score / NULLIF({best}, 0)"
    if order_by == "selected_benchmark_score":
        return "bs.score"
    if order_by == "selected_benchmark_score_per_price":
        return f"bs.score / NULLIF({best}, 0)"
    if prices.live and order_by in LIVE_COLUMNS:
        return f"lp.{order_by}"
    if order_by in LIVE_COLUMNS or order_by in ("score", "score1"):
        return f"s.{order_by}"
    return f"s.{quote(order_by)}"


def _order(shape: Shape, key: str, on_postgres: bool) -> str:
    """Ties by the catalog's own order (the upstream file's), as the Spare Cores API answers them.

    Nulls come first ascending, last descending (SQLite's order, and its indexes'). A key the
    conditions keep from being null (a price, the benchmark's score) is left to PostgreSQL's own null
    order, its indexes' (last ascending): so it reads a page by price off (status, min_price) or
    (country_id, min_price) and stops, where an explicit NULLS FIRST made it sort every match.
    """
    direction, nulls = ("DESC", " NULLS LAST") if shape.descending else ("ASC", " NULLS FIRST")
    if on_postgres and shape.order_by in NEVER_NULL_ORDERINGS:
        nulls = ""
    return f"ORDER BY {key} {direction}{nulls}, s.id"


def _computed(shape: Shape, prices: Prices) -> dict[str, str]:
    """The figures a row gets after its server and vendor columns (USD; converted in `run`)."""
    extra_monthly, compute = prices.extra_monthly, prices.compute
    extra_hourly = f"(({extra_monthly}) / {HOURS_PER_MONTH!r})" if extra_monthly else "0"
    traffic_in = "ti.total" if shape.traffic_in else "0"
    traffic_out = "tout.total" if shape.traffic_out else "0"
    storage = "st.total" if shape.storage else "0"
    derived = {
        column: rounded(
            f"{compute[column]} + {(extra_monthly or '0') if column.endswith('monthly') else extra_hourly}",
            server_price_digits(column),
        )
        for column in ("min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly", "min_price")
    }
    if shape.allocation != choices.BestPriceAllocation.ANY:
        derived["min_price"] = derived[BEST_PRICE_COLUMN[shape.allocation]]
    per_price = f"/ NULLIF({derived['min_price']}, 0)"
    hourly = f"/ {HOURS_PER_MONTH!r}"
    breakdown = {
        **{f"compute_{column}": compute[column] for column in LIVE_COLUMNS},
        "traffic_inbound_hourly": f"{traffic_in} {hourly}",
        "traffic_inbound_monthly": traffic_in,
        "traffic_outbound_hourly": f"{traffic_out} {hourly}",
        "traffic_outbound_monthly": traffic_out,
        "traffic_hourly": f"({traffic_in} + {traffic_out}) {hourly}",
        "traffic_monthly": f"{traffic_in} + {traffic_out}",
        "extra_storage_hourly": f"{storage} {hourly}",
        "extra_storage_monthly": storage,
    }
    return {
        **derived,
        "score": "s.score",
        "score1": "s.score1",
        "score_per_price": rounded(f"s.score {per_price}", SERVER_PRICE_DIGITS),
        "selected_benchmark_score": "bs.score" if shape.benchmark else "NULL",
        "selected_benchmark_score_per_price": f"bs.score {per_price}" if shape.benchmark else "NULL",
        **{
            name: sql if name.startswith("compute_") else rounded(sql, digits)
            for (name, digits), sql in zip(PRICE_BREAKDOWN, breakdown.values(), strict=True)
        },
    }


@lru_cache(maxsize=512)
def plan_for(shape: Shape, on_postgres: bool) -> Plan:
    """The statement of a shape (on this database's SQL) and how to bind a search's values to it."""
    with_parts, extra_joins, extra_monthly = _extras(shape)
    prices = _prices(shape, extra_monthly)
    live_join = [_live_prices_join(shape)] if prices.live else []
    joins = [*live_join, *([_benchmark_join(shape)] if shape.benchmark else []), *extra_joins]
    where = _where(shape, prices)
    key = _order_key(shape, prices)
    order = _order(shape, key, on_postgres)
    computed = _computed(shape, prices)
    select_list = ", ".join(
        [SERVER_ROW.select("s"), VENDOR_ROW.select("v"), *(f"{sql} AS {name}" for name, sql in computed.items())]
    )

    with_sql = ("WITH " + ", ".join(part.sql for part in with_parts) + " ") if with_parts else ""
    servers = f"FROM {table(Server)} s JOIN {table(Vendor)} v ON v.vendor_id = s.vendor_id"
    from_sql = " ".join([servers, *(part.sql for part in joins)])
    where_sql = (" WHERE " + " AND ".join(part.sql for part in where)) if where else ""
    filtered = [*_bind(with_parts), *_bind(joins), *_bind(where)]
    plan = Plan("", f"{with_sql}SELECT COUNT(*) {from_sql}{where_sql}", count_binders=filtered, computed=(*computed,))

    # SQLite reads a page ordered by an indexed column off the index and stops: there the one statement
    # is fastest (0.35 ms; 0.47 ms in two steps). Otherwise the database sorts every match, and on
    # PostgreSQL it computes the wide select list (the rounded prices, every column) of each before
    # the sort: so the ids come first, ordered on the narrow key alone, then the rows of those ids.
    # On the sample /servers?regions=us-east-1 15 -> 8 ms on SQLite; PostgreSQL, large catalog,
    # /servers?vcpus_min=2&memory_min=8&limit=5 42 -> 0.6 ms of SQL (bench/README.md).
    # A whole list on PostgreSQL: every match's row is computed anyway, and a second pass would read
    # the wide rows twice (/servers?gpu_min=1&limit=-1, large catalog: 20 -> 34 ms).
    indexed = not prices.live and key in ("s.min_price", "s.score_per_price")
    if (shape.paged and indexed and not on_postgres) or (on_postgres and not shape.paged):
        paging = " LIMIT %s OFFSET %s" if shape.paged else ""
        if indexed and not on_postgres and shape.statuses == choices.ORDERABLE_SERVER_STATUSES:
            # Without statistics SQLite takes the IN over two statuses for the narrower condition, reads
            # (status, min_price) per status and sorts every match (/servers?vcpus_min=2&memory_min=8&limit=5:
            # 0.03 -> 0.67 ms of SQL on the sample); named, the partial index reads the page in order.
            from_sql = from_sql.replace(
                f"{table(Server)} s ", f"{table(Server)} s INDEXED BY {ORDERABLE_INDEXES[key]} ", 1
            )
        plan.select = f"{with_sql}SELECT {select_list} {from_sql}{where_sql} {order}{paging}"
        plan.binders = [*filtered, *([_paging_binder] if shape.paged else [])]
        return plan
    ids_order = order
    if not shape.paged and indexed and not on_postgres:
        # All the matches: SQLite would walk the whole index, reading each row to test the conditions
        # (/servers?gpu_min=1&limit=-1: 4.6 ms for the ids); `+` hides the index, so it scans and sorts
        # the few matching ids instead (0.5 ms).
        ids_order = _order(shape, f"+{key}", on_postgres)
    paging = " LIMIT %s OFFSET %s" if shape.paged else ""
    # The ids carry the places' prices out as `lp`, so the rows need not compute them again;
    # CROSS JOIN makes SQLite start from the ids (PostgreSQL plans the same without the hint).
    carried = "".join(f", lp.{column} AS {column}" for column in LIVE_COLUMNS) if prices.live else ""
    ids = f"SELECT s.id AS id{carried} {from_sql}{where_sql} {ids_order}{paging}"
    other_joins = joins[len(live_join) :]
    rows_from = " ".join(
        [f"FROM ({ids}) lp CROSS JOIN {table(Server)} s JOIN {table(Vendor)} v ON v.vendor_id = s.vendor_id"]
        + [part.sql for part in other_joins]
    )
    plan.select = f"{with_sql}SELECT {select_list} {rows_from} WHERE s.id = lp.id {order}"
    plan.binders = [*filtered, *([_paging_binder] if shape.paged else []), *_bind(other_joins)]
    return plan


def _reference_binder(bound: Bound) -> list:
    vendor_id, server = bound.search.reference
    return [vendor_id, server, server]


def _paging_binder(bound: Bound) -> list:
    search = bound.search
    return [search.limit, (search.page - 1) * search.limit]


# --- Running it ----------------------------------------------------------------------------


def run(bound: Bound) -> tuple[list[dict[str, Any]], int | None]:
    """The rows of a search (prices in its currency) and, when it asks, how many match in all."""
    search = bound.search
    plan = plan_for(Shape.of(bound), postgres())
    with connection.cursor() as cursor:
        cursor.execute(plan.select, plan.bind(bound))
        fetched = cursor.fetchall()
        total = None
        if search.count:
            cursor.execute(plan.count, plan.bind_count(bound))
            total = cursor.fetchone()[0]
    return _rows(fetched, plan.computed[: -len(PRICE_BREAKDOWN)], exchange_rate("USD", search.currency)), total


_VENDOR_AT = SERVER_ROW.width
_VENDOR_ID_AT = _VENDOR_AT + VENDOR_ROW.columns.index("vendor_id")
_FIGURES_AT = SERVER_ROW.width + VENDOR_ROW.width
_CONVERTED = tuple((column, server_price_digits(column)) for column in LIVE_COLUMNS)


def _rows(fetched: list[tuple], figures: tuple[str, ...], rate: float) -> list[dict[str, Any]]:
    """Rows as the Spare Cores API answers them: the server's columns, its vendor, the figures (the
    computed columns but the breakdown, which comes last), `price` and `price_breakdown`."""
    breakdown_at = _FIGURES_AT + len(figures)
    vendors: dict[str, dict[str, Any]] = {}  # a handful of vendors, each read once
    rows = []
    for record in fetched:
        row = SERVER_ROW.read(record)
        vendor = vendors.get(record[_VENDOR_ID_AT])
        if vendor is None:
            vendor = vendors[record[_VENDOR_ID_AT]] = VENDOR_ROW.read(record, start=_VENDOR_AT)
        row["vendor"] = vendor
        row.update(zip(figures, record[_FIGURES_AT:breakdown_at]))
        SERVER_BREAKDOWN.finish(row, record[breakdown_at:], _CONVERTED, rate)
        rows.append(row)
    return rows


def search_servers(search: ServerSearch) -> tuple[list[dict[str, Any]], int | None]:
    """`GET /servers`: the validated search in, the rows (and the total when it asks) out."""
    places = search.places
    inbound, outbound = search.monthly_inbound_traffic, search.monthly_outbound_traffic
    storage = search.extra_storage_size
    bound = Bound(
        search,
        traffic_in=traffic_totals(choices.TrafficDirection.IN, inbound, places) if inbound else (),
        traffic_out=traffic_totals(choices.TrafficDirection.OUT, outbound, places) if outbound else (),
        storage=storage_totals(storage, search.extra_storage_type, places) if storage else (),
    )
    if (inbound and not bound.traffic_in) or (outbound and not bound.traffic_out) or (storage and not bound.storage):
        return [], 0 if search.count else None  # no vendor prices it there: nothing to rank
    return run(bound)


def server_by_reference(vendor_id: str, server: str, *, currency: str = "USD") -> dict[str, Any] | None:
    """One server by id or API reference, any status; the id wins when both match different servers."""
    search = ServerSearch(currency=currency, only_orderable=False, order_by="server_id", limit=-1)
    rows, _ = run(Bound(replace(search, reference=(vendor_id, server))))
    return next((row for row in rows if row["server_id"] == server), rows[0] if rows else None)


# --- Monthly extras: cheapest traffic per vendor, cheapest extra storage per vendor and size ---


def traffic_totals(direction: str, usage: float, places: Places) -> tuple[tuple[str, float], ...]:
    """Per vendor, the cheapest monthly cost in USD of `usage` GB in `direction` (tiers applied)."""
    return _traffic_totals(catalog_version(), direction, float(usage), places)


@lru_cache(maxsize=256)
def _traffic_totals(version: str | None, direction: str, usage: float, places: Places) -> tuple:
    prices = TrafficPrice.objects.filter(status=choices.Status.ACTIVE, direction=direction)
    if places:
        prices = prices.filter(places.q())
    cheapest: dict[str, float] = {}
    for vendor_id, price, upfront, tiers, currency in prices.values_list(
        "vendor_id", "price", "price_upfront", "price_tiered", "currency"
    ):
        total = (tiered_price(tiers or [], usage, price) + (upfront or 0.0)) * exchange_rate(currency, "USD")
        total = round(total, SERVER_PRICE_DIGITS)
        if vendor_id not in cheapest or total < cheapest[vendor_id]:
            cheapest[vendor_id] = total
    return tuple(sorted(cheapest.items()))


def storage_totals(size: float, types: Iterable[str], places: Places) -> tuple[tuple[str, int, float], ...]:
    """Per vendor and built-in storage size, the monthly cost in USD of the cheapest extra storage.

    The vendor's cheapest product (by unit price, of the given types, large enough) is the one
    used; a server whose built-in storage covers `size` pays nothing; a product's minimum size
    is the least billed.
    """
    return _storage_totals(catalog_version(), float(size), tuple(sorted(types)), places)


@lru_cache(maxsize=256)
def _storage_totals(version: str | None, size: float, types: tuple[str, ...], places: Places) -> tuple:
    prices = StoragePrice.objects.filter(status=choices.Status.ACTIVE)
    if places:
        prices = prices.filter(places.q())
    storages = {
        (vendor_id, storage_id): (min_size, max_size, storage_type)
        for vendor_id, storage_id, min_size, max_size, storage_type in Storage.objects.values_list(
            "vendor_id", "storage_id", "min_size", "max_size", "storage_type"
        )
    }
    best: dict[str, tuple[float, Any]] = {}
    for vendor_id, storage_id, price, upfront, tiers, currency in prices.values_list(
        "vendor_id", "storage_id", "price", "price_upfront", "price_tiered", "currency"
    ):
        min_size, max_size, storage_type = storages.get((vendor_id, storage_id), (None, None, None))
        if max_size is None or max_size < size or (types and storage_type not in types):
            continue
        rate = exchange_rate(currency, "USD")
        if vendor_id not in best or price * rate < best[vendor_id][0]:
            best[vendor_id] = (price * rate, (price, upfront or 0.0, tiers or [], min_size or 0, rate))
    sizes = Server.objects.filter(vendor_id__in=best).order_by().values_list("vendor_id", "storage_size").distinct()
    totals = []
    for vendor_id, built_in in sizes:
        price, upfront, tiers, min_size, rate = best[vendor_id][1]
        if built_in >= size:
            total = 0.0
        else:
            usage = max(size - built_in, min_size)
            total = round((tiered_price(tiers, usage, price) + upfront) * rate, SERVER_PRICE_DIGITS)
        totals.append((vendor_id, built_in, total))
    return tuple(sorted(totals))
