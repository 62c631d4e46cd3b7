"""Queries per request are pinned, and do not grow with the number of rows (no N+1)."""

import pytest

from apps.catalog.version import catalog_version
from tests.catalog.upstream import UpstreamCatalog


def catalog_of_size(vendors: int, servers_per_vendor: int) -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.benchmark("stress_ng:bestn")
    for v in range(vendors):
        vendor = f"vendor{v}"
        catalog.vendor(vendor, regions=2)
        for s in range(servers_per_vendor):
            server = f"server{s}"
            catalog.server(vendor, server, vcpus=1 + s % 8, cpu_flags='["avx2", "sse4_2"]')
            catalog.price(vendor, server, price=0.01 * (s + 1))
            catalog.price(vendor, server, price=0.005 * (s + 1), allocation="SPOT", region_id="r2")
            catalog.score(vendor, server, "stress_ng:bestn", 100.0 * (s + 1))
    return catalog


SIZES = {"small": (2, 2), "large": (6, 40)}
# (path, parameters, queries): one query for the rows (vendor joined in), one per extra need.
REQUESTS = [
    ("/servers", {}, 1),
    ("/servers", {"limit": -1}, 1),
    ("/servers", {"limit": -1, "currency": "EUR", "order_by": "score_per_price"}, 1),
    ("/servers", {"add_total_count_header": "true"}, 2),  # + the count
    ("/servers", {"vendor": ["vendor0", "vendor1"]}, 1),  # ids validated from memory (filters/known.py)
    ("/servers", {"vendor": "vendor0", "limit": -1, "add_total_count_header": "true"}, 2),
    ("/servers", {"compliance_framework": "hipaa"}, 1),
    ("/servers", {"countries": "US", "limit": -1}, 1),  # places too (filters/places.py)
    ("/servers", {"vendor_regions": "vendor0~r1", "regions": "r1"}, 1),
    ("/servers", {"benchmark_id": "stress_ng:bestn", "order_by": "selected_benchmark_score"}, 1),
    # The newest API's filters: the CPU flags validated from memory (read once per catalog version).
    ("/servers", {"cpu_flags": ["avx2", "sse4_2"], "price_max": 1, "memory_per_vcpu_min": 0.5, "gpu_max": 0}, 1),
    ("/servers", {"benchmark_id": "stress_ng:bestn", "benchmark_score_per_vcpu_min": 1, "only_active": "true"}, 1),
    ("/regions", {}, 1),
    ("/regions", {"vendor": ["vendor0", "vendor1"]}, 1),
    ("/server/vendor0/server1", {}, 1),
    ("/v2/server/vendor0/server1", {"currency": "EUR"}, 1),
    ("/table/server", {}, 1),
    ("/table/region", {}, 1),
    ("/table/vendor", {}, 1),
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("path", "params", "queries"), REQUESTS, ids=[f"{path}{sorted(params)}" for path, params, _ in REQUESTS]
)
def test_queries_per_request_are_pinned_whatever_the_catalog_size(
    sync_upstream, api, django_assert_num_queries, size, path, params, queries
):
    catalog = catalog_of_size(*SIZES[size])
    catalog.compliance_framework("hipaa", vendors=("vendor0",))
    sync_upstream(catalog)
    catalog_version()  # read at most once a second per process, not per request
    api.get(path, params)  # the first request of a catalog reads the ids it validates against

    with django_assert_num_queries(queries):
        response = api.get(path, params)

    assert response.status_code == 200, response.content
    assert response.json()


def test_a_large_page_is_still_one_query(sync_upstream, api, django_assert_num_queries):
    catalog = catalog_of_size(6, 40)
    sync_upstream(catalog)
    catalog_version()

    with django_assert_num_queries(1):
        rows = api.get("/servers", {"limit": -1}).json()

    assert len(rows) == catalog.count("server")
    assert all(row["vendor"]["vendor_id"] == row["vendor_id"] for row in rows)
