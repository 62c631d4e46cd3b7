"""A 401 costs RATE_LIMIT_UNAUTHORIZED_PENALTY (10) credits on top of the route's cost, so guessing tokens is slow."""

import pytest

from tests.fakes import bearer


def charged(response) -> tuple[int, int]:
    return int(response["X-RateLimit-Cost"]), int(response["X-RateLimit-Remaining"])


@pytest.fixture
def revoked(introspection) -> str:
    return introspection.answer("tok-revoked", {"active": False})


def test_an_invalid_token_costs_the_route_plus_ten_credits(api, backend, revoked):
    response = api.get("/servers", **bearer(revoked))

    assert response.status_code == 401
    assert charged(response) == (3 + 10, 60 - 13)


def test_an_anonymous_call_to_a_protected_endpoint_costs_the_route_plus_ten_credits(api, backend, introspection):
    response = api.get("/me")

    assert response.status_code == 401
    assert charged(response) == (1 + 10, 60 - 11)


def test_the_penalty_is_charged_to_the_client_ip(api, backend, revoked):
    api.get("/regions", REMOTE_ADDR="192.0.2.1", **bearer(revoked))

    assert charged(api.get("/regions", REMOTE_ADDR="192.0.2.1")) == (1, 60 - 11 - 1)
    assert charged(api.get("/regions", REMOTE_ADDR="192.0.2.2")) == (1, 59)


def test_repeated_invalid_tokens_exhaust_the_pool(api, backend, introspection):
    # 11 credits each: after five, 5 remain; the sixth still fits its 1 credit, and its penalty empties the pool.
    statuses = [
        api.get("/regions", **bearer(introspection.answer(f"tok-guess-{n}", {"active": False}))).status_code
        for n in range(7)
    ]

    assert statuses == [401] * 6 + [429]
    assert api.get("/regions").status_code == 429


def test_the_penalty_is_configurable(api, backend, revoked, settings):
    settings.RATE_LIMIT_UNAUTHORIZED_PENALTY = 25

    assert charged(api.get("/regions", **bearer(revoked))) == (26, 34)


def test_a_successful_request_pays_no_penalty(api, backend, introspection):
    token = introspection.issue("tok-alice")

    assert charged(api.get("/me", **bearer(token))) == (1, 59)
