"""GET /benchmark_configs and GET /benchmark_score_stats."""

import json
from typing import Any

import pytest

from tests.catalog.upstream import OBSERVED, UpstreamCatalog


def benchmark(catalog: UpstreamCatalog, benchmark_id: str, *, category: str | None = "Other", **fields: Any) -> None:
    values = {
        "benchmark_id": benchmark_id,
        "name": f"{benchmark_id} name",
        "framework": benchmark_id.split(":")[0],
        "category": category,
        "config_fields": json.dumps({}),
        "environment_fields": json.dumps({}),
        "higher_is_better": 1,
        "status": "ACTIVE",
        "observed_at": OBSERVED,
    }
    values.update(fields)
    catalog.insert("benchmark", **values)


def score(catalog, server: str, benchmark_id: str, value: float, config: dict | None = None, status: str = "ACTIVE"):
    catalog.insert(
        "benchmark_score",
        vendor_id="v",
        benchmark_id=benchmark_id,
        resource_type="SERVER",
        resource_id=server,
        config=json.dumps(config or {}),
        score=value,
        status=status,
        observed_at=OBSERVED,
    )


SERVERS = "abcdefg"


def new_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for server in SERVERS:
        catalog.server("v", server)
    return catalog


def get_json(api, path: str):
    response = api.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def stats_of(api, benchmark_id: str) -> dict[str, Any]:
    [row] = [row for row in get_json(api, "/benchmark_score_stats") if row["benchmark_id"] == benchmark_id]
    return row


# --- /benchmark_configs -----------------------------------------------------------------------


def test_configs_are_each_configuration_with_active_scores_once(sync_upstream, api):
    catalog = new_catalog()
    benchmark(catalog, "openssl", category="OpenSSL")
    benchmark(catalog, "redis:rps", category="Redis")
    for server in ("a", "b"):
        score(catalog, server, "openssl", 1.0, {"algo": "md5", "block_size": 16})
    score(catalog, "a", "openssl", 1.0, {"algo": "sha256", "block_size": 16}, status="INACTIVE")
    benchmark(catalog, "unscored")
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    assert rows == [
        {
            "benchmark_id": "openssl",
            "config": '{"algo": "md5", "block_size": 16}',
            "category": "OpenSSL",
            "subcategory": None,
        }
    ]


def test_configs_leave_out_stress_ng_but_its_summaries(sync_upstream, api):
    catalog = new_catalog()
    for benchmark_id in ("stress_ng:best1", "stress_ng:bestn", "stress_ng:div16"):
        benchmark(catalog, benchmark_id, category="stress-ng")
        score(catalog, "a", benchmark_id, 1.0)
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    assert [row["benchmark_id"] for row in rows] == ["stress_ng:best1", "stress_ng:bestn"]


def test_configs_come_in_upstreams_display_order(sync_upstream, api):
    catalog = new_catalog()
    benchmark(catalog, "redis:rps", category="Redis")
    benchmark(catalog, "geekbench:score", category="Geekbench")
    benchmark(catalog, "geekbench:clang", category="Geekbench")
    benchmark(catalog, "stress_ng:bestn", category="stress-ng")
    benchmark(catalog, "misc", category=None)
    # Scored in no particular order; the pipelines in the order they were first scored: 8, 1.
    score(catalog, "a", "redis:rps", 1.0, {"operation": "GET", "pipeline": 8})
    score(catalog, "a", "redis:rps", 1.0, {"operation": "GET", "pipeline": 1})
    score(catalog, "a", "misc", 1.0)
    score(catalog, "a", "geekbench:clang", 1.0, {"cores": "multi"})
    score(catalog, "a", "geekbench:clang", 1.0, {"cores": "single"})
    score(catalog, "a", "geekbench:score", 1.0, {"cores": "multi"})
    score(catalog, "a", "stress_ng:bestn", 1.0)
    sync_upstream(catalog)

    rows = get_json(api, "/benchmark_configs")

    assert [(row["benchmark_id"], json.loads(row["config"])) for row in rows] == [
        ("stress_ng:bestn", {}),  # category order: stress-ng, Geekbench, ..., then unlisted ones (Redis)
        ("geekbench:score", {"cores": "multi"}),  # a headline benchmark
        ("geekbench:clang", {"cores": "single"}),  # single-core first
        ("geekbench:clang", {"cores": "multi"}),
        ("redis:rps", {"operation": "GET", "pipeline": 8}),
        ("redis:rps", {"operation": "GET", "pipeline": 1}),
        ("misc", {}),  # no category: Other
    ]


# --- /benchmark_score_stats -------------------------------------------------------------------


@pytest.fixture
def scored(sync_upstream):
    catalog = new_catalog()
    benchmark(
        catalog,
        "openssl",
        category="OpenSSL",
        description="Crypto speed.",
        measurement="throughput",
        unit="bytes/s",
        config_fields=json.dumps({"algo": "Algorithm.", "block_size": "Block size.", "unused": "Never given."}),
    )
    benchmark(catalog, "flat")
    benchmark(catalog, "zero")
    benchmark(catalog, "unscored", status="INACTIVE")
    # 0, 5, ..., 100 over seven servers in three configurations; an inactive score is left out.
    configs = [
        {"algo": "aes", "block_size": 16},
        {"algo": "md5", "block_size": 16},
        {"algo": "md5", "block_size": 1024},
    ]
    for number in range(21):
        score(catalog, SERVERS[number // 3], "openssl", 5.0 * number, configs[number % 3])
    score(catalog, "a", "openssl", 1000.0, {"algo": "sha", "block_size": 16}, status="INACTIVE")
    for server in ("a", "b"):
        score(catalog, server, "flat", 40.0)
    score(catalog, "a", "zero", 0.0)
    return sync_upstream(catalog)


def test_stats_describe_each_benchmark(scored, api):
    row = stats_of(api, "openssl")

    assert {key: row[key] for key in ("name", "description", "framework", "measurement", "unit")} == {
        "name": "openssl name",
        "description": "Crypto speed.",
        "framework": "openssl",
        "measurement": "throughput",
        "unit": "bytes/s",
    }
    assert (row["higher_is_better"], row["status"]) == (True, "ACTIVE")


def test_stats_count_active_scores_and_the_servers_scored(scored, api):
    row = stats_of(api, "openssl")

    assert (row["count"], row["count_servers"]) == (21, 7)


def test_the_histogram_has_twenty_equal_bins_from_the_lowest_to_the_highest_score(scored, api):
    histogram = stats_of(api, "openssl")["histogram"]

    assert histogram["breakpoints"] == [5.0 * number for number in range(21)]
    # Each bin holds its lower edge; the last one the highest score too.
    assert histogram["counts"] == [1] * 19 + [2]


def test_equal_scores_are_in_the_middle_of_a_range_widened_by_five_percent(scored, api):
    histogram = stats_of(api, "flat")["histogram"]

    assert histogram["breakpoints"][0] == pytest.approx(38.0)
    assert histogram["breakpoints"][-1] == pytest.approx(42.0)
    assert sum(histogram["counts"]) == 2
    [(position, count)] = [(i, n) for i, n in enumerate(histogram["counts"]) if n]
    assert histogram["breakpoints"][position] <= 40.0 < histogram["breakpoints"][position + 1]
    assert count == 2


def test_scores_all_zero_are_in_a_range_of_minus_one_to_one(scored, api):
    histogram = stats_of(api, "zero")["histogram"]

    assert (histogram["breakpoints"][0], histogram["breakpoints"][-1]) == (-1.0, pytest.approx(1.0))
    assert sum(histogram["counts"]) == 1


def test_a_benchmark_without_active_scores_has_no_histogram(scored, api):
    row = stats_of(api, "unscored")

    assert (row["count"], row["count_servers"], row["histogram"], row["status"]) == (0, 0, None, "INACTIVE")


def test_configs_list_each_fields_values_numbers_first(scored, api):
    configs = stats_of(api, "openssl")["configs"]

    assert configs == {
        "algo": {"description": "Algorithm.", "examples": ["aes", "md5"]},
        "block_size": {"description": "Block size.", "examples": [16, 1024]},
        "unused": {"description": "Never given.", "examples": []},
    }


def test_stats_are_in_benchmark_id_order(scored, api):
    ids = [row["benchmark_id"] for row in get_json(api, "/benchmark_score_stats")]

    assert ids == sorted(ids) == ["flat", "openssl", "unscored", "zero"]


@pytest.mark.parametrize("path", ["/benchmark_configs", "/benchmark_score_stats"])
def test_an_unknown_parameter_is_a_400(scored, http, path):
    response = http.get(path, {"benchmark_id": "openssl"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["benchmark_id"]


@pytest.mark.parametrize(("path", "cold", "warm"), [("/benchmark_configs", 2, 0), ("/benchmark_score_stats", 4, 1)])
@pytest.mark.parametrize("scores", [3, 300])
def test_queries_are_pinned_whatever_the_number_of_scores(
    sync_upstream, api, django_assert_num_queries, path, cold, warm, scores
):
    catalog = new_catalog()
    benchmark(catalog, "openssl", config_fields=json.dumps({"block_size": "Block size."}))
    benchmark(catalog, "redis:rps")
    for number in range(scores):
        score(catalog, SERVERS[number % 7], "openssl", float(number), {"block_size": number})
        score(catalog, SERVERS[number % 7], "redis:rps", float(number), {"pipeline": number})
    sync_upstream(catalog)
    api.get("/table/server/meta")  # the catalog version is read once per process and sync

    # configs, the first time after a sync: the categories, the configurations (derived once per catalog
    # version). stats, the first time after a sync: the histograms, the servers, the configurations, the
    # benchmarks (derived once per catalog version too).
    with django_assert_num_queries(cold):
        assert api.get(path).json()
    with django_assert_num_queries(warm):
        response = api.get(path)

    assert response.status_code == 200
    assert response.json()


def test_stats_follow_a_new_sync(scored, sync_upstream, api):
    assert stats_of(api, "openssl")["count"] == 21
    catalog = new_catalog()
    benchmark(catalog, "openssl")
    score(catalog, "a", "openssl", 1.0)
    sync_upstream(catalog)

    row = stats_of(api, "openssl")

    assert (row["count"], row["count_servers"], row["histogram"]["counts"][10]) == (1, 1, 1)
