"""GET /server/{vendor}/{server}/benchmarks and /server/{vendor}/{server}/descriptions."""

import json

import pytest

from apps.catalog.models import BenchmarkScore, ServerDescription
from apps.catalog.sql import table_columns
from tests.catalog.upstream import OBSERVED, UpstreamCatalog

BENCHMARKS = [
    "bogomips",
    "geekbench:score",
    "geekbench:hdr",
    "llm_speed:prompt_processing",
    "openssl",
    "passmark:cpu_mark",
    "stress_ng:bestn",
]


def describe(catalog: UpstreamCatalog, vendor_id: str, server_id: str, **fields) -> None:
    values = {
        "vendor_id": vendor_id,
        "server_id": server_id,
        "page": json.dumps(["First paragraph.", "Second paragraph."]),
        "description": f"{server_id} is a server.",
        "og_description": "og",
        "meta_description": "meta",
        "tagline": "fast",
        "bullet_points": json.dumps(["2 vCPUs"]),
        "categories": json.dumps(["General Purpose"]),
        "status": "ACTIVE",
        "observed_at": OBSERVED,
    }
    catalog.insert("server_description", **{**values, **fields})


@pytest.fixture
def catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.vendor("w")
    for benchmark in BENCHMARKS:
        catalog.benchmark(benchmark)
    catalog.server("v", "small", api_reference="small-ref")
    catalog.server("v", "bare")
    catalog.server("w", "small")
    describe(catalog, "v", "small")
    return catalog


def get_json(api, path):
    response = api.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def ids_and_configs(rows):
    return [(row["benchmark_id"], row["config"]) for row in rows]


def test_benchmark_rows_are_the_servers_active_scores_with_upstreams_columns(sync_upstream, catalog, api):
    catalog.score("v", "small", "bogomips", 5000.0)
    catalog.score("w", "small", "bogomips", 1.0)  # same server id, other vendor
    catalog.insert(
        "benchmark_score",
        vendor_id="v",
        benchmark_id="openssl",
        resource_type="SERVER",
        resource_id="small",
        config=json.dumps({"algo": "md5"}),
        score=1.0,
        status="INACTIVE",
        observed_at=OBSERVED,
    )
    sync_upstream(catalog)

    [row] = get_json(api, "/server/v/small/benchmarks")

    assert list(row) == table_columns(BenchmarkScore)
    assert (row["vendor_id"], row["resource_id"], row["benchmark_id"], row["score"]) == (
        "v",
        "small",
        "bogomips",
        5000.0,
    )
    assert row["status"] == "active"


def test_benchmarks_come_in_upstreams_display_order(sync_upstream, catalog, api):
    # Scored in an order that is none of the display order's rules.
    for benchmark, config in [
        ("stress_ng:bestn", {}),
        ("openssl", {"algo": "sha256", "block_size": 1024}),
        ("openssl", {"algo": "md5", "block_size": 16384}),
        ("openssl", {"algo": "md5", "block_size": 16}),
        ("geekbench:hdr", {"cores": "multi"}),
        ("geekbench:hdr", {"cores": "single"}),
        ("llm_speed:prompt_processing", {"model": "gemma-2b.Q4_K_M.gguf", "tokens": 16}),
        ("llm_speed:prompt_processing", {"model": "SmolLM-135M.Q4_K_M.gguf", "tokens": 512}),
        ("llm_speed:prompt_processing", {"model": "SmolLM-135M.Q4_K_M.gguf", "tokens": 16}),
        ("passmark:cpu_mark", {}),
        ("bogomips", {}),
        ("geekbench:score", {"cores": "multi"}),
        ("geekbench:score", {"cores": "single"}),
    ]:
        catalog.score("v", "small", benchmark, 1.0, config)
    sync_upstream(catalog)

    rows = get_json(api, "/server/v/small/benchmarks")

    assert ids_and_configs(rows) == [
        # The main benchmarks first, single-core before multi-core.
        ("geekbench:score", {"cores": "single"}),
        ("geekbench:score", {"cores": "multi"}),
        ("passmark:cpu_mark", {}),
        # The rest: single-core first, then the LLM models from small to large, by tokens, then by
        # algorithm and size, ties by benchmark id (the newest API has no LLM main benchmarks).
        ("geekbench:hdr", {"cores": "single"}),
        ("llm_speed:prompt_processing", {"model": "SmolLM-135M.Q4_K_M.gguf", "tokens": 16}),
        ("llm_speed:prompt_processing", {"model": "SmolLM-135M.Q4_K_M.gguf", "tokens": 512}),
        ("llm_speed:prompt_processing", {"model": "gemma-2b.Q4_K_M.gguf", "tokens": 16}),
        ("bogomips", {}),
        ("geekbench:hdr", {"cores": "multi"}),
        ("stress_ng:bestn", {}),
        ("openssl", {"algo": "md5", "block_size": 16}),
        ("openssl", {"algo": "md5", "block_size": 16384}),
        ("openssl", {"algo": "sha256", "block_size": 1024}),
    ]


def test_a_server_without_scores_has_no_benchmarks(sync_upstream, catalog, api):
    sync_upstream(catalog)

    assert get_json(api, "/server/v/bare/benchmarks") == []


def test_benchmarks_find_the_server_by_its_api_reference(sync_upstream, catalog, api):
    catalog.score("v", "small", "bogomips", 5000.0)
    sync_upstream(catalog)

    assert get_json(api, "/server/v/small-ref/benchmarks") == get_json(api, "/server/v/small/benchmarks")


def test_descriptions_are_the_servers_generated_texts(sync_upstream, catalog, api):
    sync_upstream(catalog)

    row = get_json(api, "/server/v/small/descriptions")

    assert list(row) == table_columns(ServerDescription)
    assert (row["vendor_id"], row["server_id"], row["tagline"]) == ("v", "small", "fast")
    assert row["page"] == ["First paragraph.", "Second paragraph."]
    assert row["categories"] == ["General Purpose"]


def test_descriptions_find_the_server_by_its_api_reference(sync_upstream, catalog, api):
    sync_upstream(catalog)

    assert get_json(api, "/server/v/small-ref/descriptions")["server_id"] == "small"


def test_a_server_without_descriptions_is_a_404_saying_so(sync_upstream, catalog, http):
    sync_upstream(catalog)

    response = http.get("/server/v/bare/descriptions")

    assert response.status_code == 404
    assert "no descriptions" in response.json()["detail"]


@pytest.mark.parametrize("resource", ["benchmarks", "descriptions"])
@pytest.mark.parametrize("path", ["/server/v/nothing", "/server/nowhere/small"])
def test_an_unknown_server_is_a_json_404(sync_upstream, catalog, http, resource, path):
    sync_upstream(catalog)

    response = http.get(f"{path}/{resource}")

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert "not found" in body["detail"]


@pytest.mark.parametrize("resource", ["benchmarks", "descriptions"])
def test_an_unknown_parameter_is_a_400(sync_upstream, catalog, http, resource):
    sync_upstream(catalog)

    response = http.get(f"/server/v/small/{resource}", {"currency": "EUR"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["currency"]


@pytest.mark.parametrize("resource", ["benchmarks", "descriptions"])
def test_queries_are_pinned_whatever_the_number_of_scores(
    sync_upstream, catalog, api, django_assert_num_queries, resource
):
    for number in range(40):
        catalog.score("v", "small", "openssl", float(number), {"algo": "md5", "block_size": number})
    sync_upstream(catalog)
    api.get("/server/v/small/benchmarks")  # the catalog version is read once per process and sync

    with django_assert_num_queries(2):  # the server's id, its rows
        response = api.get(f"/server/v/small/{resource}")

    assert response.status_code == 200
    assert response.json()
