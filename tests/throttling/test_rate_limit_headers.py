"""Every response carries X-RateLimit-Limit, X-RateLimit-Cost and X-RateLimit-Remaining."""

from collections.abc import Callable

import pytest

from tests.fakes import FakeIdentityProvider, bearer
from tests.throttling.conftest import set_global_limit

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Cost", "X-RateLimit-Remaining")


def ok(api, idp: FakeIdentityProvider):
    return api.get("/regions")


def ok_with_token(api, idp: FakeIdentityProvider):
    return api.get("/regions", **bearer(idp.issue("tok-alice")))


def bad_query(api, idp: FakeIdentityProvider):
    return api.get("/regions", {"no_such_parameter": 1})


def wrong_method(api, idp: FakeIdentityProvider):
    return api.post("/regions", {}, format="json")


def invalid_token(api, idp: FakeIdentityProvider):
    return api.get("/regions", **bearer(idp.answer("tok-revoked", {"active": False})))


def anonymous_me(api, idp: FakeIdentityProvider):
    return api.get("/me")


def not_staff(api, idp: FakeIdentityProvider):
    return api.get("/config", **bearer(idp.issue("tok-alice")))


def unknown_server(api, idp: FakeIdentityProvider):
    return api.get("/server/aws/no-such-server")


def unknown_endpoint(api, idp: FakeIdentityProvider):
    return api.get("/no-such-endpoint")


def credits_spent(api, idp: FakeIdentityProvider):
    for _ in range(20):
        api.get("/servers")
    return api.get("/servers")


def global_bucket_empty(api, idp: FakeIdentityProvider):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    api.get("/regions")
    return api.get("/regions")


def provider_down(api, idp: FakeIdentityProvider):
    token = idp.issue("tok-alice")
    idp.stop()
    return api.get("/regions", **bearer(token))


SCENARIOS: list[tuple[Callable, int]] = [
    (ok, 200),
    (ok_with_token, 200),
    (bad_query, 400),
    (wrong_method, 405),
    (invalid_token, 401),
    (anonymous_me, 401),
    (not_staff, 403),
    (unknown_server, 404),
    (unknown_endpoint, 404),
    (credits_spent, 429),
    (global_bucket_empty, 429),
    (provider_down, 503),
]


@pytest.mark.parametrize(("scenario", "status"), SCENARIOS, ids=[s.__name__ for s, _ in SCENARIOS])
def test_every_response_carries_the_rate_limit_headers(api, rate_limits, introspection, scenario, status):
    response = scenario(api, introspection)

    assert response.status_code == status
    assert all(name in response for name in HEADERS), f"{status} response without {HEADERS}: {dict(response.items())}"
    assert int(response["X-RateLimit-Limit"]) == 60
    assert 0 <= int(response["X-RateLimit-Remaining"]) <= 60


def test_the_headers_report_the_callers_own_pool(api, backend, introspection):
    token = introspection.issue("tok-big", api_credits_per_minute=1000)

    response = api.get("/servers", **bearer(token))

    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Cost"], response["X-RateLimit-Remaining"]) == (
        "1000",
        "3",
        "997",
    )


def test_no_headers_are_added_when_rate_limiting_is_off(api, db, settings):
    settings.RATE_LIMIT_ENABLED = False

    response = api.get("/servers")

    assert response.status_code == 200
    assert not any(name in response for name in HEADERS)
