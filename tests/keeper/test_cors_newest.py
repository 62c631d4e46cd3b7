"""CORS and the early refusals as the newest Spare Cores API serves them (NEWEST-API.md, "Middleware, headers,
caching"): the rate-limit headers exposed, Authorization allowed, preflights free of charge, and 401s and 429s
that a browser can read (CORS) and that no cache keeps (`Cache-Control: private, no-store`)."""

import pytest

from apps.throttling.models import GlobalRateLimit

ORIGIN = "https://sparecores.com"
# What the newest API exposes and allows (NEWEST-API.md), and what Keeper adds of its own.
NEWEST_EXPOSED = {"x-total-count", "retry-after", "x-ratelimit-limit", "x-ratelimit-cost", "x-ratelimit-remaining"}
KEEPER_EXPOSED = {"etag", "x-request-id"}
NEWEST_ALLOWED = {"authorization", "sentry-trace", "baggage", "x-application-id"}
KEEPER_ALLOWED = {"x-api-key"}
NO_STORE = "private, no-store"
POOL = 12


def header_set(value: str) -> set[str]:
    return {name.strip().lower() for name in value.split(",")}


def assert_readable_and_not_stored(response) -> None:
    """What a browser on another origin needs to read a refusal, and what keeps caches from storing it."""
    assert response["Access-Control-Allow-Origin"] == "*"
    assert NEWEST_EXPOSED | KEEPER_EXPOSED <= header_set(response["Access-Control-Expose-Headers"])
    assert response["Cache-Control"] == NO_STORE
    assert response["Content-Type"] == "application/json"


@pytest.fixture
def limits(db, settings, fresh_state, no_redis):
    """Credit limits on (memory backend): a pool of POOL credits, a global bucket too big to matter."""
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = POOL
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    settings.RATE_LIMIT_UNAUTHORIZED_PENALTY = 10
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    return settings


def preflight(api, path: str = "/servers"):
    return api.options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, sentry-trace, baggage, x-application-id, x-api-key",
    )


def test_answers_expose_the_rate_limit_headers_and_retry_after(db, api):
    response = api.get("/regions", HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert NEWEST_EXPOSED | KEEPER_EXPOSED == header_set(response["Access-Control-Expose-Headers"])


def test_a_preflight_allows_authorization_and_is_cacheable_for_as_long_as_browsers_keep_it(db, api, settings):
    response = preflight(api)

    assert response.status_code == 200
    assert response.content == b""
    assert response["Access-Control-Allow-Origin"] == "*"
    assert NEWEST_ALLOWED | KEEPER_ALLOWED <= header_set(response["Access-Control-Allow-Headers"])
    assert response["Access-Control-Max-Age"] == str(settings.CORS_PREFLIGHT_MAX_AGE)
    assert response["Cache-Control"] == f"public, max-age={settings.CORS_PREFLIGHT_MAX_AGE}"


def test_preflights_cost_no_credits(limits, api):
    answers = [preflight(api, path) for path in ("/servers", "/regions", "/me", "/nowhere") * POOL]

    charged = api.get("/regions", HTTP_ORIGIN=ORIGIN)

    assert {answer.status_code for answer in answers} == {200}
    assert not any(answer.has_header("X-RateLimit-Remaining") for answer in answers)
    assert charged.status_code == 200
    assert int(charged["X-RateLimit-Remaining"]) == POOL - int(charged["X-RateLimit-Cost"])


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/me", {}), ("/regions", {"HTTP_X_API_KEY": "not-a-key"})],
)
def test_a_401_is_json_readable_across_origins_and_never_stored(limits, api, path, headers):
    response = api.get(path, HTTP_ORIGIN=ORIGIN, **headers)

    assert response.status_code == 401
    assert set(response.json()) >= {"detail", "code"}
    assert_readable_and_not_stored(response)
    # The route's cost and the penalty of a 401, reported so the caller can see what it spent.
    cost = limits.RATE_LIMIT_DEFAULT_CREDIT_COST + limits.RATE_LIMIT_UNAUTHORIZED_PENALTY
    assert response["X-RateLimit-Cost"] == str(cost)
    assert response["X-RateLimit-Remaining"] == str(POOL - cost)


def test_a_429_of_the_middleware_is_json_readable_across_origins_with_retry_after(limits, api):
    # Unknown URLs are charged by the middleware (they reach no view): one credit each.
    answers = [api.get("/nowhere", HTTP_ORIGIN=ORIGIN) for _ in range(POOL + 1)]

    refused = answers[-1]
    assert [answer.status_code for answer in answers] == [404] * POOL + [429]
    assert refused.json()["code"] == "throttled"
    assert_readable_and_not_stored(refused)
    assert int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Remaining"] == "0"


def test_a_429_of_a_view_is_json_readable_across_origins_with_retry_after(limits, api):
    answers = [api.get("/regions", HTTP_ORIGIN=ORIGIN) for _ in range(POOL + 1)]

    refused = answers[-1]
    assert [answer.status_code for answer in answers] == [200] * POOL + [429]
    assert refused.json()["code"] == "throttled"
    assert_readable_and_not_stored(refused)
    assert int(refused["Retry-After"]) >= 1


def test_a_request_costing_more_than_the_whole_pool_is_refused_without_retry_after(limits, api):
    limits.RATE_LIMIT_CREDITS_PER_MINUTE = 2  # /servers costs more (3, seeded as upstream)

    refused = api.get("/servers", HTTP_ORIGIN=ORIGIN)

    cost, limit = int(refused["X-RateLimit-Cost"]), int(refused["X-RateLimit-Limit"])
    assert refused.status_code == 429
    assert cost > limit == 2
    assert refused.json() == {
        "detail": (
            f"Credit limit exceeded: request cost ({cost} credits) is higher than the credit limit "
            f"({limit} credits per minute)."
        ),
        "code": "throttled",
    }
    assert not refused.has_header("Retry-After")
    assert_readable_and_not_stored(refused)
    # Nothing was spent: a request that fits is still served.
    assert api.get("/regions").status_code == 200


def test_early_refusals_through_gunicorn_are_readable_across_origins_and_never_stored(live_keeper):
    # X-Forwarded-For from a trusted proxy names the caller: the test's requests have a pool of their own,
    # untouched by the readiness checks (which may see any answer, a 429 too).
    server = live_keeper(
        workers=1,
        catalog=None,
        ready_path="/nowhere",
        ready_status=None,
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_CREDITS_PER_MINUTE=str(POOL),
        RATE_LIMIT_UNAUTHORIZED_PENALTY="10",
        RATE_LIMIT_TRUSTED_PROXIES="127.0.0.1",
    )
    caller = {"Origin": ORIGIN, "X-Forwarded-For": "203.0.113.7"}
    asking = {**caller, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}

    allowed = server.request("OPTIONS", "/servers", headers=asking)
    unauthorized = server.get("/regions", headers={**caller, "X-API-Key": "not-a-key"})  # 1 + 10 credits
    spent = server.get("/nowhere", headers=caller)  # the last credit
    refused = server.get("/nowhere", headers=caller)
    still_allowed = server.request("OPTIONS", "/servers", headers=asking)

    assert allowed.status == still_allowed.status == 200
    assert "authorization" in header_set(allowed.headers["access-control-allow-headers"])
    assert allowed.headers["cache-control"].startswith("public, max-age=")
    assert "x-ratelimit-remaining" not in allowed.headers
    assert (unauthorized.status, spent.status, refused.status) == (401, 404, 429)
    for answer in (unauthorized, refused):
        assert answer.headers["access-control-allow-origin"] == "*"
        assert NEWEST_EXPOSED <= header_set(answer.headers["access-control-expose-headers"])
        assert answer.headers["cache-control"] == NO_STORE
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) >= {"detail", "code"}
    assert unauthorized.headers["x-ratelimit-cost"] == "11"
    assert refused.json()["code"] == "throttled"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
