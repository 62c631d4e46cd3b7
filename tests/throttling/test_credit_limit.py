"""Each caller has a pool of credits per rolling minute; a request that does not fit is a 429 saying when it will."""

import pytest

from tests.fakes import bearer

CREDIT_LIMIT = {
    "detail": "Credit limit exceeded: this request costs more credits than remain in your pool for this minute.",
    "code": "throttled",
}


def remaining(response) -> int:
    return int(response["X-RateLimit-Remaining"])


@pytest.fixture
def small_pool(rate_limits):
    rate_limits.RATE_LIMIT_CREDITS_PER_MINUTE = 6
    return rate_limits


def test_requests_are_refused_with_429_json_once_the_pool_is_spent(api, backend, small_pool):
    statuses = [api.get("/servers").status_code for _ in range(3)]  # 3 credits each

    response = api.get("/servers")

    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == CREDIT_LIMIT["code"]
    assert response.json()["detail"].startswith(CREDIT_LIMIT["detail"])
    assert remaining(response) == 0


def test_a_refused_request_costs_nothing(api, backend, small_pool):
    api.get("/servers")
    api.get("/regions")  # 2 credits left
    assert api.get("/servers").status_code == 429

    assert api.get("/regions").status_code == 200
    assert api.get("/regions").status_code == 200
    assert api.get("/regions").status_code == 429


def test_retry_after_is_when_the_requests_own_cost_fits(api, small_pool, clock):
    for _ in range(3):
        api.get("/regions")  # 1 credit at t=0, 10 and 20
        clock.advance(10)
    api.get("/servers")  # 3 credits at t=30: the pool of 6 is spent
    clock.advance(10)

    cheap = api.get("/regions")
    dear = api.get("/servers")

    assert cheap.status_code == dear.status_code == 429
    assert cheap["Retry-After"] == "20"  # the credit of t=0 frees 1 credit at t=60
    assert dear["Retry-After"] == "40"  # 3 credits are free once t=20's leaves, at t=80


def test_retry_after_is_rounded_up_so_that_retrying_then_succeeds(api, small_pool, clock):
    api.get("/servers")
    api.get("/servers")
    clock.advance(0.4)

    response = api.get("/servers")
    clock.advance(int(response["Retry-After"]))

    assert response["Retry-After"] == "60"
    assert api.get("/servers").status_code == 200


def test_retry_after_is_about_a_minute_after_a_burst_on_redis(api, redis_url, small_pool):
    small_pool.REDIS_URL = redis_url
    small_pool.RATE_LIMIT_BACKEND = "redis"
    api.get("/servers")
    api.get("/servers")

    response = api.get("/servers")

    assert response.status_code == 429
    assert 58 <= int(response["Retry-After"]) <= 60


def test_the_pool_refills_as_the_minute_rolls(api, small_pool, clock):
    api.get("/servers")
    clock.advance(30)
    api.get("/servers")
    assert api.get("/regions").status_code == 429

    clock.advance(30)
    response = api.get("/servers")

    assert response.status_code == 200
    assert remaining(response) == 0


def test_each_client_ip_has_its_own_pool(api, backend, small_pool):
    api.get("/servers", REMOTE_ADDR="192.0.2.1")
    api.get("/servers", REMOTE_ADDR="192.0.2.1")

    assert api.get("/servers", REMOTE_ADDR="192.0.2.1").status_code == 429
    assert api.get("/servers", REMOTE_ADDR="192.0.2.2").status_code == 200


def test_each_user_has_their_own_pool_whatever_their_address(api, backend, small_pool, introspection):
    alice = introspection.issue("tok-alice", sub="alice")
    bob = introspection.issue("tok-bob", sub="bob")
    api.get("/servers", REMOTE_ADDR="192.0.2.1", **bearer(alice))
    api.get("/servers", REMOTE_ADDR="192.0.2.2", **bearer(alice))

    assert api.get("/servers", REMOTE_ADDR="192.0.2.3", **bearer(alice)).status_code == 429
    assert api.get("/servers", REMOTE_ADDR="192.0.2.1", **bearer(bob)).status_code == 200
    assert api.get("/servers", REMOTE_ADDR="192.0.2.1").status_code == 200


def test_two_tokens_of_the_same_user_share_one_pool(api, backend, small_pool, introspection):
    laptop = introspection.issue("tok-laptop", sub="alice")
    phone = introspection.issue("tok-phone", sub="alice")

    api.get("/servers", **bearer(laptop))
    response = api.get("/servers", **bearer(phone))

    assert remaining(response) == 0


def test_a_user_with_credits_in_their_token_gets_that_pool(api, backend, small_pool, introspection):
    token = introspection.issue("tok-big", api_credits_per_minute=12)

    statuses = [api.get("/servers", **bearer(token)).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 200, 429]


def test_anonymous_callers_get_the_configured_default_pool(api, backend, rate_limits):
    rate_limits.RATE_LIMIT_CREDITS_PER_MINUTE = 9

    response = api.get("/servers")

    assert (response["X-RateLimit-Limit"], remaining(response)) == ("9", 6)


def test_the_default_pool_is_sixty_credits_per_minute(api, backend):
    assert api.get("/regions")["X-RateLimit-Limit"] == "60"


def test_callers_are_still_limited_while_the_identity_provider_is_down(api, backend, small_pool, introspection):
    introspection.stop()

    statuses = [api.get("/servers", **bearer(f"tok-random-{n}")).status_code for n in range(3)]

    assert statuses == [503, 503, 429]
