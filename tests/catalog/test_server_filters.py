"""GET /servers: one test per filter. Each test builds the servers it needs and derives the expectation from them."""

import pytest

from apps.catalog.pricing import exchange_rate
from tests.catalog.upstream import UpstreamCatalog, servers_catalog

KIB_PER_MIB = 1024
MIB_PER_GB = 1024


def ids(rows: list[dict]) -> set[str]:
    return {row["server_id"] for row in rows}


def at_least(values: dict[str, float | None], minimum: float) -> set[str]:
    return {server for server, value in values.items() if value is not None and value >= minimum}


def test_partial_name_or_id_matches_any_name_column_case_insensitively(sync_upstream, get_servers):
    servers = {
        "by-id-gpux": {},
        "by-name": {"name": "Big GPUX box"},
        "by-reference": {"api_reference": "gpux.large"},
        "by-display-name": {"display_name": "The GpuX"},
        "unrelated": {"description": "gpux in the description does not count"},
    }
    sync_upstream(servers_catalog(servers))

    assert ids(get_servers(partial_name_or_id="GPUX")) == set(servers) - {"unrelated"}


def test_partial_name_or_id_treats_like_wildcards_literally(sync_upstream, get_servers):
    sync_upstream(servers_catalog({"m5.large": {}, "m5_large": {}, "100%-cpu": {}}))

    assert ids(get_servers(partial_name_or_id="5_l")) == {"m5_large"}
    assert ids(get_servers(partial_name_or_id="%")) == {"100%-cpu"}


def test_vcpus_min_defaults_to_one(sync_upstream, get_servers):
    vcpus = {"none": 0, "one": 1, "four": 4}
    sync_upstream(servers_catalog({server: {"vcpus": count} for server, count in vcpus.items()}))

    assert ids(get_servers()) == at_least(vcpus, 1)


def test_vcpus_min_keeps_servers_with_at_least_that_many_vcpus(sync_upstream, get_servers):
    vcpus = {"two": 2, "four": 4, "eight": 8, "max": 256}
    sync_upstream(servers_catalog({server: {"vcpus": count} for server, count in vcpus.items()}))

    assert ids(get_servers(vcpus_min=4)) == at_least(vcpus, 4)
    assert ids(get_servers(vcpus_min=256)) == at_least(vcpus, 256)


def test_vcpus_max_keeps_servers_with_at_most_that_many_vcpus(sync_upstream, get_servers):
    vcpus = {"two": 2, "four": 4, "eight": 8}
    sync_upstream(servers_catalog({server: {"vcpus": count} for server, count in vcpus.items()}))

    assert ids(get_servers(vcpus_max=4)) == {server for server, count in vcpus.items() if count <= 4}
    assert ids(get_servers(vcpus_min=4, vcpus_max=4)) == {"four"}


def test_architecture_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    architectures = {"intel": "X86_64", "graviton": "ARM64", "mac": "ARM64_MAC"}
    sync_upstream(servers_catalog({server: {"cpu_architecture": arch} for server, arch in architectures.items()}))

    assert ids(get_servers(architecture="ARM64")) == {"graviton"}
    assert ids(get_servers(architecture=["ARM64", "ARM64_MAC"])) == {"graviton", "mac"}


def test_cpu_manufacturer_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    makers = {"xeon": "Intel", "epyc": "AMD", "altra": "Ampere", "unknown": None}
    sync_upstream(servers_catalog({server: {"cpu_manufacturer": maker} for server, maker in makers.items()}))

    assert ids(get_servers(cpu_manufacturer="AMD")) == {"epyc"}
    assert ids(get_servers(cpu_manufacturer=["AMD", "Ampere"])) == {"epyc", "altra"}


def test_cpu_family_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    families = {"a": "Xeon", "b": "EPYC", "c": "Altra"}
    sync_upstream(servers_catalog({server: {"cpu_family": family} for server, family in families.items()}))

    assert ids(get_servers(cpu_family=["Xeon", "Altra"])) == {"a", "c"}


def test_cpu_allocation_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    allocations = {"shared": "SHARED", "burst": "BURSTABLE", "dedicated": "DEDICATED"}
    sync_upstream(servers_catalog({server: {"cpu_allocation": alloc} for server, alloc in allocations.items()}))

    assert ids(get_servers(cpu_allocation="DEDICATED")) == {"dedicated"}
    assert ids(get_servers(cpu_allocation=["SHARED", "BURSTABLE"])) == {"shared", "burst"}


def test_cpu_speed_min_is_in_ghz(sync_upstream, get_servers):
    speeds = {"slow": 2.0, "edge": 2.5, "fast": 3.6, "unknown": None}
    sync_upstream(servers_catalog({server: {"cpu_speed": speed} for server, speed in speeds.items()}))

    assert ids(get_servers(cpu_speed_min=2.5)) == at_least(speeds, 2.5)


@pytest.mark.parametrize(
    ("parameter", "column", "kib"),
    [
        ("cpu_l1d_cache_min", "cpu_l1d_cache", {"small": 32, "edge": 48, "big": 64, "unknown": None}),
        ("cpu_l1d_cache_total_min", "cpu_l1d_cache_total", {"small": 256, "edge": 512, "big": 1536, "unknown": None}),
        ("cpu_l1i_cache_min", "cpu_l1i_cache", {"small": 32, "edge": 48, "big": 64, "unknown": None}),
        ("cpu_l1i_cache_total_min", "cpu_l1i_cache_total", {"small": 256, "edge": 512, "big": 1024, "unknown": None}),
        ("cpu_l2_cache_min", "cpu_l2_cache", {"small": 512, "edge": 1024, "big": 2048, "unknown": None}),
        ("cpu_l2_cache_total_min", "cpu_l2_cache_total", {"small": 4096, "edge": 8192, "big": 65536, "unknown": None}),
    ],
)
def test_l1_and_l2_cache_minimums_are_in_kib_as_stored(sync_upstream, get_servers, parameter, column, kib):
    sync_upstream(servers_catalog({server: {column: size} for server, size in kib.items()}))

    assert ids(get_servers(**{parameter: kib["edge"]})) == at_least(kib, kib["edge"])


@pytest.mark.parametrize(
    ("parameter", "column"),
    [("cpu_l3_cache_min", "cpu_l3_cache"), ("cpu_l3_cache_total_min", "cpu_l3_cache_total")],
)
def test_l3_cache_minimums_are_in_mib_while_stored_in_kib(sync_upstream, get_servers, parameter, column):
    kib = {"small": 16 * 1024, "edge": 32 * 1024, "big": 96 * 1024, "odd": 33792, "unknown": None}
    sync_upstream(servers_catalog({server: {column: size} for server, size in kib.items()}))

    for mib in (32, 33, 33.5, 96):
        assert ids(get_servers(**{parameter: mib})) == at_least(kib, mib * KIB_PER_MIB), mib


def test_hw_virt_keeps_servers_with_or_without_hardware_virtualization(sync_upstream, get_servers):
    hw_virt = {"nested": 1, "flat": 0, "unknown": None}
    sync_upstream(servers_catalog({server: {"hw_virt": value} for server, value in hw_virt.items()}))

    assert ids(get_servers(hw_virt="true")) == {"nested"}
    assert ids(get_servers(hw_virt="false")) == {"flat"}


def test_memory_min_is_in_gb_while_stored_in_mib(sync_upstream, get_servers):
    memory_mib = {"half": 512, "one": 1024, "eight": 8192, "odd": 3840}
    sync_upstream(servers_catalog({server: {"memory_amount": mib} for server, mib in memory_mib.items()}))

    for gb in (0.5, 1, 3.75, 4, 8):
        assert ids(get_servers(memory_min=gb)) == at_least(memory_mib, gb * MIB_PER_GB), gb


def test_network_speed_baseline_min_is_in_gbps(sync_upstream, get_servers):
    speeds = {"slow": 0.75, "mid": 5, "fast": 25, "unknown": None}
    sync_upstream(servers_catalog({server: {"network_speed_baseline": speed} for server, speed in speeds.items()}))

    assert ids(get_servers(network_speed_baseline_min=5)) == at_least(speeds, 5)


def test_network_speed_max_min_is_in_gbps(sync_upstream, get_servers):
    speeds = {"slow": 1, "mid": 12.5, "fast": 100, "unknown": None}
    sync_upstream(servers_catalog({server: {"network_speed_max": speed} for server, speed in speeds.items()}))

    assert ids(get_servers(network_speed_max_min=12.5)) == at_least(speeds, 12.5)


def _catalog_with_unbuyable_servers() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "buyable")
    catalog.price("v", "buyable", price=0.1)
    catalog.server("v", "retired", status="INACTIVE")
    catalog.price("v", "retired", price=0.2)
    catalog.server("v", "price-retired")
    catalog.price("v", "price-retired", price=0.3, status="INACTIVE")
    catalog.server("v", "no-price")
    return catalog


def test_only_active_by_default_hides_inactive_servers_and_servers_without_an_active_price(sync_upstream, get_servers):
    sync_upstream(_catalog_with_unbuyable_servers())

    assert ids(get_servers()) == {"buyable"}
    assert ids(get_servers(only_active="true")) == {"buyable"}


def test_only_active_false_alone_still_lists_the_orderable_servers_with_a_price(sync_upstream, get_servers):
    sync_upstream(_catalog_with_unbuyable_servers())

    # only_orderable (default true) still applies, as in the newest Spare Cores API.
    assert ids(get_servers(only_active="false", order_by="server_id")) == {"buyable"}


def test_only_active_and_only_orderable_false_show_inactive_and_unpriced_servers(sync_upstream, get_servers):
    sync_upstream(_catalog_with_unbuyable_servers())

    # Ordering by a price leaves out servers without one, so order by a plain column to see them all.
    assert ids(get_servers(only_active="false", only_orderable="false", order_by="server_id")) == {
        "buyable",
        "retired",
        "price-retired",
        "no-price",
    }
    assert ids(get_servers(only_orderable="false")) == {"buyable", "retired"}


def test_vendor_matches_any_of_the_repeated_keys(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    servers = {"aws": "m5.large", "gcp": "n2-standard-2", "hcloud": "cx22"}
    for vendor, server in servers.items():
        catalog.vendor(vendor)
        catalog.server(vendor, server)
        catalog.price(vendor, server, price=0.1)
    sync_upstream(catalog)

    assert ids(get_servers(vendor="gcp")) == {servers["gcp"]}
    assert ids(get_servers(vendor=["aws", "gcp"])) == {servers["aws"], servers["gcp"]}


def test_compliance_framework_keeps_servers_of_vendors_implementing_any_of_them(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    for vendor in ("aws", "gcp", "hcloud"):
        catalog.vendor(vendor)
        catalog.server(vendor, f"{vendor}-server")
        catalog.price(vendor, f"{vendor}-server", price=0.1)
    frameworks = {"hipaa": ("aws", "gcp"), "iso27001": ("hcloud",), "soc2": ()}
    for framework, vendors in frameworks.items():
        catalog.compliance_framework(framework, vendors=vendors)
    sync_upstream(catalog)

    def servers_of(*names: str) -> set[str]:
        return {f"{vendor}-server" for name in names for vendor in frameworks[name]}

    assert ids(get_servers(compliance_framework="hipaa")) == servers_of("hipaa")
    assert ids(get_servers(compliance_framework=["hipaa", "iso27001"])) == servers_of("hipaa", "iso27001")
    assert ids(get_servers(compliance_framework="soc2")) == set()


def test_storage_size_is_a_minimum_in_gb(sync_upstream, get_servers):
    sizes = {"diskless": 0, "small": 40, "edge": 375, "big": 3750}
    sync_upstream(servers_catalog({server: {"storage_size": size} for server, size in sizes.items()}))

    assert ids(get_servers(storage_size=375)) == at_least(sizes, 375)
    assert ids(get_servers(storage_size=39.5)) == at_least(sizes, 39.5)


def test_storage_type_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    types = {"ssd": "SSD", "nvme": "NVME_SSD", "hdd": "HDD", "none": None}
    sync_upstream(servers_catalog({server: {"storage_type": kind} for server, kind in types.items()}))

    assert ids(get_servers(storage_type="NVME_SSD")) == {"nvme"}
    assert ids(get_servers(storage_type=["SSD", "HDD"])) == {"ssd", "hdd"}


def test_gpu_min_accepts_fractional_gpus(sync_upstream, get_servers):
    gpus = {"cpu-only": 0, "slice": 0.5, "one": 1, "eight": 8}
    sync_upstream(servers_catalog({server: {"accelerator_count": count} for server, count in gpus.items()}))

    assert ids(get_servers(gpu_min=0.5)) == at_least(gpus, 0.5)
    assert ids(get_servers(gpu_min=1)) == at_least(gpus, 1)


def test_gpu_memory_min_is_in_gb_while_stored_in_mib(sync_upstream, get_servers):
    memory_mib = {"t4": 15360, "v100": 16384, "a100": 81920, "none": None}
    sync_upstream(servers_catalog({server: {"accelerator_memory_min": mib} for server, mib in memory_mib.items()}))

    for gb in (15, 16, 16.5, 80):
        assert ids(get_servers(gpu_memory_min=gb)) == at_least(memory_mib, gb * MIB_PER_GB), gb


def test_gpu_memory_total_is_in_gb_while_stored_in_mib(sync_upstream, get_servers):
    memory_mib = {"one-t4": 15360, "four-v100": 65536, "eight-a100": 655360, "none": None}
    sync_upstream(servers_catalog({server: {"accelerator_memory_total": mib} for server, mib in memory_mib.items()}))

    for gb in (15, 64, 64.5, 640):
        assert ids(get_servers(gpu_memory_total=gb)) == at_least(memory_mib, gb * MIB_PER_GB), gb


def test_gpu_manufacturer_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    makers = {"nv": "NVIDIA", "amd": "AMD", "habana": "Habana", "none": None}
    sync_upstream(servers_catalog({server: {"accelerator_manufacturer": maker} for server, maker in makers.items()}))

    assert ids(get_servers(gpu_manufacturer="NVIDIA")) == {"nv"}
    assert ids(get_servers(gpu_manufacturer=["NVIDIA", "AMD"])) == {"nv", "amd"}


def test_gpu_family_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    families = {"volta": "Volta", "ampere": "Ampere", "hopper": "Hopper"}
    sync_upstream(servers_catalog({server: {"accelerator_family": family} for server, family in families.items()}))

    assert ids(get_servers(gpu_family=["Volta", "Hopper"])) == {"volta", "hopper"}


def test_gpu_model_matches_any_of_the_repeated_values(sync_upstream, get_servers):
    models = {"p3": "V100", "p4d": "A100", "g5": "A10G"}
    sync_upstream(servers_catalog({server: {"accelerator_model": model} for server, model in models.items()}))

    assert ids(get_servers(gpu_model="A10G")) == {"g5"}
    assert ids(get_servers(gpu_model=["V100", "A100"])) == {"p3", "p4d"}


def _scored_catalog(scores: dict[str, float | None], prices: dict[str, float]) -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("stress_ng:bestn")
    for server, price in prices.items():
        catalog.server("v", server)
        catalog.price("v", server, price=price)
        if scores[server] is not None:
            catalog.score("v", server, "stress_ng:bestn", scores[server])
    return catalog


def test_benchmark_score_stressng_cpu_min_keeps_all_cores_scores_above_it(sync_upstream, get_servers):
    scores = {"slow": 1000.0, "edge": 4000.0, "fast": 40000.0, "unscored": None}
    sync_upstream(_scored_catalog(scores, prices=dict.fromkeys(scores, 0.1)))

    # Strictly above, as the Spare Cores API compares (its other minimums include the bound).
    assert ids(get_servers(benchmark_score_stressng_cpu_min=4000)) == {"fast"}


def test_benchmark_score_per_price_stressng_cpu_min_compares_score_per_usd_hour(sync_upstream, get_servers):
    scores = {"cheap": 1000.0, "pricey": 40000.0, "bargain": 16000.0, "unscored": None}
    prices = {"cheap": 0.01, "pricey": 12.0, "bargain": 0.1, "unscored": 0.01}
    sync_upstream(_scored_catalog(scores, prices))
    per_price = {server: None if scores[server] is None else scores[server] / prices[server] for server in scores}

    minimum = per_price["cheap"]
    expected = {server for server, value in per_price.items() if value is not None and value > minimum}
    assert ids(get_servers(benchmark_score_per_price_stressng_cpu_min=minimum)) == expected


def test_currency_converts_every_price_of_the_row(sync_upstream, get_servers):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "s")
    catalog.price("v", "s", price=0.5)
    catalog.price("v", "s", price=0.2, allocation="SPOT")
    sync_upstream(catalog)
    [usd] = get_servers()

    [eur] = get_servers(currency="EUR")

    rate = exchange_rate("USD", "EUR")
    for column in ("price", "min_price", "min_price_spot", "min_price_ondemand"):
        assert eur[column] == pytest.approx(usd[column] * rate, abs=1e-4), column
    assert eur["min_price_ondemand_monthly"] == pytest.approx(usd["min_price_ondemand_monthly"] * rate, abs=0.01)
    assert eur["score_per_price"] == usd["score_per_price"]


def test_currency_usd_is_the_default(sync_upstream, get_servers):
    sync_upstream(servers_catalog({"s": {}}, price=0.25))

    assert get_servers(currency="USD") == get_servers()
    assert get_servers()[0]["min_price"] == 0.25


def _allocation_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.server("v", "both")
    catalog.price("v", "both", price=0.4)
    catalog.price("v", "both", price=0.1, allocation="SPOT")
    catalog.server("v", "ondemand-only")
    catalog.price("v", "ondemand-only", price=0.3)
    catalog.server("v", "spot-only")
    catalog.price("v", "spot-only", price=0.05, allocation="SPOT")
    return catalog


@pytest.mark.parametrize(
    ("allocation", "column"),
    [
        ("ANY", "min_price"),
        ("SPOT_ONLY", "min_price_spot"),
        ("ONDEMAND_ONLY", "min_price_ondemand"),
        ("MONTHLY", "min_price_ondemand_monthly"),
    ],
)
def test_best_price_allocation_reports_the_matching_price_and_leaves_out_servers_without_it(
    sync_upstream, get_servers, allocation, column
):
    sync_upstream(_allocation_catalog())
    every_server = get_servers()

    rows = get_servers(best_price_allocation=allocation)

    assert ids(rows) == {row["server_id"] for row in every_server if row[column] is not None}
    assert rows, "the catalog has servers with every kind of price"
    for row in rows:
        assert row["price"] == row[column]


def test_best_price_allocation_defaults_to_any(sync_upstream, get_servers):
    sync_upstream(_allocation_catalog())

    rows = get_servers()

    assert len(rows) == 3
    assert all(row["price"] == row["min_price"] for row in rows)
