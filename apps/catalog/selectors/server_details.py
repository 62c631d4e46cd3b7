"""One server's resources as the Spare Cores API returns them: its prices, benchmark scores and
descriptions (`/server/{vendor}/{server}/...`), and the servers most similar to it.

Rows come straight from the cursor in the format of the `/servers` rows (selectors/servers.py):
JSON columns as their text, embedded in the answer as they are (orjson.Fragment, no parsing),
timestamps as ISO text. The statements are spelled once per database (SQL text cached) and bound
per request; building and compiling querysets cost more than running these small queries.

A server is named by its id or its API reference; the id wins when both match (as for
`/server/{vendor}/{server}`). The name is resolved first with one indexed lookup; the rows are
then read by constant keys, which SQLite's planner (without ANALYZE statistics) serves from the
(vendor, server) indexes of migration 0007.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from apps.catalog import choices
from apps.catalog.models import (
    BenchmarkScore,
    Region,
    Server,
    ServerCountryPrice,
    ServerDescription,
    ServerPrice,
    ServerRegionPrice,
    Vendor,
)
from apps.catalog.places import Places
from apps.catalog.pricing import (
    PRICE_BREAKDOWN,
    SERVER_PRICE_DIGITS,
    convert_price_row,
    exchange_rate,
    server_price_digits,
)
from apps.catalog.selectors.benchmarks import benchmark_sort_key
from apps.catalog.selectors.catalog import named_server, server_id_of
from apps.catalog.selectors.prices import SERVER_PRICE_COLUMNS
from apps.catalog.sql import (
    SERVER_ROW,
    VENDOR_ROW,
    PlaceShape,
    RowFormat,
    fetch,
    place_params,
    placeholders,
    postgres,
    quote,
    rounded,
    table,
    table_columns,
)

BENCHMARK_SCORE_COLUMNS = tuple(table_columns(BenchmarkScore))
DESCRIPTION_COLUMNS = tuple(table_columns(ServerDescription))
PRICE_COLUMNS = ("min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly")
SPECS_DISTANCE = (
    "ABS(s.accelerator_count - %s) * 10000000.0 + ABS(s.vcpus - %s) * 10000.0 + ABS(s.memory_amount - %s) / 1000.0"
)
# The condition of the partial indexes server_specs and server_scores (models.Server): the statements that
# should read them say it as it is written there (every server has observed_at; no /servers statement says it).
INDEXED_ROWS = f"s.observed_at IS NOT NULL AND s.status = '{choices.Status.ACTIVE}'"
SPECS_INDEX, SCORES_INDEX = "server_specs", "server_scores"
SIMILARITY_KINDS = ("family", "specs", "score", "score_per_price", "benchmark_score", "benchmark_score_per_price")
MAX_SIMILAR_SERVERS = 100


# --- rows from the cursor ---------------------------------------------------------------------

PRICE_ROW = RowFormat(ServerPrice, tuple(SERVER_PRICE_COLUMNS))
SCORE_ROW = RowFormat(BenchmarkScore, BENCHMARK_SCORE_COLUMNS)
DESCRIPTION_ROW = RowFormat(ServerDescription, DESCRIPTION_COLUMNS)


# --- prices, scores, descriptions -------------------------------------------------------------


@lru_cache(maxsize=64)
def _prices_sql(places: PlaceShape, postgres: bool) -> str:
    region = f"SELECT r.country_id FROM {table(Region)} r WHERE r.vendor_id = p.vendor_id AND r.region_id = p.region_id"
    condition = places.condition("p", country=f"({region})")
    return (
        f"SELECT {PRICE_ROW.select('p')} FROM {table(ServerPrice)} p "
        f"WHERE p.vendor_id = %s AND p.server_id = %s AND p.status = %s AND {condition} "
        "ORDER BY p.region_id, p.zone_id, p.allocation"
    )


def server_price_rows(
    *, vendor_id: str, server: str, places: Places = Places(), currency: str = "USD"
) -> list[dict[str, Any]] | None:
    """The server's active prices in `places`, in `currency`; None for an unknown server.

    Ordered as upstream's primary key reads them: by region, zone and allocation.
    """
    server_id = server_id_of(vendor_id, server)
    if server_id is None:
        return None
    sql = _prices_sql(PlaceShape.of(places), postgres())
    currency_at = PRICE_ROW.columns.index("currency")
    rows = []
    for values in fetch(sql, [vendor_id, server_id, choices.Status.ACTIVE, *place_params(places)]):
        converted = values[currency_at] != currency
        row = PRICE_ROW.read(values, parse=("price_tiered",) if converted else ())
        if converted:
            # Upstream's Python rounding, digit for digit.
            convert_price_row(row, currency, SERVER_PRICE_DIGITS)
        rows.append(row)
    return rows


@lru_cache(maxsize=2)
def _scores_sql(postgres: bool) -> str:
    return (
        f"SELECT {SCORE_ROW.select('b')} FROM {table(BenchmarkScore)} b "
        "WHERE b.vendor_id = %s AND b.resource_id = %s AND b.resource_type = %s AND b.status = %s"
    )


def server_benchmark_rows(*, vendor_id: str, server: str) -> list[dict[str, Any]] | None:
    """The server's active benchmark scores in upstream's display order; None for an unknown server."""
    server_id = server_id_of(vendor_id, server)
    if server_id is None:
        return None
    server_type = choices.ResourceType.SERVER
    return resource_benchmark_rows(vendor_id=vendor_id, resource_id=server_id, resource_type=server_type)


def resource_benchmark_rows(*, vendor_id: str, resource_id: str, resource_type: str) -> list[dict[str, Any]]:
    """The active benchmark scores of one resource (a server, a managed database) in upstream's display
    order, the same for every resource type (the newest Spare Cores API sorts both lists alike)."""
    params = [vendor_id, resource_id, resource_type, choices.Status.ACTIVE]
    config_at = SCORE_ROW.columns.index("config")
    environment_at = SCORE_ROW.columns.index("environment")
    keyed = []
    for values in fetch(_scores_sql(postgres()), params):
        row = SCORE_ROW.read(values)
        text = values[config_at]
        # Upstream sorts these rows without their category, so every one ranks as "Other"; ties keep
        # the order of its primary key: the benchmark id, then the configuration's JSON text.
        sortable = {"benchmark_id": row["benchmark_id"], "config": text, "environment": values[environment_at]}
        keyed.append((benchmark_sort_key(sortable, tie=text), row))
    keyed.sort(key=lambda item: item[0])
    return [row for _, row in keyed]


@dataclass(frozen=True)
class DescriptionLookup:
    """A server's description, or why there is none."""

    row: dict[str, Any] | None
    server_found: bool


@lru_cache(maxsize=2)
def _description_sql(postgres: bool) -> str:
    return (
        f"SELECT {DESCRIPTION_ROW.select('d')} FROM {table(ServerDescription)} d "
        "WHERE d.vendor_id = %s AND d.server_id = %s"
    )


def server_description_row(*, vendor_id: str, server: str) -> DescriptionLookup:
    server_id = server_id_of(vendor_id, server)
    if server_id is None:
        return DescriptionLookup(row=None, server_found=False)
    found = fetch(_description_sql(postgres()), [vendor_id, server_id])
    return DescriptionLookup(row=DESCRIPTION_ROW.read(found[0]) if found else None, server_found=True)


# --- similar servers --------------------------------------------------------------------------

TARGET_COLUMNS = (
    "id",
    "vendor_id",
    "server_id",
    "family",
    "vcpus",
    "accelerator_count",
    "memory_amount",
    "score",
    *PRICE_COLUMNS,
)


@dataclass(frozen=True)
class Similarity:
    """How to rank the servers similar to one (the validated path and query parameters)."""

    by: str
    num: int
    places: Places = Places()
    price_column: str = "min_price"
    server_region: str | None = None
    benchmark_id: str | None = None
    benchmark_config: dict[str, Any] | str | None = None
    currency: str = "USD"

    @property
    def per_price(self) -> bool:
        return self.by.endswith("_per_price")

    @property
    def by_benchmark(self) -> bool:
        return self.by.startswith("benchmark_score")


def similar_server_rows(*, vendor_id: str, server: str, similarity: Similarity) -> list[dict[str, Any]] | None:
    """The `num` active servers most similar to the given one (itself excluded), as `/servers` rows;
    None for an unknown server.

    The ranking is upstream's, ties in the order upstream's query reads them:
    - family: the same vendor and family, by vCPUs, accelerators, memory;
    - specs: by the distance in accelerators, then vCPUs, then memory;
    - score: by the distance in stress-ng score (servers with a price only);
    - score_per_price: by the distance in score per price (`best_price_allocation`'s price, in
      `server_region` for the given server when set);
    - benchmark_score, benchmark_score_per_price: the same with `benchmark_id`'s best score.
    With `countries` or `vendor_regions`, only servers with a price there are ranked, and their
    prices are the cheapest there.
    """
    target = named_server(vendor_id, server, TARGET_COLUMNS)
    if target is None:
        return None
    return _Ranking(target, similarity).rows()


def _benchmark_scores_sql(config: dict[str, Any] | str | None) -> str:
    """Per server, its best active score of a benchmark (in one configuration, when given: compared as
    JSON when it is a JSON object, else as text, which matches nothing upstream stored)."""
    if config is None:
        matches = ""
    elif isinstance(config, dict):
        matches = " AND b.config = CAST(%s AS jsonb)" if postgres() else " AND json(b.config) = json(%s)"
    else:
        matches = " AND CAST(b.config AS TEXT) = %s"
    return (
        f"SELECT b.vendor_id, b.resource_id, MAX(b.score) AS score FROM {table(BenchmarkScore)} b "
        f"WHERE b.status = %s AND b.resource_type = %s AND b.benchmark_id = %s{matches} "
        "GROUP BY b.vendor_id, b.resource_id"
    )


def _benchmark_params(similarity: Similarity) -> list[Any]:
    params = [choices.Status.ACTIVE, choices.ResourceType.SERVER, similarity.benchmark_id]
    config = similarity.benchmark_config
    if config is None:
        return params
    return [*params, json.dumps(config) if isinstance(config, dict) else config]


def _live_prices_sql(places: Places, columns: Sequence[str], *, vendors: int = 0, servers: int = 0) -> str:
    """Per server, its cheapest active hourly prices (USD) of `columns` in `places`, rounded as
    upstream's; of the servers of `vendors` vendor ids and `servers` server ids when given (IN lists:
    an index search, where SQLite's planner scans the country for an OR of pairs). Bound by
    `place_params`, then the vendor ids and the server ids."""
    only = ""
    if vendors and servers:
        only = f" AND p.vendor_id IN ({placeholders(vendors)}) AND p.server_id IN ({placeholders(servers)})"
    if places.countries and len(places.countries) == 1 and not (places.regions or places.vendor_regions):
        # One country, the most common place: its cheapest prices per server are stored at sync, rounded.
        selected = ", ".join(f"p.{column}" for column in columns)
        return (
            f"SELECT p.vendor_id, p.server_id, {selected} FROM {table(ServerCountryPrice)} p "
            f"WHERE p.country_id = %s{only}"
        )
    minima = ", ".join(f"{rounded(f'MIN(p.{column})', server_price_digits(column))} AS {column}" for column in columns)
    condition = PlaceShape.of(places).condition("p", country="p.country_id")
    return (
        f"SELECT p.vendor_id, p.server_id, {minima} FROM {table(ServerRegionPrice)} p "
        f"WHERE {condition}{only} GROUP BY p.vendor_id, p.server_id"
    )


class _Ranking:
    """Ranks the servers in one query, then reads the rows (and, with live prices, the four prices) of the ranked."""

    def __init__(self, target: dict[str, Any], similarity: Similarity):
        self.target = target
        self.similarity = similarity
        self.live = bool(similarity.places)
        self.where: list[str] = ["s.status = %s", "s.id <> %s"]
        self.index: str | None = None  # the partial index a bound ranking reads (see _indexed_by)
        self.where_params: list[Any] = [choices.Status.ACTIVE, target["id"]]
        # With live prices the ranking reads only the price it may divide by (one aggregate, not four:
        # the grouping is most of its cost); the ranked servers' four are read after it.
        self.price_sql = (
            {similarity.price_column: f"lp.{similarity.price_column}"}
            if self.live
            else {column: f"s.{column}" for column in PRICE_COLUMNS}
        )

    def rows(self) -> list[dict[str, Any]]:
        ranked = self._ranked()
        if not ranked:
            return []
        # The wide rows of the few ranked servers by primary key: ranking them with every column
        # selected made SQLite sort whole rows instead of reading the narrow server_similarity index.
        columns = f"s.id, {SERVER_ROW.select('s')}, {VENDOR_ROW.select('v')}, s.score, s.score1"
        sql = (
            f"SELECT {columns} FROM {table(Server)} s JOIN {table(Vendor)} v ON v.vendor_id = s.vendor_id "
            f"WHERE s.id IN ({placeholders(len(ranked))})"
        )
        by_id = {values[0]: values[1:] for values in fetch(sql, list(ranked))}
        if self.live:
            live = self._live_prices([(key[0], key[1]) for key, _, _ in ranked.values()])
            return [
                self._row(by_id[server_id], live[key], benchmark_score)
                for server_id, (key, _, benchmark_score) in ranked.items()
            ]
        return [
            self._row(by_id[server_id], prices, benchmark_score)
            for server_id, (_, prices, benchmark_score) in ranked.items()
        ]

    def _live_prices(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, float | None]]:
        places = self.similarity.places
        vendors, servers = sorted({key[0] for key in keys}), sorted({key[1] for key in keys})
        sql = _live_prices_sql(places, PRICE_COLUMNS, vendors=len(vendors), servers=len(servers))
        found = fetch(sql, [*place_params(places), *vendors, *servers])
        # The IN lists cross the vendors and servers: more pairs than ranked, looked up by pair.
        return {(values[0], values[1]): dict(zip(PRICE_COLUMNS, values[2:])) for values in found}

    def _ranked(self) -> dict[int, tuple[tuple[str, str], dict[str, float | None], float | None]]:
        """{server pk: ((vendor, server), its prices in USD (none yet with live prices), its benchmark
        score)} of the `num` most similar, best first."""
        order = self._order()
        if order is None:
            return {}
        similarity = self.similarity
        benchmark = "bs.score" if similarity.benchmark_id else "NULL"
        prices = [] if self.live else list(self.price_sql.values())
        columns = ", ".join(["s.id", "s.vendor_id", "s.server_id", *prices, benchmark])
        sql = [f"SELECT {columns} FROM {table(Server)} s{_indexed_by(self.index)}"]
        params: list[Any] = []
        if self.live:
            live_sql = _live_prices_sql(similarity.places, [similarity.price_column])
            sql.append(f"JOIN ({live_sql}) lp ON lp.vendor_id = s.vendor_id AND lp.server_id = s.server_id")
            params += place_params(similarity.places)
        if similarity.benchmark_id:
            join = "JOIN" if similarity.by_benchmark else "LEFT JOIN"
            scores_sql = _benchmark_scores_sql(similarity.benchmark_config)
            sql.append(f"{join} ({scores_sql}) bs ON bs.vendor_id = s.vendor_id AND bs.resource_id = s.server_id")
            params += _benchmark_params(similarity)
        order_sql, order_params = order
        sql.append("WHERE " + " AND ".join(self.where))
        sql.append(f"ORDER BY {order_sql}, {self._tie_break()} LIMIT %s")
        params += [*self.where_params, *order_params, similarity.num]
        return {
            values[0]: ((values[1], values[2]), dict(zip(PRICE_COLUMNS, values[3:-1])), values[-1])
            for values in fetch(" ".join(sql), params)
        }

    def _row(self, values: tuple, prices: dict[str, float | None], benchmark_score: float | None) -> dict[str, Any]:
        """A `/servers` row with the ranking's prices, upstream's `score_per_price` and the selected benchmark."""
        servers, vendors = SERVER_ROW.width, VENDOR_ROW.width
        row = SERVER_ROW.read(values[:servers])
        row["vendor"] = VENDOR_ROW.read(values[servers : servers + vendors])
        row["score"], row["score1"] = values[servers + vendors :]
        rate = exchange_rate("USD", self.similarity.currency)
        for column, value in prices.items():
            row[column] = round(value * rate, server_price_digits(column)) if value and rate != 1.0 else value
        # The per-price figures divide by best_price_allocation's price in USD, before any conversion.
        divisor = prices[self.similarity.price_column]
        row["score_per_price"] = _per(row["score"], divisor)
        row["selected_benchmark_score"] = benchmark_score
        row["selected_benchmark_score_per_price"] = _per(benchmark_score, divisor)
        # As upstream: `price` is the cheapest price of any allocation; nothing is broken down here.
        row["price"] = row["min_price"]
        row["price_breakdown"] = dict.fromkeys(name for name, _ in PRICE_BREAKDOWN)
        return row

    def _tie_break(self) -> str:
        """Equally similar servers in the order upstream's query reads them (measured against it): by
        (vendor, server id) with live prices (the grouped prices' order) and within a family (its
        index's order), else in the catalog's row order. Ids in code-point order, as SQLite's."""
        if not self.live and self.similarity.by != "family":
            return "s.id"
        binary = ' COLLATE "C"' if postgres() else ""
        return f"s.vendor_id{binary}, s.server_id{binary}"

    def _order(self) -> tuple[str, list[Any]] | None:
        """The ORDER BY expression and its parameters; None when the given server has no baseline."""
        target, by = self.target, self.similarity.by
        if by == "family":
            if target["family"] is None:
                return None
            self._filter("s.vendor_id = %s AND s.family = %s", target["vendor_id"], target["family"])
            return "s.vcpus, s.accelerator_count, s.memory_amount", []
        if by == "specs":
            specs = (float(target["accelerator_count"]), target["vcpus"], target["memory_amount"])
            if not self.live:
                self._near_specs(*specs)
            return SPECS_DISTANCE, list(specs)
        value, baseline = self._value_and_baseline()
        if baseline is None:
            return None
        return f"ABS({value} - %s)", [baseline]

    def _near_specs(self, accelerators: float, vcpus: int, memory: int) -> None:
        """Narrow the specs ranking to the servers no farther than the `num`-th nearest of those with the
        same vCPUs and accelerators, when there are that many: a range of the server_specs index instead of
        every active server (0.3 instead of 1.3 ms of SQL for m5.large on the sample), the same answer.

        Exact: the `num` nearest of all are no farther than `num` of them, and a distance of at most D
        has its vCPUs within D / 10,000, its accelerators within D / 10,000,000 and its memory within
        D * 1,000 of the given server's (each term is at most the whole). Only without live prices,
        whose join would leave out some of the servers the bound was taken from."""
        params = [accelerators, vcpus, memory, vcpus, accelerators, self.target["id"], memory, self.similarity.num]
        bound = self._bound(_near_specs_sql(postgres()), params * 2)
        if bound is None:
            return
        lowest, highest = math.ceil(vcpus - bound / 10000.0), math.floor(vcpus + bound / 10000.0)
        self.index = SPECS_INDEX
        self._filter(INDEXED_ROWS)
        if lowest == highest:
            self._filter("s.vcpus = %s", vcpus)
        else:
            self._filter("s.vcpus BETWEEN %s AND %s", lowest, highest)
        spread = bound / 10000000.0
        self._filter("s.accelerator_count BETWEEN %s AND %s", accelerators - spread, accelerators + spread)
        memory_spread = bound * 1000.0
        self._filter(
            "s.memory_amount BETWEEN %s AND %s", math.floor(memory - memory_spread), math.ceil(memory + memory_spread)
        )

    def _near_score(self, score: float) -> None:
        """Narrow the score ranking to the servers whose score is no farther from the given one's than the
        `num`-th nearest score's (two seeks of the server_scores index, above and below it): a range of
        that index instead of every active server, the same answer (exact as `_near_specs`)."""
        bound = self._bound(_near_scores_sql(postgres()), [score, self.target["id"], score, self.similarity.num] * 2)
        if bound is not None:
            self.index = SCORES_INDEX
            self._filter(INDEXED_ROWS)
            self._filter("s.score BETWEEN %s AND %s", score - bound, score + bound)

    def _bound(self, sql: str, params: list[Any]) -> float | None:
        """The `num`-th smallest of the distances `sql` reads (eligible servers, the given one left out), a
        little more for the rounding of the distances (a wider range only reads a few more rows); None
        with fewer, or none to rank."""
        num = self.similarity.num
        distances = sorted(distance for (distance,) in fetch(sql, params)) if num else []
        return distances[num - 1] * (1 + 1e-9) + 1e-9 if num and len(distances) >= num else None

    def _filter(self, condition: str, *params: Any) -> None:
        self.where.append(condition)
        self.where_params.extend(params)

    def _value_and_baseline(self) -> tuple[str, float | None]:
        """The ranked value of each server (SQL) and the given server's own value."""
        similarity, target = self.similarity, self.target
        if similarity.by_benchmark:
            score_sql, own_score = "bs.score", self._own_benchmark_score()
        else:
            # As upstream: servers without any price have no stress-ng score to compare.
            self._filter("s.score IS NOT NULL AND s.min_price IS NOT NULL")
            score_sql, own_score = "s.score", target["score"] if target["min_price"] is not None else None
        if not similarity.per_price:
            if not similarity.by_benchmark and not self.live and own_score is not None:
                self._near_score(own_score)
            return score_sql, own_score
        ratio = f"{score_sql} / NULLIF({self.price_sql[similarity.price_column]}, 0)"
        # No price, or a zero price, has no score per price (upstream ranks the zero prices first, as
        # its division by zero is NULL). Spelled on the ratio, not as price > 0: a range condition on
        # the price would make SQLite's planner walk server_status_min_price and read every row.
        self._filter(f"{ratio} IS NOT NULL")
        own_price = self._own_price()
        baseline = round(own_score / own_price, 4) if own_score is not None and own_price else None
        if similarity.by_benchmark and not self.live:
            # Upstream compares the unrounded benchmark score per price here (and the rounded one elsewhere).
            return ratio, baseline
        return rounded(ratio, 4), baseline

    def _own_benchmark_score(self) -> float | None:
        similarity, target = self.similarity, self.target
        sql = f"SELECT score FROM ({_benchmark_scores_sql(similarity.benchmark_config)}) own"
        sql += " WHERE vendor_id = %s AND resource_id = %s"
        found = fetch(sql, [*_benchmark_params(similarity), target["vendor_id"], target["server_id"]])
        return found[0][0] if found else None

    def _own_price(self) -> float | None:
        """The given server's price of `best_price_allocation`, in USD: in `server_region` when set."""
        similarity, target = self.similarity, self.target
        if similarity.server_region is None:
            return target[similarity.price_column]
        column = similarity.price_column
        sql = (
            f"SELECT {rounded(f'MIN({column})', server_price_digits(column))} FROM {table(ServerRegionPrice)} "
            "WHERE vendor_id = %s AND server_id = %s AND region_id = %s"
        )
        return fetch(sql, [target["vendor_id"], target["server_id"], similarity.server_region])[0][0]


def _indexed_by(index: str | None) -> str:
    """SQLite's INDEXED BY the partial index a bound ranking reads: without statistics its planner prefers an
    equality on status (server_similarity, server_status_min_price) to a range of it and reads every active
    server (4 ms for the score ranking of m5.large on the sample); PostgreSQL plans on its statistics."""
    return f" INDEXED BY {quote(index)}" if index and not postgres() else ""


@lru_cache(maxsize=2)
def _near_specs_sql(postgres: bool) -> str:
    """The distances of the `num` servers nearest by memory above and below the given one's, of those with its
    vCPUs and accelerators (two seeks of the server_specs index); bound twice as
    (accelerators, vcpus, memory, vcpus, accelerators, the server's pk, memory, num)."""
    nearest = (
        f"SELECT {SPECS_DISTANCE} AS d FROM {table(Server)} s{_indexed_by(SPECS_INDEX)} "
        f"WHERE {INDEXED_ROWS} AND s.vcpus = %s "
        "AND s.accelerator_count = %s AND s.id <> %s AND s.memory_amount "
    )
    above = nearest + ">= %s ORDER BY s.memory_amount LIMIT %s"
    below = nearest + "< %s ORDER BY s.memory_amount DESC LIMIT %s"
    return f"SELECT d FROM ({above}) above_it UNION ALL SELECT d FROM ({below}) below_it"


@lru_cache(maxsize=2)
def _near_scores_sql(postgres: bool) -> str:
    """The distances of the `num` scores nearest above and below the given server's, of the active servers with
    a price (two seeks of the server_scores index); bound twice as (score, the server's pk, score, num)."""
    nearest = (
        f"SELECT ABS(s.score - %s) AS d FROM {table(Server)} s{_indexed_by(SCORES_INDEX)} WHERE {INDEXED_ROWS} "
        "AND s.min_price IS NOT NULL AND s.id <> %s AND s.score "
    )
    above = nearest + ">= %s ORDER BY s.score LIMIT %s"
    below = nearest + "< %s ORDER BY s.score DESC LIMIT %s"
    return f"SELECT d FROM ({above}) above_it UNION ALL SELECT d FROM ({below}) below_it"


def _per(value: float | None, price: float | None) -> float | None:
    return round(value / price, 4) if value is not None and price else None
