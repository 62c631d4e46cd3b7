"""The global token bucket over all callers together: rate_limit per second, rate_burst at once."""

import pytest

from apps.throttling.models import GlobalRateLimit
from tests.fakes import bearer
from tests.throttling.conftest import set_global_limit


@pytest.mark.django_db
def test_the_bucket_defaults_to_100_per_second_with_a_burst_of_20():
    limit = GlobalRateLimit.current()

    assert (limit.rate_limit, limit.rate_burst) == (100.0, 20)


def test_a_burst_beyond_the_bucket_is_refused_with_429_and_retry_after(api, backend):
    set_global_limit(rate_limit=0.001, rate_burst=5)

    statuses = [api.get("/regions").status_code for _ in range(5)]
    refused = api.get("/regions")

    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["code"] == "throttled"
    assert refused.json()["detail"].startswith("The API is receiving too many requests overall")
    assert 990 <= int(refused["Retry-After"]) <= 1000  # one token at 0.001/s


def test_the_bucket_is_shared_by_every_caller(api, backend, introspection):
    set_global_limit(rate_limit=0.001, rate_burst=3)
    alice = introspection.issue("tok-alice", sub="alice")

    statuses = [
        api.get("/regions", REMOTE_ADDR="192.0.2.1").status_code,
        api.get("/regions", REMOTE_ADDR="192.0.2.2").status_code,
        api.get("/regions", **bearer(alice)).status_code,
        api.get("/regions", REMOTE_ADDR="192.0.2.3").status_code,
    ]

    assert statuses == [200, 200, 200, 429]


def test_a_request_refused_by_the_bucket_spends_no_credits(api, backend):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    assert api.get("/servers").status_code == 200
    assert api.get("/servers").status_code == 429

    set_global_limit(rate_limit=1e6, rate_burst=1000)  # refilled within a microsecond

    assert api.get("/servers")["X-RateLimit-Remaining"] == "54"


def test_the_bucket_refills_at_the_rate(api, rate_limits, clock):
    set_global_limit(rate_limit=2, rate_burst=2)
    api.get("/regions")
    api.get("/regions")

    refused = api.get("/regions")
    clock.advance(0.5)
    after_half_a_second = api.get("/regions")

    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert after_half_a_second.status_code == 200
    assert api.get("/regions").status_code == 429


def test_the_bucket_does_not_fill_beyond_its_burst(api, rate_limits, clock):
    set_global_limit(rate_limit=10, rate_burst=3)
    clock.advance(3600)

    statuses = [api.get("/regions").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_the_bucket_is_off_when_rate_limiting_is_off(api, rate_limits):
    rate_limits.RATE_LIMIT_ENABLED = False
    set_global_limit(rate_limit=0.001, rate_burst=1)

    assert [api.get("/regions").status_code for _ in range(3)] == [200, 200, 200]
