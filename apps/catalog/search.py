"""`GET /servers` (and one server by reference) as one SQL statement, rows straight from the cursor.

The FilterSet (apps/catalog/filters/servers.py) stays the one declaration of every parameter: its
names, types, units, defaults and docs, and the validation. What it declares is read once, here,
into SQL fragments. A request's *shape* (which parameters it gives, how many values each list
has, and the few values that change the statement: ordering, allocation, which extras) selects
a plan: the statement's text and the binders that pull its parameters from the request's values.
Plans are cached per shape, so a request only validates its own parameters, binds values, runs
the statement and zips rows into dicts for orjson. Measured in bench/README.md: django-filter's
`qs` path spent ~10 ms per request building the queryset and compiling its SQL; this spends
tens of microseconds.

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

import orjson
from django.db import connection
from django.db.models import Model

from apps.catalog import choices
from apps.catalog.filters.places import Places
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
from apps.catalog.pricing import HOURS_PER_MONTH, exchange_rate, round_sql, tiered_price
from apps.catalog.selectors.catalog import SERVER_COLUMNS, VENDOR_COLUMNS, catalog_version

PRICE_DIGITS, MONTHLY_DIGITS = 4, 2
BEST_PRICE_COLUMN = {
    choices.BestPriceAllocation.ANY: "min_price",
    choices.BestPriceAllocation.SPOT_ONLY: "min_price_spot",
    choices.BestPriceAllocation.ONDEMAND_ONLY: "min_price_ondemand",
    choices.BestPriceAllocation.MONTHLY: "min_price_ondemand_monthly",
}
LIVE_COLUMNS = ("min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly")
# Orderings that hide servers without a value for them, as the Spare Cores API does.
PRICE_ORDERINGS = {"min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly", "price"}
BENCHMARK_ORDERINGS = {"selected_benchmark_score", "selected_benchmark_score_per_price"}
BREAKDOWN = (
    ("compute_min_price", PRICE_DIGITS),
    ("compute_min_price_spot", PRICE_DIGITS),
    ("compute_min_price_ondemand", PRICE_DIGITS),
    ("compute_min_price_ondemand_monthly", MONTHLY_DIGITS),
    ("traffic_inbound_hourly", PRICE_DIGITS),
    ("traffic_inbound_monthly", MONTHLY_DIGITS),
    ("traffic_outbound_hourly", PRICE_DIGITS),
    ("traffic_outbound_monthly", MONTHLY_DIGITS),
    ("traffic_hourly", PRICE_DIGITS),
    ("traffic_monthly", MONTHLY_DIGITS),
    ("extra_storage_hourly", PRICE_DIGITS),
    ("extra_storage_monthly", MONTHLY_DIGITS),
)
CONVERTED = (
    ("min_price", PRICE_DIGITS),
    ("min_price_spot", PRICE_DIGITS),
    ("min_price_ondemand", PRICE_DIGITS),
    ("min_price_ondemand_monthly", MONTHLY_DIGITS),
)


# --- SQL spelling shared by SQLite and PostgreSQL ---------------------------------------


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _round(expression: str, digits: int) -> str:
    return round_sql(expression, digits, postgres=_postgres())


def _json_text(expression: str) -> str:
    return f"CAST({expression} AS TEXT)" if _postgres() else expression


def _timestamp(expression: str) -> str:
    """ISO 8601 in UTC with a Z, microseconds only when there are some (as Python's isoformat)."""
    if _postgres():
        utc = f"({expression} AT TIME ZONE 'UTC')"
        return (
            f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN to_char({utc}, 'US') = '000000' """
            f"""THEN '' ELSE to_char({utc}, '.US') END || 'Z'"""
        )
    return f"REPLACE(REPLACE({expression}, ' ', 'T'), '.000000', '') || 'Z'"


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _place_conditions(alias: str, shape: "Shape") -> list[tuple[str, Callable[["Values"], list]]]:
    """Conditions on rows of table `alias` (with vendor_id, region_id, country_id) for the given places (AND)."""
    parts: list[tuple[str, Callable[[Values], list]]] = []
    if shape.regions:
        parts.append((f"{alias}.region_id IN ({_placeholders(shape.regions)})", lambda v: list(v.places.regions)))
    if shape.vendor_regions:
        pairs = " OR ".join([f"({alias}.vendor_id = %s AND {alias}.region_id = %s)"] * shape.vendor_regions)
        parts.append((f"({pairs})", lambda v: [item for pair in v.places.vendor_regions for item in pair]))
    if shape.countries:
        parts.append((f"{alias}.country_id IN ({_placeholders(shape.countries)})", lambda v: list(v.places.countries)))
    return parts


# --- What a request asks for --------------------------------------------------------------


@dataclass(frozen=True)
class Values:
    """A validated request: the FilterSet's cleaned values (given parameters and defaults) and more."""

    params: dict[str, Any]
    places: Places = Places()
    limit: int = 25
    page: int = 1
    reference: tuple[str, str] | None = None  # (vendor_id, server id or API reference)
    traffic_in: tuple = ()  # ((vendor_id, monthly USD), ...)
    traffic_out: tuple = ()
    storage: tuple = ()  # ((vendor_id, server storage size, monthly USD), ...)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        return default if value in (None, "", []) else value


@dataclass(frozen=True)
class Shape:
    """What the statement's text depends on; everything else is a bound parameter."""

    given: tuple[tuple[str, int], ...]  # (parameter, number of values) of the plain filters
    optional: tuple[tuple[str, int], ...] = ()  # the same for the OPTIONAL ones
    regions: int = 0
    vendor_regions: int = 0
    countries: int = 0
    allocation: str = choices.BestPriceAllocation.ANY
    order_by: str = "min_price"
    descending: bool = False
    only_active: bool = True
    benchmark: bool = False
    benchmark_config: bool = False
    traffic_in: int = 0
    traffic_out: int = 0
    storage: int = 0
    reference: bool = False
    paged: bool = True

    def count_of(self, name: str) -> int:
        return dict(self.optional).get(name, 0)


# Filters turned into SQL by what the FilterSet declares (column, lookup, scale); the others below.
_OPERATORS = {"gte": ">=", "lte": "<=", "exact": "=", "gt": ">", "lt": "<"}
SPECIAL = frozenset(
    {
        "partial_name_or_id", "only_active", "vendor", "compliance_framework", "currency", "best_price_allocation",
        "order_by", "order_dir", "regions", "vendor_regions", "countries", "benchmark_id", "benchmark_config",
        "benchmark_score_min", "benchmark_score_per_price_min", "benchmark_score_stressng_cpu_min",
        "benchmark_score_per_price_stressng_cpu_min", "monthly_inbound_traffic", "monthly_outbound_traffic",
        "extra_storage_size", "extra_storage_type",
    }
)  # fmt: skip


@lru_cache(maxsize=1)
def plain_filters() -> dict[str, tuple[str, bool, float]]:
    """{parameter: (SQL condition on the server row, takes a list, scale)} from the FilterSet's declarations."""
    from apps.catalog.filters.servers import ServerFilterSet

    columns = {f.name: f.column for f in Server._meta.concrete_fields}
    found: dict[str, tuple[str, bool, float]] = {}
    for name, declared in ServerFilterSet.base_filters.items():
        if name in SPECIAL:
            continue
        column = f"s.{connection.ops.quote_name(columns[declared.field_name])}"
        if getattr(declared, "field_class", None).__name__.endswith("MultipleChoiceField"):
            found[name] = (f"{column} IN ({{values}})", True, 1.0)
        else:
            operator = _OPERATORS[declared.lookup_expr]
            found[name] = (f"{column} {operator} %s", False, float(getattr(declared, "scale", 1.0)))
    return found


# Optional conditions whose presence (and number of values), not their value, shapes the statement.
OPTIONAL = (
    "partial_name_or_id",
    "vendor",
    "compliance_framework",
    "benchmark_score_min",
    "benchmark_score_per_price_min",
    "benchmark_score_stressng_cpu_min",
    "benchmark_score_per_price_stressng_cpu_min",
)


def _count(value: Any) -> int:
    if value in (None, "", []):
        return 0
    return len(value) if isinstance(value, list | tuple) else 1


def shape_of(values: Values) -> Shape:
    params = values.params
    plain = plain_filters()
    return Shape(
        given=tuple(sorted((name, _count(params.get(name))) for name in plain if _count(params.get(name)))),
        optional=tuple((name, _count(params.get(name))) for name in OPTIONAL if _count(params.get(name))),
        regions=len(values.places.regions),
        vendor_regions=len(values.places.vendor_regions),
        countries=len(values.places.countries),
        allocation=values.get("best_price_allocation", choices.BestPriceAllocation.ANY),
        order_by=values.get("order_by", "min_price"),
        descending=values.get("order_dir") == "desc",
        only_active=bool(params.get("only_active", True)) and values.reference is None,
        benchmark=bool(values.get("benchmark_id")),
        benchmark_config=bool(values.get("benchmark_config")),
        traffic_in=len(values.traffic_in),
        traffic_out=len(values.traffic_out),
        storage=len(values.storage),
        reference=values.reference is not None,
        paged=values.limit != -1,
    )


# --- The plan of a shape -------------------------------------------------------------------


@dataclass
class Plan:
    select: str
    count: str
    binders: list[Callable[[Values], list]] = field(default_factory=list)
    count_binders: list[Callable[[Values], list]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def bind(self, values: Values) -> list:
        return [item for binder in self.binders for item in binder(values)]

    def bind_count(self, values: Values) -> list:
        return [item for binder in self.count_binders for item in binder(values)]


def _values_cte(name: str, columns: str, rows: int, pick: Callable[[Values], Iterable[tuple]]):
    placeholder = "(" + _placeholders(len(columns.split(","))) + ")"
    sql = f"{name}({columns}) AS (VALUES {', '.join([placeholder] * rows)})"
    return sql, lambda v: [item for row in pick(v) for item in row]


@lru_cache(maxsize=512)
def plan_for(shape: Shape, postgres: bool) -> Plan:
    """The statement of a shape (on this database's SQL) and how to bind a request's values to it."""
    fragments_with: list[tuple[str, Callable]] = []
    joins: list[tuple[str, Callable | None]] = []
    where: list[tuple[str, Callable | None]] = []

    # Cheapest prices in the requested places (USD), when places are given.
    live = bool(shape.regions or shape.vendor_regions or shape.countries)
    if live:
        # Ordered by a price, only servers priced in those places are listed: an inner join lets the
        # database start from those few instead of every server.
        strict = shape.order_by in (*PRICE_ORDERINGS, "score_per_price", "selected_benchmark_score_per_price")
        join = "JOIN" if strict else "LEFT JOIN"
        if shape.countries == 1 and not (shape.regions or shape.vendor_regions):
            # One country: its cheapest prices per server are stored, rounded, indexed by price.
            joins.append(
                (
                    f"{join} {_table(ServerCountryPrice)} lp ON lp.vendor_id = s.vendor_id "
                    "AND lp.server_id = s.server_id AND lp.country_id = %s",
                    lambda v: [v.places.countries[0]],
                )
            )
        elif shape.regions + shape.vendor_regions == 1 and not shape.countries:
            # One region: its cheapest prices per server are stored, rounded.
            if shape.regions:
                region, bind_region = "lp.region_id = %s", lambda v: [v.places.regions[0]]
            else:
                region, bind_region = "lp.vendor_id = %s AND lp.region_id = %s", lambda v: [*v.places.vendor_regions[0]]
            joins.append(
                (
                    f"{join} {_table(ServerRegionPrice)} lp ON lp.vendor_id = s.vendor_id "
                    f"AND lp.server_id = s.server_id AND {region}",
                    bind_region,
                )
            )
        else:
            places = _place_conditions("p", shape)
            digits = {c: MONTHLY_DIGITS if c.endswith("monthly") else PRICE_DIGITS for c in LIVE_COLUMNS}
            minima = ", ".join(f"{_round(f'MIN(p.{c})', digits[c])} AS {c}" for c in LIVE_COLUMNS)
            live_sql = (
                f"SELECT p.vendor_id, p.server_id, {minima} FROM {_table(ServerRegionPrice)} p WHERE "
                + " AND ".join(sql for sql, _ in places)
                + " GROUP BY p.vendor_id, p.server_id"
            )
            place_binders = [binder for _, binder in places]
            joins.append(
                (
                    f"{join} ({live_sql}) lp ON lp.vendor_id = s.vendor_id AND lp.server_id = s.server_id",
                    lambda v: [item for binder in place_binders for item in binder(v)],
                )
            )
        compute = {column: f"COALESCE(lp.{column}, s.{column})" for column in LIVE_COLUMNS}
        raw_best = f"lp.{BEST_PRICE_COLUMN[shape.allocation]}"
    else:
        compute = {column: f"s.{column}" for column in LIVE_COLUMNS}
        raw_best = f"s.{BEST_PRICE_COLUMN[shape.allocation]}"

    if shape.benchmark:
        config = f" AND {_json_text('b.config')} = %s" if shape.benchmark_config else ""
        scores = (
            f"SELECT b.vendor_id, b.resource_id, MAX(b.score) AS score FROM {_table(BenchmarkScore)} b "
            f"WHERE b.benchmark_id = %s AND b.resource_type = 'server'{config} GROUP BY b.vendor_id, b.resource_id"
        )
        joins.append(
            (
                f"LEFT JOIN ({scores}) bs ON bs.vendor_id = s.vendor_id AND bs.resource_id = s.server_id",
                _benchmark_binder if shape.benchmark_config else (lambda v: [v.params["benchmark_id"].pk]),
            )
        )

    # Monthly extras, computed per vendor (traffic) and per vendor and built-in storage size (storage).
    extras = []
    if shape.traffic_in:
        fragments_with.append(_values_cte("ti", "vendor_id, total", shape.traffic_in, lambda v: v.traffic_in))
        joins.append(("JOIN ti ON ti.vendor_id = s.vendor_id", None))
        extras.append("ti.total")
    if shape.traffic_out:
        fragments_with.append(_values_cte("tout", "vendor_id, total", shape.traffic_out, lambda v: v.traffic_out))
        joins.append(("JOIN tout ON tout.vendor_id = s.vendor_id", None))
        extras.append("tout.total")
    if shape.storage:
        fragments_with.append(_values_cte("st", "vendor_id, size, total", shape.storage, lambda v: v.storage))
        joins.append(("JOIN st ON st.vendor_id = s.vendor_id AND st.size = s.storage_size", None))
        extras.append("st.total")
    extra_monthly = " + ".join(extras) if extras else None
    if extra_monthly is None:
        best = raw_best
    elif shape.allocation == choices.BestPriceAllocation.MONTHLY:
        best = f"({raw_best} + {extra_monthly})"
    else:
        best = f"({raw_best} + ({extra_monthly}) / {HOURS_PER_MONTH!r})"
    best_for_filters = best if live else f"({best})"

    # Conditions.
    plain = plain_filters()
    for name, count in shape.given:
        sql, is_list, scale = plain[name]
        if is_list:
            where.append((sql.format(values=_placeholders(count)), lambda v, n=name: list(v.params[n])))
        elif scale != 1.0:
            where.append((sql, lambda v, n=name, k=scale: [v.params[n] * k]))
        else:
            where.append((sql, lambda v, n=name: [v.params[n]]))
    if shape.count_of("partial_name_or_id"):
        like = "ILIKE" if postgres else "LIKE"
        columns = ("server_id", "name", "api_reference", "display_name")
        where.append(
            (
                "(" + " OR ".join(f"s.{c} {like} %s ESCAPE '\\'" for c in columns) + ")",
                lambda v: [_like(v.get("partial_name_or_id"))] * 4,
            )
        )
    if shape.count_of("vendor"):
        where.append(
            (
                f"s.vendor_id IN ({_placeholders(shape.count_of('vendor'))})",
                lambda v: [vendor.pk for vendor in v.params["vendor"]],
            )
        )
    if shape.count_of("compliance_framework"):
        count = shape.count_of("compliance_framework")
        where.append(
            (
                f"s.vendor_id IN (SELECT vendor_id FROM {_table(VendorComplianceLink)} "
                f"WHERE compliance_framework_id IN ({_placeholders(count)}))",
                lambda v: [framework.pk for framework in v.params["compliance_framework"]],
            )
        )
    if shape.count_of("benchmark_score_stressng_cpu_min"):
        where.append(("s.score > %s", lambda v: [v.params["benchmark_score_stressng_cpu_min"]]))
    if shape.count_of("benchmark_score_per_price_stressng_cpu_min"):
        where.append(
            (
                f"s.score / NULLIF({best_for_filters}, 0) > %s",
                lambda v: [v.params["benchmark_score_per_price_stressng_cpu_min"]],
            )
        )
    if shape.count_of("benchmark_score_min"):
        where.append(("bs.score >= %s", lambda v: [v.params["benchmark_score_min"]]))
    if shape.count_of("benchmark_score_per_price_min"):
        where.append(
            (f"bs.score / NULLIF({best_for_filters}, 0) >= %s", lambda v: [v.params["benchmark_score_per_price_min"]])
        )
    if shape.reference:
        where.append(("s.vendor_id = %s AND (s.server_id = %s OR s.api_reference = %s)", _reference_binder))
    if shape.only_active:
        where.append(("s.status = 'active'", None))
    if shape.only_active or shape.allocation != choices.BestPriceAllocation.ANY:
        where.append((f"{best} IS NOT NULL", None))
    order_by = shape.order_by
    if order_by in PRICE_ORDERINGS or order_by in ("score_per_price", "selected_benchmark_score_per_price"):
        where.append((f"{best} IS NOT NULL", None))
    if order_by in ("min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly"):
        # Upstream lists servers without a monthly price first when ordering by it; like every other
        # derived ordering, Keeper leaves them out (README, compatibility notes).
        where.append((f"{compute[order_by] if not live else 'lp.' + order_by} IS NOT NULL", None))
    if order_by == "score_per_price":
        where.append(("s.score IS NOT NULL", None))
    if order_by in BENCHMARK_ORDERINGS:
        where.append(("bs.score IS NOT NULL", None))
    if live and order_by in (*PRICE_ORDERINGS, "score_per_price", "selected_benchmark_score_per_price"):
        # Strictly the servers priced in those places.
        live_column = order_by if order_by in LIVE_COLUMNS else BEST_PRICE_COLUMN[shape.allocation]
        where.append((f"lp.{live_column} IS NOT NULL", None))

    # Ordering, ties by the catalog's own order (the upstream file's), as the Spare Cores API answers them.
    direction = "DESC" if shape.descending else "ASC"
    nulls = "NULLS LAST" if shape.descending else "NULLS FIRST"
    if order_by in ("min_price", "price"):
        key = best
    elif order_by == "score_per_price" and best == "s.min_price":
        # The stored score per the cheapest price: its (status, score_per_price) index serves the order.
        key = "s.score_per_price"
    elif order_by == "score_per_price":
        key = f"s.score / NULLIF({best}, 0)"
    elif order_by == "selected_benchmark_score":
        key = "bs.score"
    elif order_by == "selected_benchmark_score_per_price":
        key = f"bs.score / NULLIF({best}, 0)"
    elif live and order_by in LIVE_COLUMNS:
        key = f"lp.{order_by}"
    elif order_by in LIVE_COLUMNS or order_by in ("score", "score1"):
        key = f"s.{order_by}"
    else:
        key = f"s.{connection.ops.quote_name(order_by)}"
    order = f"ORDER BY {key} {direction} {nulls}, s.id"

    # Columns: the server row, its vendor, then what is computed here (USD; converted in rows()).
    server_columns = [_output_column("s", Server, c) for c in SERVER_COLUMNS]
    vendor_columns = [_output_column("v", Vendor, c) for c in VENDOR_COLUMNS]
    extra_hourly = f"(({extra_monthly}) / {HOURS_PER_MONTH!r})" if extra_monthly else "0"
    traffic_in = "ti.total" if shape.traffic_in else "0"
    traffic_out = "tout.total" if shape.traffic_out else "0"
    storage = "st.total" if shape.storage else "0"
    derived = {
        "min_price_spot": _round(f"{compute['min_price_spot']} + {extra_hourly}", PRICE_DIGITS),
        "min_price_ondemand": _round(f"{compute['min_price_ondemand']} + {extra_hourly}", PRICE_DIGITS),
        "min_price_ondemand_monthly": _round(
            f"{compute['min_price_ondemand_monthly']} + {extra_monthly or '0'}", MONTHLY_DIGITS
        ),
        "min_price": _round(f"{compute['min_price']} + {extra_hourly}", PRICE_DIGITS),
    }
    if shape.allocation != choices.BestPriceAllocation.ANY:
        derived["min_price"] = derived[BEST_PRICE_COLUMN[shape.allocation]]
    computed = {
        **derived,
        "score": "s.score",
        "score1": "s.score1",
        "score_per_price": _round(f"s.score / NULLIF({derived['min_price']}, 0)", PRICE_DIGITS),
        "selected_benchmark_score": "bs.score" if shape.benchmark else "NULL",
        "selected_benchmark_score_per_price": f"bs.score / NULLIF({derived['min_price']}, 0)"
        if shape.benchmark
        else "NULL",
        "compute_min_price": compute["min_price"],
        "compute_min_price_spot": compute["min_price_spot"],
        "compute_min_price_ondemand": compute["min_price_ondemand"],
        "compute_min_price_ondemand_monthly": compute["min_price_ondemand_monthly"],
        "traffic_inbound_hourly": _round(f"{traffic_in} / {HOURS_PER_MONTH!r}", PRICE_DIGITS),
        "traffic_inbound_monthly": _round(traffic_in, MONTHLY_DIGITS),
        "traffic_outbound_hourly": _round(f"{traffic_out} / {HOURS_PER_MONTH!r}", PRICE_DIGITS),
        "traffic_outbound_monthly": _round(traffic_out, MONTHLY_DIGITS),
        "traffic_hourly": _round(f"({traffic_in} + {traffic_out}) / {HOURS_PER_MONTH!r}", PRICE_DIGITS),
        "traffic_monthly": _round(f"{traffic_in} + {traffic_out}", MONTHLY_DIGITS),
        "extra_storage_hourly": _round(f"{storage} / {HOURS_PER_MONTH!r}", PRICE_DIGITS),
        "extra_storage_monthly": _round(storage, MONTHLY_DIGITS),
    }
    select_list = [*server_columns, *vendor_columns, *(f"{sql} AS {name}" for name, sql in computed.items())]
    with_sql = ("WITH " + ", ".join(sql for sql, _ in fragments_with) + " ") if fragments_with else ""
    from_sql = f"FROM {_table(Server)} s JOIN {_table(Vendor)} v ON v.vendor_id = s.vendor_id " + " ".join(
        sql for sql, _ in joins
    )
    where_sql = (" WHERE " + " AND ".join(sql for sql, _ in where)) if where else ""
    with_binders = [b for _, b in fragments_with]
    join_binders = [b for _, b in joins if b]
    where_binders = [b for _, b in where if b]
    # Ordered by an indexed column, the database reads the page's rows off the index and stops.
    # Otherwise it sorts every match: then the page's ids come first, then its rows, so that only
    # (key, id) is sorted instead of whole server rows (several kB each): on the sample
    # /servers?regions=us-east-1 15 -> 8 ms; index-ordered pages are faster without (0.35 -> 0.47 ms).
    index_ordered = not live and key in ("s.min_price", "s.score_per_price")
    if shape.paged and not index_ordered:
        # The page carries the places' prices out as `lp`, so the rows need not compute them again;
        # CROSS JOIN makes SQLite start from the page (PostgreSQL plans the same without the hint).
        carried = "".join(f", lp.{column} AS {column}" for column in LIVE_COLUMNS) if live else ""
        page = f"SELECT s.id AS id{carried} {from_sql}{where_sql} {order} LIMIT %s OFFSET %s"
        other_joins = joins[1:] if live else joins
        rows_from = (
            f"FROM ({page}) lp CROSS JOIN {_table(Server)} s JOIN {_table(Vendor)} v ON v.vendor_id = s.vendor_id "
            + " ".join(sql for sql, _ in other_joins)
        )
        select = f"{with_sql}SELECT {', '.join(select_list)} {rows_from} WHERE s.id = lp.id {order}"
        select_binders = [
            *with_binders,
            *join_binders,
            *where_binders,
            _paging_binder,
            *[b for _, b in other_joins if b],
        ]
    else:
        paging = " LIMIT %s OFFSET %s" if shape.paged else ""
        select = f"{with_sql}SELECT {', '.join(select_list)} {from_sql}{where_sql} {order}{paging}"
        select_binders = [*with_binders, *join_binders, *where_binders, *([_paging_binder] if shape.paged else [])]
    count = f"{with_sql}SELECT COUNT(*) {from_sql}{where_sql}"
    plan = Plan(select, count, columns=[*SERVER_COLUMNS, *(f"vendor.{c}" for c in VENDOR_COLUMNS), *computed])
    plan.count_binders = [*with_binders, *join_binders, *where_binders]
    plan.binders = select_binders
    return plan


def _benchmark_binder(values: Values) -> list:
    return [values.params["benchmark_id"].pk, values.params["benchmark_config"]]


def _reference_binder(values: Values) -> list:
    vendor_id, server = values.reference
    return [vendor_id, server, server]


def _paging_binder(values: Values) -> list:
    return [values.limit, (values.page - 1) * values.limit]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _output_column(alias: str, model: type[Model], column: str) -> str:
    field = next(f for f in model._meta.concrete_fields if f.column == column)
    quoted = f"{alias}.{connection.ops.quote_name(column)}"
    kind = field.get_internal_type()
    if kind == "JSONField":
        return _json_text(quoted)
    if kind == "DateTimeField":
        return _timestamp(quoted)
    return quoted


# --- Running it ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _row_kinds() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Positions of JSON columns (embedded as they are) and booleans (SQLite answers 0/1) in a row."""
    json_at, bool_at = [], []
    for index, (model, column) in enumerate(
        [(Server, c) for c in SERVER_COLUMNS] + [(Vendor, c) for c in VENDOR_COLUMNS]
    ):
        kind = next(f for f in model._meta.concrete_fields if f.column == column).get_internal_type()
        if kind == "JSONField":
            json_at.append(index)
        elif kind == "BooleanField":
            bool_at.append(index)
    return tuple(json_at), tuple(bool_at)


def run(values: Values, *, count: bool = False) -> tuple[list[dict[str, Any]], int | None]:
    """The rows of a search (prices in `currency`) and, when asked, how many match in all."""
    plan = plan_for(shape_of(values), _postgres())
    currency = values.get("currency", "USD")
    rate = exchange_rate("USD", currency)
    json_at, bool_at = _row_kinds()
    width_server, width_vendor = len(SERVER_COLUMNS), len(VENDOR_COLUMNS)
    computed = plan.columns[width_server + width_vendor :]
    rows = []
    with connection.cursor() as cursor:
        cursor.execute(plan.select, plan.bind(values))
        fetched = cursor.fetchall()
        total = None
        if count:
            cursor.execute(plan.count, plan.bind_count(values))
            total = cursor.fetchone()[0]
    for record in fetched:
        record = list(record)
        for index in json_at:
            if record[index] is not None:
                record[index] = orjson.Fragment(record[index])
        for index in bool_at:
            if record[index] is not None:
                record[index] = bool(record[index])
        row = dict(zip(SERVER_COLUMNS, record[:width_server]))
        row["vendor"] = dict(zip(VENDOR_COLUMNS, record[width_server : width_server + width_vendor]))
        figures = dict(zip(computed, record[width_server + width_vendor :]))
        breakdown = {name: figures.pop(name) for name, _ in BREAKDOWN}
        if breakdown["compute_min_price"] is None:
            # No price at all: nothing to break down (upstream leaves every part null then).
            breakdown = dict.fromkeys(breakdown)
        if rate != 1.0:
            # Converted last: the per-price scores stay per USD, as upstream computes them.
            for name, digits in CONVERTED:
                if figures[name]:
                    figures[name] = round(figures[name] * rate, digits)
            for name, digits in BREAKDOWN:
                if breakdown[name]:
                    breakdown[name] = round(breakdown[name] * rate, digits)
        row.update(figures)
        row["price"] = row["min_price"]
        row["price_breakdown"] = breakdown
        rows.append(row)
    return rows, total


def search_servers(
    params: dict[str, Any], places: Places, *, limit: int, page: int, count: bool
) -> tuple[list[dict[str, Any]], int | None]:
    """`GET /servers`: the validated parameters in, the rows (and the total when `count`) out."""
    values = Values(params=params, places=places, limit=limit, page=page)
    inbound, outbound = params.get("monthly_inbound_traffic"), params.get("monthly_outbound_traffic")
    storage = params.get("extra_storage_size")
    values = replace(
        values,
        traffic_in=traffic_totals(choices.TrafficDirection.IN, inbound, places) if inbound else (),
        traffic_out=traffic_totals(choices.TrafficDirection.OUT, outbound, places) if outbound else (),
        storage=storage_totals(storage, params.get("extra_storage_type") or (), places) if storage else (),
    )
    if (inbound and not values.traffic_in) or (outbound and not values.traffic_out) or (storage and not values.storage):
        return [], 0 if count else None  # no vendor prices it there: nothing to rank
    return run(values, count=count)


def server_by_reference(vendor_id: str, server: str, *, currency: str = "USD") -> dict[str, Any] | None:
    """One server by id or API reference, any status; the id wins when both match different servers."""
    params = {"currency": currency, "only_active": False, "order_by": "server_id"}
    values = Values(params=params, reference=(vendor_id, server), limit=-1)
    rows, _ = run(values)
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
        total = round(total, PRICE_DIGITS)
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
            total = round((tiered_price(tiers, usage, price) + upfront) * rate, PRICE_DIGITS)
        totals.append((vendor_id, built_in, total))
    return tuple(sorted(totals))
