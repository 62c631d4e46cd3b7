"""The newest Spare Cores display order of benchmarks: /benchmark_configs and /server/{vendor}/{server}/benchmarks.

The order (NEWEST-API.md, "/benchmark_configs"): category in the listed order, unlisted categories
alphabetically after them, none or "Other" last; then subcategory; the main benchmarks first; then
the configuration keys (single-core first, LLM model, tokens, algorithm, size, pgbench's
concurrency) and the database engine version of the score's environment.
"""

import json
import random
from typing import Any

from tests.catalog.upstream import OBSERVED, UpstreamCatalog

# The newest API's category order, as NEWEST-API.md lists it (written out here, not imported: the
# test checks the code against the description).
LISTED = [
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
]
UNLISTED = ["Zebra", "Alpaca", "OpenSSL"]


def benchmark(catalog: UpstreamCatalog, benchmark_id: str, category: str | None, subcategory: str | None = None):
    catalog.insert(
        "benchmark",
        benchmark_id=benchmark_id,
        name=benchmark_id,
        framework=benchmark_id.split(":")[0],
        category=category,
        subcategory=subcategory,
        config_fields=json.dumps({}),
        environment_fields=json.dumps({}),
        higher_is_better=1,
        status="ACTIVE",
        observed_at=OBSERVED,
    )


def score(
    catalog: UpstreamCatalog,
    benchmark_id: str,
    config: dict[str, Any] | None = None,
    *,
    resource_type: str = "SERVER",
    resource_id: str = "a",
    environment: dict[str, Any] | None = None,
) -> None:
    catalog.insert(
        "benchmark_score",
        vendor_id="v",
        benchmark_id=benchmark_id,
        resource_type=resource_type,
        resource_id=resource_id,
        config=json.dumps(config or {}),
        environment=json.dumps(environment) if environment is not None else None,
        score=1.0,
        status="ACTIVE",
        observed_at=OBSERVED,
    )


def new_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "a")
    return catalog


def get_json(api, path: str) -> list[dict[str, Any]]:
    response = api.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def test_configs_rank_listed_categories_in_order_then_unlisted_alphabetically_then_none_and_other(sync_upstream, api):
    catalog = new_catalog()
    categories: list[str | None] = [*LISTED, *UNLISTED, None, "Other"]
    # One benchmark per category, defined and scored in a shuffled order (fixed seed: reproducible).
    shuffled = list(enumerate(categories))
    random.Random(17).shuffle(shuffled)
    for number, category in shuffled:
        # stress-ng lists its summary scores only, so its benchmark is one of them.
        benchmark_id = "stress_ng:best1" if category == "stress-ng" else f"bench{number:02d}"
        benchmark(catalog, benchmark_id, category)
        score(catalog, benchmark_id)
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    ranked = [row["category"] for row in rows]
    assert ranked[: len(LISTED)] == LISTED
    assert ranked[len(LISTED) : len(LISTED) + len(UNLISTED)] == sorted(UNLISTED)
    assert set(ranked[len(LISTED) + len(UNLISTED) :]) == {None, "Other"}
    assert len(ranked) == len(categories)


def test_configs_have_the_subcategory_and_rank_by_it_within_a_category(sync_upstream, api):
    catalog = new_catalog()
    # Benchmark ids in the opposite order of their subcategories, so only the subcategory can order them.
    for benchmark_id, subcategory in [("gpu:a", "latency"), ("gpu:b", "bandwidth"), ("gpu:c", None)]:
        benchmark(catalog, benchmark_id, "GPU latency", subcategory)
        score(catalog, benchmark_id)
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    assert rows == [
        {"benchmark_id": "gpu:c", "config": "{}", "category": "GPU latency", "subcategory": None},
        {"benchmark_id": "gpu:b", "config": "{}", "category": "GPU latency", "subcategory": "bandwidth"},
        {"benchmark_id": "gpu:a", "config": "{}", "category": "GPU latency", "subcategory": "latency"},
    ]


def test_configs_put_the_main_benchmarks_first_but_not_the_llm_ones(sync_upstream, api):
    catalog = new_catalog()
    for benchmark_id, category in [
        ("passmark:cpu_compression_test", "Passmark"),
        ("passmark:memory_mark", "Passmark"),
        ("passmark:cpu_mark", "Passmark"),
        ("llm_speed:text_generation", "LLM inference speed"),
        ("llm_speed:aaa", "LLM inference speed"),
    ]:
        benchmark(catalog, benchmark_id, category)
        score(catalog, benchmark_id)
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    assert [row["benchmark_id"] for row in rows] == [
        "passmark:cpu_mark",
        "passmark:memory_mark",
        "passmark:cpu_compression_test",
        # No longer main benchmarks in the newest API: by id.
        "llm_speed:aaa",
        "llm_speed:text_generation",
    ]


def test_configs_list_database_benchmarks_and_order_pgbench_by_concurrency(sync_upstream, api):
    catalog = new_catalog()
    benchmark(catalog, "pgbench:tps", "Database")
    benchmark(catalog, "geekbench:score", "Geekbench")
    # Concurrency 16 scored first and 100 < 16 < 2 as text: only the number orders them.
    for concurrency in (16, 2, 100):
        score(catalog, "pgbench:tps", {"concurrency": concurrency}, resource_type="DATABASE", resource_id="db.x")
    score(catalog, "geekbench:score", {"cores": "multi"})
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    assert [(row["benchmark_id"], json.loads(row["config"])) for row in rows] == [
        ("geekbench:score", {"cores": "multi"}),
        ("pgbench:tps", {"concurrency": 2}),
        ("pgbench:tps", {"concurrency": 16}),
        ("pgbench:tps", {"concurrency": 100}),
    ]


def test_server_benchmarks_are_the_servers_scores_only_ordered_by_the_engine_version_last(sync_upstream, api):
    catalog = new_catalog()
    benchmark(catalog, "pgbench:tps", "Database")
    # The same configuration keys; the text of the configuration ("a" < "b" < "c") says the opposite
    # of the engine versions (16.4 > 9.6 > 9.5), which decide.
    for run, version in [("a", "16.4"), ("b", "9.6"), ("c", "9.5")]:
        score(catalog, "pgbench:tps", {"concurrency": 4, "run": run}, environment={"database_engine_version": version})
    # A database's score with the server's id: never one of the server's benchmarks.
    score(catalog, "pgbench:tps", {"concurrency": 1}, resource_type="DATABASE", resource_id="a")
    sync_upstream(catalog)

    rows = get_json(api, "/server/v/a/benchmarks")

    assert [(row["resource_type"], row["environment"]["database_engine_version"]) for row in rows] == [
        ("server", "9.5"),
        ("server", "9.6"),
        ("server", "16.4"),
    ]
