"""GET /servers: order_by / order_dir, and limit / page / add_total_count_header."""

import pytest

from tests.catalog.upstream import UpstreamCatalog, servers_catalog

# Per server: vcpus, memory (MiB), on-demand price, spot price, stress-ng score; None where there is none.
SERVERS = {
    "a-small": (2, 2048, 0.020, 0.006, 2000.0),
    "b-medium": (4, 8192, 0.090, None, 8000.0),
    "c-large": (8, 32768, 0.300, 0.100, None),
    "d-spot-only": (4, 16384, None, 0.050, 6000.0),
    "e-tiered": (2, 4096, 0.010, None, 1500.0),
    "f-tie": (4, 8192, 0.090, None, 9000.0),
}
TIER_CAP_HOURS = 300  # e-tiered is billed for at most this many hours a month


def ordering_catalog() -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    catalog.benchmark("stress_ng:bestn")
    for server, (vcpus, memory, ondemand, spot, score) in SERVERS.items():
        catalog.server("v", server, vcpus=vcpus, memory_amount=memory)
        if ondemand is not None:
            tiers = None
            if server == "e-tiered":
                cap = TIER_CAP_HOURS
                tiers = [{"lower": 0, "upper": cap, "price": ondemand}, {"lower": cap, "upper": "Infinity", "price": 0}]
            catalog.price("v", server, price=ondemand, tiers=tiers)
        if spot is not None:
            catalog.price("v", server, price=spot, allocation="SPOT")
        if score is not None:
            catalog.score("v", server, "stress_ng:bestn", score)
    return catalog


def server_ids(rows: list[dict]) -> list[str]:
    return [row["server_id"] for row in rows]


def expected_order(rows: list[dict], column: str, *, descending: bool = False) -> list[str]:
    """Rows having `column`, by it (ties by vendor and server id, always ascending)."""
    having = [row for row in rows if row[column] is not None]
    return server_ids(
        sorted(
            having, key=lambda row: (-row[column] if descending else row[column], row["vendor_id"], row["server_id"])
        )
    )


@pytest.fixture
def every_row(sync_upstream, get_servers) -> list[dict]:
    sync_upstream(ordering_catalog())
    return get_servers(limit=-1, order_by="server_id")


def test_default_order_is_min_price_ascending(every_row, get_servers):
    assert server_ids(get_servers()) == expected_order(every_row, "min_price")


@pytest.mark.parametrize(
    "column", ["min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly", "score_per_price"]
)
def test_order_by_a_derived_value_leaves_out_servers_without_it(every_row, get_servers, column):
    assert server_ids(get_servers(order_by=column)) == expected_order(every_row, column)


def test_monthly_order_accounts_for_tier_caps(every_row, get_servers):
    rows = get_servers(order_by="min_price_ondemand_monthly")

    tiered = next(row for row in rows if row["server_id"] == "e-tiered")
    assert tiered["min_price_ondemand_monthly"] == pytest.approx(SERVERS["e-tiered"][2] * TIER_CAP_HOURS, abs=0.01)
    assert server_ids(rows) == expected_order(every_row, "min_price_ondemand_monthly")


@pytest.mark.parametrize("column", ["vcpus", "memory_amount"])
def test_order_by_a_server_column_keeps_every_server(every_row, get_servers, column):
    assert server_ids(get_servers(order_by=column)) == expected_order(every_row, column)


@pytest.mark.parametrize("column", ["min_price", "min_price_spot", "score_per_price", "vcpus", "memory_amount"])
def test_order_dir_desc_reverses_the_order(every_row, get_servers, column):
    rows = get_servers(order_by=column, order_dir="desc")

    assert server_ids(rows) == expected_order(every_row, column, descending=True)


def test_order_by_price_follows_best_price_allocation(every_row, get_servers):
    rows = get_servers(order_by="price", best_price_allocation="SPOT_ONLY")

    assert server_ids(rows) == expected_order(every_row, "min_price_spot")


def test_unknown_order_by_is_a_400_naming_order_by(every_row, http):
    response = http.get("/servers", {"order_by": "no_such_column"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["order_by"]


def test_order_dir_must_be_asc_or_desc(every_row, http):
    response = http.get("/servers", {"order_dir": "down"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["order_dir"]


@pytest.fixture
def thirty_servers(sync_upstream) -> list[str]:
    """Thirty servers whose prices order them by name."""
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    names = [f"s{number:02d}" for number in range(30)]
    for number, name in enumerate(names):
        catalog.server("v", name)
        catalog.price("v", name, price=0.01 * (number + 1))
    sync_upstream(catalog)
    return names


def test_limit_defaults_to_25(thirty_servers, get_servers):
    assert server_ids(get_servers()) == thirty_servers[:25]


def test_limit_caps_the_rows_of_a_page(thirty_servers, get_servers):
    assert server_ids(get_servers(limit=7)) == thirty_servers[:7]


def test_limit_minus_one_returns_every_row(thirty_servers, get_servers):
    assert server_ids(get_servers(limit=-1)) == thirty_servers


def test_pages_are_one_based_and_consecutive(thirty_servers, get_servers):
    limit = 8
    pages = [server_ids(get_servers(limit=limit, page=page)) for page in (1, 2, 3, 4)]

    assert pages == [thirty_servers[start : start + limit] for start in range(0, 32, limit)]
    assert server_ids(get_servers(limit=limit)) == pages[0]


def test_a_page_past_the_end_is_empty(thirty_servers, get_servers):
    assert get_servers(limit=10, page=4) == []


def test_x_total_count_counts_every_matching_row_not_the_page(thirty_servers, api):
    response = api.get("/servers", {"limit": 5, "page": 2, "add_total_count_header": "true"})

    assert response.status_code == 200
    assert response["X-Total-Count"] == str(len(thirty_servers))
    assert len(response.json()) == 5


def test_x_total_count_counts_after_filters(sync_upstream, api):
    vcpus = {"a": 2, "b": 4, "c": 8, "d": 16}
    sync_upstream(servers_catalog({server: {"vcpus": count} for server, count in vcpus.items()}))

    response = api.get("/servers", {"vcpus_min": 4, "limit": 1, "add_total_count_header": "true"})

    assert response["X-Total-Count"] == str(sum(count >= 4 for count in vcpus.values()))


@pytest.mark.parametrize("params", [{}, {"add_total_count_header": "false"}])
def test_x_total_count_is_absent_unless_asked_for(thirty_servers, api, params):
    response = api.get("/servers", params)

    assert response.status_code == 200
    assert not response.has_header("X-Total-Count")
