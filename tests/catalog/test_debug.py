"""Administrative reads: GET /debug (benchmark coverage) and the `vendor` and `only_active` parameters of GET /stats."""

import json

import pytest

from tests.catalog.upstream import OBSERVED, UpstreamCatalog


@pytest.fixture
def covered(sync_upstream):
    catalog = UpstreamCatalog()
    catalog.vendor("v", regions=2)
    catalog.vendor("w")
    for benchmark in ("geekbench:score", "geekbench:hdr", "stress_ng:bestn", "bogomips", "passmark:cpu_mark"):
        catalog.benchmark(benchmark)
    catalog.server("v", "scored", cpu_flags=json.dumps(["avx2"]))
    catalog.server("v", "unscored")
    catalog.server("v", "unpriced")
    catalog.server("v", "retired", status="INACTIVE")
    catalog.server("w", "free")
    for server in ("scored", "unscored", "retired"):
        catalog.price("v", server, price=0.1)
    catalog.price("v", "unpriced", price=0.1, status="INACTIVE")
    catalog.price("w", "free", price=0.0)
    catalog.score("v", "scored", "geekbench:hdr", 1.0, {"cores": "single"})
    catalog.score("v", "scored", "stress_ng:bestn", 1.0)
    catalog.score("v", "retired", "bogomips", 1.0)
    catalog.score("v", "unpriced", "stress_ng:bestn", 1.0)
    catalog.insert(
        "benchmark_score",
        vendor_id="v",
        benchmark_id="passmark:cpu_mark",
        resource_type="SERVER",
        resource_id="unscored",
        config="{}",
        score=1.0,
        status="INACTIVE",
        observed_at=OBSERVED,
    )
    return sync_upstream(catalog)


def debug(api):
    response = api.get("/debug")
    assert response.status_code == 200, response.content
    return response.json()


def test_debug_reports_coverage_and_nothing_else(covered, api):
    body = debug(api)

    assert set(body) == {"vendors", "servers", "benchmark_families", "databases"}


def test_benchmark_families_are_the_ids_up_to_the_colon_with_active_scores(covered, api):
    # passmark has an inactive score only; geekbench:score none at all.
    assert debug(api)["benchmark_families"] == ["bogomips", "geekbench", "stress_ng"]


def test_each_server_says_what_it_has(covered, api):
    servers = {(row["vendor_id"], row["server_id"]): row for row in debug(api)["servers"]}

    assert list(servers) == sorted(servers)
    assert servers[("v", "scored")] == {
        "vendor_id": "v",
        "server_id": "scored",
        "api_reference": "scored",
        "status": "active",
        "has_hw_info": True,
        "has_price": True,
        "has_benchmarks": True,
        "benchmarks": {"bogomips": False, "geekbench": True, "stress_ng": True},
    }
    assert servers[("v", "unscored")]["has_benchmarks"] is False
    assert servers[("v", "unscored")]["has_hw_info"] is False
    assert servers[("v", "unpriced")]["has_price"] is False
    assert servers[("w", "free")]["has_price"] is False  # a zero price is no price, as upstream counts


def test_vendors_count_active_priced_servers_evaluated_or_missing(covered, api):
    vendors = debug(api)["vendors"]

    assert vendors == [
        {"vendor_id": "v", "all": 4, "active": 2, "evaluated": 1, "missing": 1, "inactive": 2},
        {"vendor_id": "w", "all": 1, "active": 0, "evaluated": 0, "missing": 0, "inactive": 1},
    ]


def test_debug_takes_no_parameters(covered, http):
    assert http.get("/debug", {"verbose": "1"}).status_code == 400


@pytest.mark.parametrize("servers", [3, 60])
def test_debug_queries_are_pinned_whatever_the_catalog_size(sync_upstream, api, django_assert_num_queries, servers):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("geekbench:score")
    catalog.benchmark("bogomips")
    for number in range(servers):
        catalog.server("v", f"s{number}")
        catalog.price("v", f"s{number}", price=0.1)
        catalog.score("v", f"s{number}", "geekbench:score", 1.0, {"cores": number})
    sync_upstream(catalog)
    api.get("/table/server/meta")  # the catalog version is read once per process and sync

    # The first request after a sync: the families, who has a score of each, the databases, the servers.
    with django_assert_num_queries(4):
        assert len(debug(api)["servers"]) == servers
    # Then the coverage is known until the next sync: the servers only.
    with django_assert_num_queries(1):
        assert len(debug(api)["servers"]) == servers


def test_debug_reports_the_new_catalog_after_a_sync(covered, api, sync_upstream):
    assert debug(api)["benchmark_families"] == ["bogomips", "geekbench", "stress_ng"]
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("openssl")
    catalog.server("v", "one")
    catalog.score("v", "one", "openssl", 1.0)
    sync_upstream(catalog)

    body = debug(api)

    assert body["benchmark_families"] == ["openssl"]
    assert body["servers"][0]["benchmarks"] == {"openssl": True}


# --- /stats -----------------------------------------------------------------------------------


def stats(api, **params):
    response = api.get("/stats", params)
    assert response.status_code == 200, response.content
    return response.json()


COUNTED = (
    "vendors",
    "regions",
    "zones",
    "servers",
    "active_servers",
    "server_prices",
    "benchmarks",
    "benchmark_scores",
)


def test_stats_count_everything_by_default(covered, api):
    body = stats(api)

    assert {key: body[key] for key in COUNTED} == {
        "vendors": 2,
        "regions": 3,
        "zones": 3,
        "servers": 5,
        "active_servers": 4,
        "server_prices": 5,
        "benchmarks": 5,
        "benchmark_scores": 5,
    }


def test_vendor_counts_the_rows_of_those_vendors(covered, api):
    body = stats(api, vendor="w")

    assert {key: body[key] for key in COUNTED} == {
        "vendors": 1,
        "regions": 1,
        "zones": 1,
        "servers": 1,
        "active_servers": 1,
        "server_prices": 1,
        "benchmarks": 5,  # benchmarks belong to no vendor
        "benchmark_scores": 0,
    }
    assert stats(api, vendor=["v", "w"])["servers"] == 5


def test_only_active_counts_the_active_rows(covered, api):
    body = stats(api, only_active="true")

    assert (body["servers"], body["active_servers"], body["server_prices"], body["benchmark_scores"]) == (4, 4, 4, 4)
    assert stats(api, only_active="false")["servers"] == 5


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"vendor": "nowhere"}, "vendor"),
        ({"only_active": "maybe"}, "only_active"),
        ({"only_active": ""}, "only_active"),
    ],
)
def test_a_bad_stats_parameter_is_a_400_naming_it(covered, http, params, bad):
    response = http.get("/stats", params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [bad]


@pytest.mark.parametrize(("params", "cold", "warm"), [({}, 10, 1), ({"vendor": "v", "only_active": "true"}, 11, 2)])
def test_stats_queries_are_pinned(sync_upstream, api, django_assert_num_queries, params, cold, warm):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", f"only-in-this-test-{cold}")  # a catalog of its own: a version of its own
    sync_upstream(catalog)
    api.get("/table/server/meta")  # the catalog version is read once per process and sync

    # Unfiltered counts are the ones the last sync recorded; the others are sums of the rows per
    # vendor and status, counted (one query a table) by the first request after a sync.
    with django_assert_num_queries(cold):  # the last sync, [the vendor ids,] the counts
        assert stats(api, **params)["servers"]

    with django_assert_num_queries(warm):  # the last sync, [the vendor ids]
        assert stats(api, **params)["servers"]


def test_stats_count_the_new_catalog_after_a_sync(covered, api, sync_upstream):
    assert stats(api, vendor="w")["servers"] == 1
    catalog = UpstreamCatalog()
    catalog.vendor("w")
    catalog.server("w", "one")
    catalog.server("w", "two")
    sync_upstream(catalog)

    assert stats(api, vendor="w")["servers"] == 2


def test_the_openapi_document_describes_the_stats_parameters(db, api):
    schema = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()

    parameters = {parameter["name"]: parameter for parameter in schema["paths"]["/stats"]["get"]["parameters"]}

    assert set(parameters) == {"vendor", "only_active"}
    assert parameters["vendor"]["schema"]["type"] == "array"
    assert parameters["only_active"]["schema"]["type"] == "boolean"
    assert all(parameter.get("description") for parameter in parameters.values())
