"""Each request costs its route's credits (RouteCost, matched by route pattern), editable at run time."""

import pytest

from apps.throttling.models import RouteCost
from tests.fakes import bearer


def costs(response) -> tuple[int, int, int]:
    """(limit, cost, remaining) from the X-RateLimit-* headers."""
    return int(response["X-RateLimit-Limit"]), int(response["X-RateLimit-Cost"]), int(response["X-RateLimit-Remaining"])


@pytest.mark.django_db
def test_the_heavier_spare_cores_routes_are_seeded_with_their_costs():
    assert (
        dict(RouteCost.objects.values_list("route", "cost")).items()
        >= {
            "/servers": 3,
            "/server_prices": 5,
            "/table/server_prices": 10,
            "/benchmark_score_stats": 10,
        }.items()
    )


def test_a_search_of_servers_costs_three_credits(api, backend):
    first = api.get("/servers", {"limit": 5})
    second = api.get("/servers")

    assert first.status_code == second.status_code == 200
    assert costs(first) == (60, 3, 57)
    assert costs(second) == (60, 3, 54)


def test_a_route_without_a_cost_costs_the_default(api, backend, settings):
    assert costs(api.get("/regions")) == (60, 1, 59)

    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 2

    assert costs(api.get("/regions")) == (60, 2, 57)


def test_a_route_costing_nothing_leaves_the_pool_untouched(api, rate_limits):
    RouteCost.objects.create(route="/regions", cost=0)

    assert costs(api.get("/regions")) == (60, 0, 60)


def test_a_cost_edited_in_the_database_applies_once_the_cached_costs_expire(api, rate_limits):
    rate_limits.RATE_LIMIT_ROUTE_COST_TTL_SECONDS = 0
    assert costs(api.get("/servers"))[1] == 3

    RouteCost.objects.filter(route="/servers").update(cost=7)

    assert costs(api.get("/servers"))[1] == 7


def test_a_cost_edited_in_the_database_waits_for_the_cache_ttl(api, rate_limits):
    rate_limits.RATE_LIMIT_ROUTE_COST_TTL_SECONDS = 3600
    assert costs(api.get("/servers"))[1] == 3

    RouteCost.objects.filter(route="/servers").update(cost=7)

    assert costs(api.get("/servers"))[1] == 3


def test_a_cost_changed_in_the_admin_applies_to_the_next_request(api, client, rate_limits, admin_user):
    rate_limits.RATE_LIMIT_ROUTE_COST_TTL_SECONDS = 3600
    assert costs(api.get("/servers"))[1] == 3
    servers = RouteCost.objects.get(route="/servers")
    client.force_login(admin_user)

    response = client.post(
        f"/admin/throttling/routecost/{servers.pk}/change/", {"route": "/servers", "cost": 8, "_save": "Save"}
    )

    assert response.status_code == 302, response.content
    assert costs(api.get("/servers"))[1] == 8


def test_a_route_added_in_the_admin_applies_to_the_next_request(api, client, rate_limits, admin_user):
    rate_limits.RATE_LIMIT_ROUTE_COST_TTL_SECONDS = 3600
    assert costs(api.get("/regions"))[1] == 1
    client.force_login(admin_user)

    response = client.post("/admin/throttling/routecost/add/", {"route": "/regions", "cost": 4, "_save": "Save"})

    assert response.status_code == 302, response.content
    assert costs(api.get("/regions"))[1] == 4


def test_a_cost_is_matched_by_route_pattern_not_by_path_prefix(api, rate_limits):
    RouteCost.objects.create(route="/server/<str:vendor>/<path:server>", cost=4)
    RouteCost.objects.create(route="/server", cost=9)

    assert costs(api.get("/server/aws/m5.large"))[1] == 4
    assert costs(api.get("/server/gcp/some/nested-id"))[1] == 4
    assert costs(api.get("/v2/server/aws/m5.large"))[1] == 1
    assert costs(api.get("/servers"))[1] == 3


def test_the_query_string_does_not_change_the_route(api, rate_limits):
    assert costs(api.get("/servers", {"vcpus_min": 2, "limit": 1}))[1] == 3


def test_a_route_cost_applies_to_callers_with_a_token_too(api, rate_limits, introspection):
    token = introspection.issue("tok-alice", api_credits_per_minute=100)

    assert costs(api.get("/servers", **bearer(token))) == (100, 3, 97)
