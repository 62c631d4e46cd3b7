"""GET /servers: the parameters and defaults of the newest Spare Cores API (issue 17), /server_prices' and similar
servers' statuses. Each test builds the servers it needs and derives the expected rows from them."""

import json
from typing import Any

import pytest

from apps.catalog.ai import filters_json_schema
from apps.catalog.filters.servers import NEEDS_BENCHMARK, ServerFilterSet
from apps.catalog.pricing import HOURS_PER_MONTH, exchange_rate
from tests.catalog.upstream import UpstreamCatalog, servers_catalog

MIB_PER_GB = 1024
SCORE = "stress_ng:bestn"
NEEDS_BENCHMARK_ID = (
    "benchmark_id is required when filtering by benchmark_score, benchmark_score_per_price or benchmark_score_per_vcpu"
)


def ids(rows: list[dict]) -> set[str]:
    return {row["server_id"] for row in rows}


def matching(columns: dict[str, Any], keep) -> set[str]:
    return {server for server, value in columns.items() if keep(value)}


# --- Statuses: only_orderable (default true) and only_active (default not given) ---------------------


def _catalog_of_every_status() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for server, status in STATUSES.items():
        catalog.server("v", server, status=status)
        catalog.price("v", server, price=0.1)
    catalog.server("v", "active-unpriced")
    return catalog


STATUSES = {
    "active": "ACTIVE",
    "planned": "PLANNED_FOR_RETIREMENT",
    "inactive": "INACTIVE",
    "retired": "RETIRED",
}


def test_the_sync_keeps_a_servers_retirement_status_as_the_api_spells_it(sync_upstream, get_servers):
    sync_upstream(_catalog_of_every_status())

    rows = get_servers(only_orderable="false", order_by="server_id")

    assert {row["server_id"]: row["status"] for row in rows} == {
        "active": "active",
        "planned": "planned_for_retirement",
        "inactive": "inactive",
        "retired": "retired",
        "active-unpriced": "active",
    }


def test_by_default_the_orderable_servers_with_a_price_are_listed(sync_upstream, get_servers):
    sync_upstream(_catalog_of_every_status())

    orderable = {"active", "planned"}
    assert ids(get_servers()) == orderable
    assert ids(get_servers(order_by="server_id")) == orderable
    assert ids(get_servers(only_orderable="true", only_active="false")) == orderable


def test_only_active_lists_the_active_servers_with_a_price_whatever_only_orderable_says(sync_upstream, get_servers):
    sync_upstream(_catalog_of_every_status())

    assert ids(get_servers(only_active="true")) == {"active"}
    assert ids(get_servers(only_active="true", only_orderable="false", order_by="server_id")) == {"active"}


def test_only_orderable_false_lists_servers_of_every_status(sync_upstream, get_servers):
    sync_upstream(_catalog_of_every_status())

    every = {*STATUSES, "active-unpriced"}
    assert ids(get_servers(only_orderable="false", order_by="server_id")) == every
    # Ordered by a price, the servers without one are left out (as before).
    assert ids(get_servers(only_orderable="false")) == set(STATUSES)


def test_the_default_listing_reads_the_orderable_servers_by_price_page_by_page(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    prices = {f"s{n}": round(0.01 * (10 - n), 2) for n in range(8)}
    for server, price in prices.items():
        status = {"s1": "PLANNED_FOR_RETIREMENT", "s2": "INACTIVE", "s3": "RETIRED"}.get(server, "ACTIVE")
        catalog.server("v", server, status=status)
        catalog.price("v", server, price=price)
    sync_upstream(catalog)
    orderable = sorted((price, server) for server, price in prices.items() if server not in ("s2", "s3"))

    for order_dir, ordered in (("asc", orderable), ("desc", orderable[::-1])):
        pages = [get_servers(limit=2, page=page, order_dir=order_dir) for page in (1, 2, 3)]
        assert [[row["server_id"] for row in page] for page in pages] == [
            [server for _, server in ordered[at : at + 2]] for at in (0, 2, 4)
        ]


def test_the_total_count_follows_the_statuses(sync_upstream, api):
    sync_upstream(_catalog_of_every_status())

    def total(**params: str) -> str:
        response = api.get("/servers", {"add_total_count_header": "true", **params})
        assert response.status_code == 200
        return response["X-Total-Count"]

    assert total() == "2"
    assert total(only_active="true") == "1"
    assert total(only_orderable="false", order_by="server_id") == str(len(STATUSES) + 1)


# --- CPU -------------------------------------------------------------------------------------------


def test_cpu_hyperthreading_compares_the_vcpus_with_the_cpu_cores(sync_upstream, get_servers):
    servers = {"ht": (4, 2), "no-ht": (2, 2), "ht-wide": (16, 8), "cores-unknown": (2, None)}
    sync_upstream(servers_catalog({s: {"vcpus": v, "cpu_cores": c} for s, (v, c) in servers.items()}))

    assert ids(get_servers(cpu_hyperthreading="true")) == {s for s, (v, c) in servers.items() if c and v > c}
    assert ids(get_servers(cpu_hyperthreading="false")) == {s for s, (v, c) in servers.items() if c and v == c}


def _flags_catalog() -> tuple[UpstreamCatalog, dict[str, list[str]]]:
    flags = {
        "avx512": ["sse4_2", "avx2", "avx512f"],
        "avx2": ["sse4_2", "avx2"],
        "old": ["sse4_2"],
        "none": [],
    }
    catalog = servers_catalog({server: {"cpu_flags": json.dumps(f)} for server, f in flags.items()})
    catalog.server("v", "gone", cpu_flags=json.dumps(["amx_tile", "avx2"]), status="INACTIVE")
    return catalog, flags


def test_cpu_flags_keep_the_servers_with_every_requested_flag(sync_upstream, get_servers):
    catalog, flags = _flags_catalog()
    sync_upstream(catalog)

    for asked in (["avx2"], ["sse4_2"], ["avx2", "avx512f"], ["sse4_2", "avx2", "avx512f"]):
        expected = matching(flags, lambda server_flags, asked=asked: set(asked) <= set(server_flags))
        assert ids(get_servers(cpu_flags=asked)) == expected, asked


def test_cpu_flags_are_the_active_servers_flags(sync_upstream, api):
    catalog, _ = _flags_catalog()
    sync_upstream(catalog)

    for unknown in ("amx_tile", "no-such-flag"):
        response = api.get("/servers", {"cpu_flags": ["avx2", unknown]})
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["cpu_flags"]
        assert unknown in response.json()["errors"]["cpu_flags"][0]


# --- Memory, storage, GPUs ---------------------------------------------------------------------------


def test_memory_max_keeps_servers_with_at_most_that_much_memory_and_zero_means_no_maximum(sync_upstream, get_servers):
    memory = {"half": 512, "two": 2048, "four": 4096, "big": 65536}
    sync_upstream(servers_catalog({server: {"memory_amount": mib} for server, mib in memory.items()}))

    assert ids(get_servers(memory_max=2)) == matching(memory, lambda mib: mib <= 2 * MIB_PER_GB)
    assert ids(get_servers(memory_max=3.5)) == matching(memory, lambda mib: mib <= 3.5 * MIB_PER_GB)
    assert ids(get_servers(memory_max=0)) == set(memory)


def test_memory_per_vcpu_bounds_the_gb_per_vcpu(sync_upstream, get_servers):
    shapes = {"lean": (4, 4096), "standard": (2, 8192), "fat": (2, 16384), "one-and-half": (2, 3072)}
    sync_upstream(servers_catalog({s: {"vcpus": v, "memory_amount": m} for s, (v, m) in shapes.items()}))
    per_vcpu = {server: mib / MIB_PER_GB / vcpus for server, (vcpus, mib) in shapes.items()}

    assert ids(get_servers(memory_per_vcpu_min=4)) == matching(per_vcpu, lambda gb: gb >= 4)
    assert ids(get_servers(memory_per_vcpu_max=1.5)) == matching(per_vcpu, lambda gb: gb <= 1.5)
    assert ids(get_servers(memory_per_vcpu_min=1.25, memory_per_vcpu_max=4)) == matching(
        per_vcpu, lambda gb: 1.25 <= gb <= 4
    )


def test_storage_count_min_counts_the_built_in_storages(sync_upstream, get_servers):
    disk = {"size": 100, "storage_type": "nvme ssd"}
    storages = {"diskless": [], "one": [disk], "two": [disk, disk], "four": [disk] * 4}
    sync_upstream(servers_catalog({server: {"storages": json.dumps(s)} for server, s in storages.items()}))

    for minimum in (0, 1, 2, 3):
        assert ids(get_servers(storage_count_min=minimum)) == matching(storages, lambda s, m=minimum: len(s) >= m)


def test_gpu_max_bounds_the_accelerators_and_zero_means_none(sync_upstream, get_servers):
    gpus = {"cpu-only": 0, "half": 0.5, "one": 1, "eight": 8}
    sync_upstream(servers_catalog({server: {"accelerator_count": count} for server, count in gpus.items()}))

    assert ids(get_servers(gpu_max=0)) == matching(gpus, lambda count: count == 0)
    assert ids(get_servers(gpu_max=1)) == matching(gpus, lambda count: count <= 1)
    assert ids(get_servers(gpu_min=0.5, gpu_max=1)) == matching(gpus, lambda count: 0.5 <= count <= 1)


@pytest.mark.parametrize(
    "name", ["memory_max", "memory_per_vcpu_min", "memory_per_vcpu_max", "storage_count_min", "gpu_max", "price_max"]
)
def test_a_negative_bound_is_a_400_naming_it(sync_upstream, api, name):
    sync_upstream(servers_catalog({"s": {}}))

    response = api.get("/servers", {name: "-1"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]


# --- Benchmarks --------------------------------------------------------------------------------------


def _scored_catalog() -> tuple[UpstreamCatalog, dict[str, tuple[int, float]]]:
    scored = {"small": (2, 3000.0), "medium": (4, 8000.0), "large": (8, 12000.0), "huge": (32, 40000.0)}
    catalog = servers_catalog({server: {"vcpus": vcpus} for server, (vcpus, _) in scored.items()})
    catalog.benchmark(SCORE)
    for server, (_, score) in scored.items():
        catalog.score("v", server, SCORE, score)
    catalog.server("v", "unscored", vcpus=2)
    catalog.price("v", "unscored", price=0.1)
    return catalog, scored


def test_benchmark_score_max_keeps_servers_scoring_at_most_that(sync_upstream, get_servers):
    catalog, scored = _scored_catalog()
    sync_upstream(catalog)

    for maximum in (3000, 9000, 50000):
        expected = {server for server, (_, score) in scored.items() if score <= maximum}
        assert ids(get_servers(benchmark_id=SCORE, benchmark_score_max=maximum)) == expected
    assert ids(get_servers(benchmark_id=SCORE, benchmark_score_min=5000, benchmark_score_max=20000)) == {
        server for server, (_, score) in scored.items() if 5000 <= score <= 20000
    }


def test_benchmark_score_per_vcpu_min_divides_the_score_by_the_vcpus(sync_upstream, get_servers):
    catalog, scored = _scored_catalog()
    sync_upstream(catalog)
    per_vcpu = {server: score / vcpus for server, (vcpus, score) in scored.items()}

    for minimum in (1250, 1500, 2000):
        expected = matching(per_vcpu, lambda value, m=minimum: value >= m)
        assert ids(get_servers(benchmark_id=SCORE, benchmark_score_per_vcpu_min=minimum)) == expected


@pytest.mark.parametrize("name", NEEDS_BENCHMARK)
def test_every_benchmark_filter_without_benchmark_id_is_the_newest_apis_400(sync_upstream, api, name):
    catalog, _ = _scored_catalog()
    sync_upstream(catalog)

    response = api.get("/servers", {name: "1"})

    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {name: [NEEDS_BENCHMARK_ID]}
    assert name in body["detail"]


def test_the_benchmark_filters_are_the_four_of_the_newest_api():
    assert set(NEEDS_BENCHMARK) == {
        "benchmark_score_min",
        "benchmark_score_max",
        "benchmark_score_per_price_min",
        "benchmark_score_per_vcpu_min",
    }


# --- price_max ---------------------------------------------------------------------------------------

HOURLY = {"cheap": 0.1, "mid": 0.2, "dear": 0.3}


def _priced_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for server, price in HOURLY.items():
        catalog.server("v", server)
        catalog.price("v", server, price=price)
    return catalog


def test_price_max_is_in_the_requested_currency(sync_upstream, get_servers):
    sync_upstream(_priced_catalog())
    eur_per_usd = exchange_rate("USD", "EUR")

    # 0.25 USD in euros: the servers up to 0.25 USD an hour.
    assert ids(get_servers(currency="EUR", price_max=0.25 * eur_per_usd)) == matching(HOURLY, lambda p: p <= 0.25)
    assert ids(get_servers(price_max=0.25)) == matching(HOURLY, lambda p: p <= 0.25)
    # The same number in a currency worth less per unit keeps fewer servers (its USD value is smaller).
    jpy_per_usd = exchange_rate("USD", "JPY")
    assert ids(get_servers(currency="JPY", price_max=0.15 * jpy_per_usd)) == matching(HOURLY, lambda p: p <= 0.15)


def test_price_max_with_monthly_is_a_monthly_price(sync_upstream, get_servers):
    sync_upstream(_priced_catalog())
    monthly = {server: price * HOURS_PER_MONTH for server, price in HOURLY.items()}

    rows = get_servers(best_price_allocation="MONTHLY", price_max=150)

    assert ids(rows) == matching(monthly, lambda p: p <= 150)
    assert all(row["price"] <= 150 for row in rows)


def test_price_max_includes_the_monthly_extras(sync_upstream, get_servers):
    catalog = _priced_catalog()
    catalog.traffic_price("v", price=0.5, direction="IN")
    sync_upstream(catalog)
    traffic = 100 * 0.5  # USD a month for 100 GB inbound

    monthly = {server: price * HOURS_PER_MONTH + traffic for server, price in HOURLY.items()}
    asked = {"monthly_inbound_traffic": 100, "best_price_allocation": "MONTHLY"}
    assert ids(get_servers(**asked, price_max=150)) == matching(monthly, lambda p: p <= 150)
    assert ids(get_servers(**asked, price_max=200)) == matching(monthly, lambda p: p <= 200)

    hourly = {server: price + traffic / HOURS_PER_MONTH for server, price in HOURLY.items()}
    assert ids(get_servers(monthly_inbound_traffic=100, price_max=0.25)) == matching(hourly, lambda p: p <= 0.25)
    assert ids(get_servers(price_max=0.25)) == matching(HOURLY, lambda p: p <= 0.25)


def test_price_max_compares_the_chosen_allocations_price(sync_upstream, get_servers):
    catalog = _priced_catalog()
    spot = {"cheap": 0.09, "dear": 0.05}
    for server, price in spot.items():
        catalog.price("v", server, price=price, allocation="SPOT")
    sync_upstream(catalog)

    assert ids(get_servers(best_price_allocation="SPOT_ONLY", price_max=0.06)) == matching(spot, lambda p: p <= 0.06)
    assert ids(get_servers(best_price_allocation="ONDEMAND_ONLY", price_max=0.15)) == matching(
        HOURLY, lambda p: p <= 0.15
    )
    cheapest = {server: min(price, spot.get(server, price)) for server, price in HOURLY.items()}
    assert ids(get_servers(price_max=0.095)) == matching(cheapest, lambda p: p <= 0.095)


# --- /server_prices and similar servers ----------------------------------------------------------------


def test_server_prices_list_only_active_servers_prices_by_default(sync_upstream, api):
    sync_upstream(_catalog_of_every_status())

    response = api.get("/server_prices")
    assert response.status_code == 200
    assert {row["server"]["server_id"] for row in response.json()} == {"active"}

    response = api.get("/server_prices", {"only_active": "false"})
    assert response.status_code == 200
    assert {row["server"]["server_id"] for row in response.json()} == set(STATUSES)


def test_server_prices_gpu_filters_read_the_accelerator_columns(sync_upstream, api):
    gpus = {"cpu-only": 0, "one": 1, "eight": 8}
    sync_upstream(servers_catalog({server: {"accelerator_count": count} for server, count in gpus.items()}))

    response = api.get("/server_prices", {"gpu_min": 1})

    assert response.status_code == 200
    assert {row["server"]["server_id"] for row in response.json()} == matching(gpus, lambda count: count >= 1)


def test_similar_servers_are_only_active_servers(sync_upstream, api):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    shapes = {
        "target": (2, 0, 8192, "ACTIVE"),
        "bigger": (4, 0, 16384, "ACTIVE"),
        "gpu": (2, 1, 8192, "ACTIVE"),
        "more-memory": (2, 0, 16384, "ACTIVE"),
        "planned": (2, 0, 8192, "PLANNED_FOR_RETIREMENT"),
        "gone": (2, 0, 8192, "INACTIVE"),
    }
    for server, (vcpus, gpus, memory, status) in shapes.items():
        catalog.server(
            "v", server, family="m", vcpus=vcpus, accelerator_count=gpus, memory_amount=memory, status=status
        )
        catalog.price("v", server, price=0.1)
    sync_upstream(catalog)
    candidates = {s for s, (*_, status) in shapes.items() if status == "ACTIVE" and s != "target"}

    for by in ("family", "specs"):
        response = api.get(f"/server/v/target/similar_servers/{by}/10")
        assert response.status_code == 200
        assert ids(response.json()) == candidates, by
    # family: by vCPUs, then accelerators, then memory.
    family = [row["server_id"] for row in api.get("/server/v/target/similar_servers/family/10").json()]
    assert family == sorted(candidates, key=lambda s: (shapes[s][0], shapes[s][1], shapes[s][2], s))


# --- The AI assist tool and the OpenAPI document -------------------------------------------------------

NEW_PARAMETERS = {
    "only_orderable",
    "cpu_hyperthreading",
    "cpu_flags",
    "benchmark_score_max",
    "benchmark_score_per_vcpu_min",
    "memory_max",
    "memory_per_vcpu_min",
    "memory_per_vcpu_max",
    "storage_count_min",
    "gpu_max",
    "price_max",
}


def test_the_ai_assist_tool_offers_the_new_parameters_with_the_active_servers_cpu_flags(sync_upstream):
    catalog, flags = _flags_catalog()
    sync_upstream(catalog)

    properties = filters_json_schema(ServerFilterSet)["properties"]

    assert NEW_PARAMETERS <= set(properties)
    assert properties["cpu_flags"]["items"]["enum"] == sorted({flag for f in flags.values() for flag in f})
    assert properties["cpu_hyperthreading"]["type"] == "boolean"
    assert properties["price_max"]["minimum"] == 0
