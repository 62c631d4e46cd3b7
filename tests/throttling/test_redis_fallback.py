"""With RATE_LIMIT_BACKEND=redis and Redis down, each process limits in memory (and says so in the log).

Daily quotas fall back to the database instead: see test_daily_quota_storage.py.
"""

import logging

import pytest

from tests.fakes import closed_port
from tests.throttling.conftest import set_global_limit


@pytest.fixture
def redis_down(rate_limits):
    rate_limits.RATE_LIMIT_BACKEND = "redis"
    rate_limits.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/1"
    return rate_limits


def test_requests_are_still_served_and_the_fallback_is_logged(api, redis_down, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.throttling.limiters"):
        response = api.get("/servers")

    assert response.status_code == 200
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("60", "57")
    warnings = [r for r in caplog.records if r.name == "apps.throttling.limiters" and r.levelno == logging.WARNING]
    assert warnings
    assert "Redis unavailable" in warnings[0].getMessage()
    assert "memory" in warnings[0].getMessage()


def test_the_memory_fallback_still_limits_credits(api, redis_down):
    redis_down.RATE_LIMIT_CREDITS_PER_MINUTE = 6

    statuses = [api.get("/servers").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_memory_fallback_still_limits_the_global_bucket(api, redis_down):
    set_global_limit(rate_limit=0.001, rate_burst=2)

    assert [api.get("/regions").status_code for _ in range(3)] == [200, 200, 429]


def test_the_fallback_is_not_logged_on_every_request(api, redis_down, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.throttling.limiters"):
        for _ in range(5):
            api.get("/regions")

    assert len([r for r in caplog.records if r.name == "apps.throttling.limiters"]) == 1
