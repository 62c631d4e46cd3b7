"""Fixtures of the rate-limit tests: Keeper with RATE_LIMIT_ENABLED, on the memory or the Redis backend."""

import pytest

from apps.throttling import services
from apps.throttling.models import GlobalRateLimit


@pytest.fixture(autouse=True)
def _fresh_verifier_and_limiters(fresh_state) -> None:
    """Each test starts with empty credit pools, a full global bucket and an empty token cache."""


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 10_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def rate_limits(db, settings, no_redis):
    """Rate limiting on (memory backend), the default pool of 60 credits, and a global bucket too big to matter."""
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    settings.RATE_LIMIT_UNAUTHORIZED_PENALTY = 10
    settings.RATE_LIMIT_TRUSTED_PROXIES = []
    settings.RATE_LIMIT_ROUTE_COST_TTL_SECONDS = 5
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    return settings


@pytest.fixture(params=["memory", "redis"])
def backend(request, rate_limits) -> str:
    """Each test using it runs on both backends; the Redis run is skipped when no Redis answers."""
    if request.param == "redis":
        request.getfixturevalue("redis_cache")  # REDIS_URL and CACHES, as settings.py sets them
        rate_limits.RATE_LIMIT_BACKEND = "redis"
    return request.param


@pytest.fixture
def clock(rate_limits) -> FakeClock:
    """The clock of the memory limiters (credit pools and global bucket), injected."""
    fake = FakeClock()
    limiters = services.limiters()
    limiters.memory_credits.clock = fake
    limiters.memory_bucket.clock = fake
    return fake


def set_global_limit(*, rate_limit: float, rate_burst: int) -> None:
    services.global_limit_update(rate_limit=rate_limit, rate_burst=rate_burst)
