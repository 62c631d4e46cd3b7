"""Benchmark reads: `/benchmark_configs`, `/benchmark_score_stats` and the coverage report of `/debug`.

Everything that scales with the number of scores is counted in SQL, over indexes of
benchmark_score (migration 0005): the distinct configurations of each benchmark are read with
a loose index scan (one index seek per configuration, not a pass over the scores), each
histogram bin is an index range count, and the servers per benchmark are counted in one pass
over a covering index. Python only shapes the few resulting rows.

Those catalog-wide aggregates are still a pass over every score (~35 ms on the sample in
SQLite), and they change only with a sync: each process derives them once per catalog version
(apps/catalog/version.py's `derived_per_catalog`), whatever the response cache does. The first
request after a sync pays for them.
"""

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.db.models import BooleanField, Case, CharField, Count, Exists, ExpressionWrapper, OuterRef, Q, Value, When

from apps.catalog import choices
from apps.catalog.models import Benchmark, BenchmarkScore, Database, Server
from apps.catalog.sql import fetch, table
from apps.catalog.version import derived_per_catalog

# The newest upstream display order of benchmarks and their configurations (sc-keeper's
# get_sort_key_for_benchmark_configs at 34232cd): category in this order (unlisted ones
# alphabetically after them, none or "Other" last), subcategory, the main benchmarks first, then the
# configuration: single-core before multi-core, the LLM models from small to large, tokens,
# algorithm, size, pgbench's concurrency and the database engine version the score was taken on.
CATEGORY_ORDER = (
    "stress-ng",
    "Geekbench",
    "Passmark",
    "Memory bandwidth",
    "Memory latency",
    "Cryptography",
    "Compression algos",
    "Static web server",
    "Database",
    "LLM inference speed",
    "GPU bandwidth",
    "GPU latency",
    "Workload profile",
)
LAST_CATEGORY = "Other"
MAIN_BENCHMARKS = ("geekbench:score", "passmark:cpu_mark", "passmark:memory_mark")
LLM_MODEL_ORDER = (
    "SmolLM-135M.Q4_K_M.gguf",
    "qwen1_5-0_5b-chat-q4_k_m.gguf",
    "gemma-2b.Q4_K_M.gguf",
    "llama-7b.Q4_K_M.gguf",
    "phi-4-q4.gguf",
    "Llama-3.3-70B-Instruct-Q4_K_M.gguf",
)
SINGLE_CORE = ("single", "Single-Core Performance", 1)
SIZE_KEYS = ("size", "size_kb", "block_size", "threads")
HISTOGRAM_BINS = 20

_SCORES = table(BenchmarkScore)
_BENCHMARKS = table(Benchmark)


def _position(value: Any, order: tuple) -> int:
    try:
        return order.index(value)
    except (ValueError, TypeError):
        return len(order)


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _category_rank(category: str | None) -> tuple[int, str]:
    if not category or category == LAST_CATEGORY:
        return (len(CATEGORY_ORDER) + 1, "")
    if category in CATEGORY_ORDER:
        return (CATEGORY_ORDER.index(category), "")
    return (len(CATEGORY_ORDER), category)


def _version_rank(version: Any) -> tuple:
    # "9.6" before "16.4": the numeric parts compared as numbers (text would put 16 first); anything
    # else (no version, a version that is no dotted number) after them, by its text.
    text = "" if version is None else str(version)
    parts = text.split(".")
    if text and all(part.isdigit() for part in parts):
        return (0, tuple(int(part) for part in parts), "")
    return (1, (), text)


def benchmark_sort_key(row: Mapping[str, Any], *, tie: Any = None) -> tuple:
    """The sort key of a benchmark row in the newest upstream display order.

    `row` is a `/benchmark_configs` row or a benchmark score: it has `benchmark_id` and `config` (a
    dict or its JSON text), and may have `category`, `subcategory` and `environment` (a score's:
    its `database_engine_version` is the last criterion). Rows without a category rank as "Other",
    as upstream's score rows do. Ties keep the benchmark id, then `tie` (by default the
    configuration's JSON text: the order of the scores' primary key).
    """
    config = row.get("config")
    text = config if isinstance(config, str) else config_text(config)
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    config = config if isinstance(config, dict) else {}
    environment = row.get("environment")
    if isinstance(environment, str):
        try:
            environment = json.loads(environment)
        except ValueError:
            environment = None
    environment = environment if isinstance(environment, dict) else {}
    cores = config.get("cores", "")
    single_core = not isinstance(cores, (dict, list)) and cores in SINGLE_CORE
    size = 0
    for key in SIZE_KEYS:
        if key in config and _integer(config[key]) is not None:
            size = _integer(config[key])
    model = config.get("model")
    tokens = _integer(config["tokens"]) if "tokens" in config else None
    concurrency = _integer(config["concurrency"]) if "concurrency" in config else None
    benchmark_id = row["benchmark_id"]
    return (
        _category_rank(row.get("category")),
        row.get("subcategory") or "",
        _position(benchmark_id, MAIN_BENCHMARKS),
        0 if single_core else 1,
        _position(model, LLM_MODEL_ORDER) if isinstance(model, str) else len(LLM_MODEL_ORDER),
        tokens or 0,
        str(config.get("algo", "")),
        size,
        concurrency or 0,
        _version_rank(environment.get("database_engine_version")),
        benchmark_id,
        text if tie is None else tie,
    )


def config_text(config: Any) -> str:
    """A configuration as upstream's database stores it (and `benchmark_config` takes it back)."""
    return json.dumps(config)


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def distinct_configs() -> list[tuple[str, Any, int]]:
    """(benchmark_id, config, id of its first active score) of every configuration with active scores.

    A loose index scan over (status, benchmark_id, config): from each benchmark's smallest
    configuration, one seek to the next larger one, so the work grows with the number of
    configurations (about a hundred), not with the number of scores.
    """
    first = f"SELECT s.config FROM {_SCORES} s WHERE s.status = %s AND s.benchmark_id = {{benchmark}}"
    sql = f"""
        WITH RECURSIVE configs(benchmark_id, config) AS (
            SELECT b.benchmark_id, ({first.format(benchmark="b.benchmark_id")} ORDER BY s.config LIMIT 1)
            FROM {_BENCHMARKS} b
            UNION ALL
            SELECT c.benchmark_id,
                ({first.format(benchmark="c.benchmark_id")} AND s.config > c.config ORDER BY s.config LIMIT 1)
            FROM configs c WHERE c.config IS NOT NULL
        )
        SELECT c.benchmark_id, c.config,
            (SELECT MIN(s.id) FROM {_SCORES} s
             WHERE s.status = %s AND s.benchmark_id = c.benchmark_id AND s.config = c.config)
        FROM configs c WHERE c.config IS NOT NULL
    """
    active = choices.Status.ACTIVE
    found = fetch(sql, [active, active, active])
    return [(benchmark_id, _decoded(config), first_id) for benchmark_id, config, first_id in found]


@derived_per_catalog
def benchmark_config_rows() -> list[dict[str, Any]]:
    """`/benchmark_configs`: each benchmark configuration with active scores (of servers and of
    databases), its category and subcategory.

    Derived once per catalog version: on the large catalog the configurations are a walk over 1.9
    million scores.

    Of the stress-ng category only the summary scores (`stress_ng:best*`) are listed. Upstream's
    display order (`benchmark_sort_key`); ties in the order keep the benchmark id, then the
    configurations in the order they were first scored.
    """
    categories = {
        benchmark_id: (category, subcategory)
        for benchmark_id, category, subcategory in Benchmark.objects.values_list(
            "benchmark_id", "category", "subcategory"
        )
    }
    rows = []
    for benchmark_id, config, first_id in distinct_configs():
        category, subcategory = categories.get(benchmark_id, (None, None))
        if category == "stress-ng" and not benchmark_id.startswith("stress_ng:best"):
            continue
        row = {
            "benchmark_id": benchmark_id,
            "config": config_text(config),
            "category": category,
            "subcategory": subcategory,
        }
        rows.append((benchmark_sort_key({**row, "config": config}, tie=first_id), row))
    rows.sort(key=lambda item: item[0])
    return [row for _, row in rows]


def _histogram_counts() -> dict[str, dict[str, Any]]:
    """Per benchmark with active scores: the lowest and highest score and the count in each bin.

    The bins split [lowest, highest] into HISTOGRAM_BINS equal ranges (widened by 5% of the value
    on each side, or by 1 around 0, when all scores are equal); each bin is one index range count.
    """
    scores = f"FROM {_SCORES} s WHERE s.status = %s AND s.benchmark_id = e.benchmark_id AND s.score >= e.low"
    of_benchmark = f"FROM {_SCORES} s WHERE s.status = %s AND s.benchmark_id = b.benchmark_id"
    sql = f"""
        WITH RECURSIVE bins(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM bins WHERE i < %s),
        bounds AS MATERIALIZED (
            SELECT benchmark_id, lo, hi, CASE WHEN hi > lo THEN 0.0 WHEN lo = 0 THEN 1.0 ELSE ABS(lo) * 0.05 END AS pad
            FROM (
                SELECT b.benchmark_id,
                    (SELECT MIN(s.score) {of_benchmark}) AS lo,
                    (SELECT MAX(s.score) {of_benchmark}) AS hi
                FROM {_BENCHMARKS} b
            ) extremes
            WHERE lo IS NOT NULL
        ),
        edges AS MATERIALIZED (
            SELECT benchmark_id, lo, hi, i,
                (lo - pad) + i * (((hi + pad) - (lo - pad)) / %s) AS low,
                (lo - pad) + (i + 1) * (((hi + pad) - (lo - pad)) / %s) AS high
            FROM bounds, bins
        )
        SELECT e.benchmark_id, e.lo, e.hi, e.i,
            CASE WHEN e.i = %s
                THEN (SELECT COUNT(*) {scores} AND s.score <= e.hi)
                ELSE (SELECT COUNT(*) {scores} AND s.score < e.high)
            END
        FROM edges e
    """
    active = choices.Status.ACTIVE
    last = HISTOGRAM_BINS - 1
    params = [last, active, active, float(HISTOGRAM_BINS), float(HISTOGRAM_BINS), last, active, active]
    found: dict[str, dict[str, Any]] = {}
    for benchmark_id, lo, hi, bin_index, count in fetch(sql, params):
        entry = found.setdefault(benchmark_id, {"lo": lo, "hi": hi, "counts": [0] * HISTOGRAM_BINS})
        entry["counts"][bin_index] = count
    return found


def _breakpoints(lo: float, hi: float) -> list[float]:
    # The same arithmetic as the bins' edges in _histogram_counts (and as upstream's breakpoints).
    if lo == hi:
        pad = abs(lo) * 0.05 if lo != 0 else 1.0
        lo, hi = lo - pad, hi + pad
    step = (hi - lo) / HISTOGRAM_BINS
    return [lo + i * step for i in range(HISTOGRAM_BINS + 1)]


def _servers_per_benchmark() -> dict[str, int]:
    """Distinct servers with an active score, per benchmark (one pass over a covering index)."""
    per_vendor = (
        BenchmarkScore.objects.filter(status=choices.Status.ACTIVE, resource_type=choices.ResourceType.SERVER)
        .values_list("benchmark_id", "vendor_id")
        .annotate(servers=Count("resource_id", distinct=True))
        .order_by()
    )
    totals: dict[str, int] = defaultdict(int)
    for benchmark_id, _, servers in per_vendor:
        totals[benchmark_id] += servers
    return totals


def _example_key(value: Any) -> tuple:
    # Upstream's order of example values: numbers (and numeric strings) by value, then strings.
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    if isinstance(value, str):
        try:
            return (0, float(value), value)
        except ValueError:
            return (2, 0.0, value)
    return (3, 0.0, json.dumps(value))


def _config_examples() -> dict[str, dict[str, list[Any]]]:
    """{benchmark_id: {config key: the distinct values it takes in active scores}} (nulls left out)."""
    seen: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for benchmark_id, config, _ in distinct_configs():
        if not isinstance(config, dict):
            continue
        for key, value in config.items():
            if value is not None:
                identity = value if isinstance(value, (str, int, float)) else json.dumps(value, sort_keys=True)
                seen[benchmark_id][key].setdefault(identity, value)
    return {
        benchmark_id: {key: sorted(values.values(), key=_example_key) for key, values in keys.items()}
        for benchmark_id, keys in seen.items()
    }


@derived_per_catalog
def _score_aggregates() -> tuple[dict[str, dict[str, Any]], dict[str, int], dict[str, dict[str, list[Any]]]]:
    """The histograms, the servers per benchmark and the configuration values of the active scores."""
    return _histogram_counts(), _servers_per_benchmark(), _config_examples()


STATS_BENCHMARK_COLUMNS = (
    "benchmark_id",
    "name",
    "description",
    "framework",
    "measurement",
    "unit",
    "higher_is_better",
    "status",
    "config_fields",
)


def benchmark_score_stats() -> list[dict[str, Any]]:
    """`/benchmark_score_stats`: per benchmark, its description, counts of active scores and of
    servers scored, its configuration fields with the values seen, and a histogram of the scores."""
    histograms, servers, examples = _score_aggregates()
    rows = []
    for values in Benchmark.objects.values_list(*STATS_BENCHMARK_COLUMNS):
        row = dict(zip(STATS_BENCHMARK_COLUMNS, values))
        benchmark_id = row["benchmark_id"]
        # Upstream spells the status by its member name here (ACTIVE), unlike its other rows.
        row["status"] = choices.Status(row["status"]).name
        fields = row.pop("config_fields")
        seen = examples.get(benchmark_id, {})
        row["configs"] = {
            key: {"description": description, "examples": seen.get(key, [])}
            for key, description in (fields.items() if isinstance(fields, dict) else ())
        }
        histogram = histograms.get(benchmark_id)
        row["count"] = sum(histogram["counts"]) if histogram else 0
        row["count_servers"] = servers.get(benchmark_id, 0)
        row["histogram"] = (
            {"breakpoints": _breakpoints(histogram["lo"], histogram["hi"]), "counts": histogram["counts"]}
            if histogram
            else None
        )
        rows.append(row)
    # Code-point order of the ids, as upstream's SQLite sorts them (a PostgreSQL collation may not).
    rows.sort(key=lambda row: row["benchmark_id"])
    return rows


def benchmark_family(benchmark_id: str) -> str:
    """The family of a benchmark: its id up to the first colon (`geekbench:score` -> `geekbench`)."""
    return benchmark_id.split(":", 1)[0]


@derived_per_catalog
def _family_coverage() -> tuple[list[str], dict[tuple[str, str], dict[str, bool]]]:
    """The benchmark families with active scores, and per scored server {family: whether it has a score}."""
    families_of: dict[str, list[str]] = defaultdict(list)
    for benchmark_id in sorted({benchmark_id for benchmark_id, _, _ in distinct_configs()}):
        families_of[benchmark_family(benchmark_id)].append(benchmark_id)
    if not families_of:
        return [], {}
    families = sorted(families_of)
    family = Case(
        *(When(benchmark_id__in=ids, then=Value(name)) for name, ids in families_of.items()),
        output_field=CharField(),
    )
    scored: dict[tuple[str, str], set[str]] = defaultdict(set)
    for vendor_id, server_id, name in (
        BenchmarkScore.objects.filter(status=choices.Status.ACTIVE, resource_type=choices.ResourceType.SERVER)
        .annotate(family=family)
        .values_list("vendor_id", "resource_id", "family")
        .distinct()
        .order_by()
    ):
        scored[(vendor_id, server_id)].add(name)
    return families, {key: {name: name in names for name in families} for key, names in scored.items()}


def benchmark_coverage() -> dict[str, Any]:
    """`/debug`: which servers have hardware information, a price and scores of each benchmark family,
    and per vendor how many active, priced servers are evaluated or still missing scores."""
    families, coverage = _family_coverage()
    unscored = dict.fromkeys(families, False)
    has_hw_info = ExpressionWrapper(~Q(cpu_flags=[]), output_field=BooleanField())
    servers = []
    vendors: dict[str, dict[str, Any]] = {}
    active = choices.Status.ACTIVE
    for vendor_id, server_id, api_reference, status, hw_info, min_price in (
        Server.objects.annotate(has_hw_info=has_hw_info)
        .order_by("vendor_id", "server_id")
        .values_list("vendor_id", "server_id", "api_reference", "status", "has_hw_info", "min_price")
    ):
        # The same (read-only) family dicts in every answer: they are rendered, never changed.
        benchmarks = coverage.get((vendor_id, server_id), unscored)
        has_benchmarks = benchmarks is not unscored
        has_price = bool(min_price)
        servers.append(
            {
                "vendor_id": vendor_id,
                "server_id": server_id,
                "api_reference": api_reference,
                "status": status,
                "has_hw_info": bool(hw_info),
                "has_price": has_price,
                "has_benchmarks": has_benchmarks,
                "benchmarks": benchmarks,
            }
        )
        counts = vendors.get(vendor_id)
        if counts is None:
            counts = vendors[vendor_id] = {
                "vendor_id": vendor_id,
                "all": 0,
                "active": 0,
                "evaluated": 0,
                "missing": 0,
                "inactive": 0,
            }
        counts["all"] += 1
        if status == active and has_price:
            counts["active"] += 1
            counts["evaluated" if has_benchmarks else "missing"] += 1
        else:
            counts["inactive"] += 1
    return {
        "vendors": list(vendors.values()),
        "servers": servers,
        "benchmark_families": families,
        "databases": _database_coverage(),
    }


@derived_per_catalog
def _database_coverage() -> list[dict[str, Any]]:
    """`/debug`'s managed databases per vendor, counted as its servers are: active (and priced), of those
    evaluated (with an active benchmark score) or missing scores, and the rest inactive. One query per
    catalog version (each database's scores looked up by the benchmark_score_resource index)."""
    scores = BenchmarkScore.objects.filter(
        vendor_id=OuterRef("vendor_id"),
        resource_id=OuterRef("database_id"),
        resource_type=choices.ResourceType.DATABASE,
        status=choices.Status.ACTIVE,
    )
    rows = (
        Database.objects.annotate(scored=Exists(scores))
        .order_by("vendor_id", "database_id")
        .values_list("vendor_id", "status", "min_price", "scored")
    )
    vendors: dict[str, dict[str, Any]] = {}
    for vendor_id, status, min_price, scored in rows:
        counts = vendors.setdefault(
            vendor_id, {"vendor_id": vendor_id, "all": 0, "active": 0, "evaluated": 0, "missing": 0, "inactive": 0}
        )
        counts["all"] += 1
        if status == choices.DatabaseStatus.ACTIVE and min_price:
            counts["active"] += 1
            counts["evaluated" if scored else "missing"] += 1
        else:
            counts["inactive"] += 1
    return list(vendors.values())
