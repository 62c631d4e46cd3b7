"""How much a key may do: its own credits per minute, its daily quota, its organization's shared pool.

Every test runs on the memory backend and on Redis (skipped, with the reason, when no Redis answers).
"""

from datetime import UTC, datetime

import pytest
import time_machine

from apps.keys.models import ApiKey
from apps.keys.services import quota_remaining
from apps.throttling.models import RouteCost
from apps.throttling.services import reset_limiters
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

# Late in a UTC day, so the quota's reset is a minute away.
LATE = datetime(2031, 3, 4, 23, 59, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, settings, no_redis) -> str:
    """The rate-limit backend under test; Redis is the test server, flushed before and after.

    After no_redis, so a fixture clearing REDIS_URL (introspection) cannot undo this one.
    """
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    settings.RATE_LIMIT_BACKEND = request.param
    reset_limiters()
    return request.param


@pytest.fixture
def signed_in_alice(alice, settings):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(alice)
    return client


def spend(api, key, times: int, path: str = "/regions") -> list[int]:
    return [api.get(path, **bearer(key)).status_code for _ in range(times)]


# --- Credits per minute ---------------------------------------------------------


def test_a_key_over_its_credits_per_minute_gets_429_with_retry_after(api, make_key, backend):
    issued = make_key(credits_per_minute=3)

    statuses = spend(api, issued, 3)
    refused = api.get("/regions", **bearer(issued))

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert refused.json()["detail"].startswith("Credit limit exceeded")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert (refused["X-RateLimit-Limit"], refused["X-RateLimit-Remaining"]) == ("3", "0")


def test_the_pool_applies_even_with_rate_limiting_switched_off(api, make_key, backend, settings):
    settings.RATE_LIMIT_ENABLED = False
    issued = make_key(credits_per_minute=1)

    assert spend(api, issued, 2) == [200, 429]


def test_both_header_styles_draw_from_the_same_pool(api, make_key, backend):
    issued = make_key(credits_per_minute=2)

    statuses = [
        api.get("/regions", **bearer(issued)).status_code,
        api.get("/regions", **x_api_key(issued)).status_code,
        api.get("/regions", **x_api_key(issued)).status_code,
    ]

    assert statuses == [200, 200, 429]


def test_each_key_with_its_own_pool_is_limited_apart_from_its_owners_other_keys(api, make_key, backend):
    first = make_key(credits_per_minute=2)
    second = make_key(credits_per_minute=2)

    assert spend(api, first, 3) == [200, 200, 429]
    assert spend(api, second, 2) == [200, 200]


def test_a_route_costs_its_configured_credits(api, make_key, backend):
    RouteCost.objects.create(route="/regions", cost=4)
    issued = make_key(credits_per_minute=10)

    statuses = spend(api, issued, 3)
    last = api.get("/me", **bearer(issued))

    assert statuses == [200, 200, 429]
    assert (last.status_code, last["X-RateLimit-Remaining"]) == (200, "1")


# --- Daily quota ----------------------------------------------------------------


def test_a_key_over_its_daily_quota_gets_429_saying_when_the_quota_resets(api, make_key, backend):
    with time_machine.travel(LATE, tick=False):
        issued = make_key(daily_quota=3)
        statuses = spend(api, issued, 3)
        refused = api.get("/regions", **bearer(issued))

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert refused.json()["detail"].startswith("Daily quota of 3 credits used up; it resets at 2031-03-05T00:00:00Z.")
    assert refused["Retry-After"] == "60"


def test_the_daily_quota_resets_at_the_next_utc_midnight(api, make_key, backend):
    with time_machine.travel(LATE, tick=False) as clock:
        issued = make_key(daily_quota=2)
        today = spend(api, issued, 3)
        clock.move_to(datetime(2031, 3, 4, 23, 59, 59, tzinfo=UTC))
        last_second = spend(api, issued, 1)
        clock.move_to(datetime(2031, 3, 5, 0, 0, 1, tzinfo=UTC))
        tomorrow = spend(api, issued, 3)

    assert today == [200, 200, 429]
    assert last_second == [429]
    assert tomorrow == [200, 200, 429]


def test_the_daily_quota_counts_credits_not_requests(api, make_key, backend):
    RouteCost.objects.create(route="/regions", cost=5)
    issued = make_key(daily_quota=12)

    assert spend(api, issued, 3) == [200, 200, 429]
    assert spend(api, issued, 2, path="/me") == [200, 200]
    assert spend(api, issued, 1, path="/me") == [429]


def test_the_remaining_quota_is_reported_by_validate(api, make_key, backend):
    issued = make_key(daily_quota=10)
    spend(api, issued, 4)

    body = api.post("/keys/validate", {"key": issued.value}, format="json", **bearer(issued)).json()

    assert (body["daily_quota"], body["remaining_quota"]) == (10, 5)
    assert quota_remaining(ApiKey.objects.get(pk=issued.api_key.pk)) == 5


def test_a_key_without_a_daily_quota_is_not_counted(api, make_key, backend):
    issued = make_key()

    assert set(spend(api, issued, 20)) == {200}
    assert quota_remaining(issued.api_key) is None


def test_a_key_without_its_own_pool_draws_from_its_owners_pool(api, make_key, backend, settings, signed_in_alice):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 3
    first, second = make_key(), make_key()

    statuses = spend(api, first, 1) + spend(api, second, 1) + [signed_in_alice.get("/regions").status_code]
    api.logout()

    assert statuses == [200, 200, 200]
    assert spend(api, first, 1) == [429]


def test_an_identity_provider_subject_never_spends_a_local_users_pool(api, make_key, backend, settings, introspection):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 3
    namesake = introspection.issue("tok-of-another-alice", sub="alice")
    alices_key = make_key()

    by_namesake = [api.get("/regions", HTTP_AUTHORIZATION=f"Bearer {namesake}").status_code for _ in range(3)]

    assert by_namesake == [200, 200, 200]
    # The subject "alice" of the identity provider is not the local user alice (her keys are idp:alice's).
    assert spend(api, alices_key, 1) == [200]


# --- Organization pool ----------------------------------------------------------


def test_an_organizations_keys_share_its_credit_pool(api, make_key, backend, organization, bob):
    organization.credits_per_minute = 3
    organization.save()
    alices = make_key(organization=organization)
    bobs = make_key(bob, organization=organization)

    statuses = spend(api, alices, 2) + spend(api, bobs, 2) + spend(api, alices, 1)

    assert statuses == [200, 200, 200, 429, 429]


def test_a_key_with_its_own_pool_does_not_draw_from_its_organizations(api, make_key, backend, organization):
    organization.credits_per_minute = 1
    organization.save()
    shared = make_key(organization=organization)
    own = make_key(organization=organization, credits_per_minute=3)

    assert spend(api, shared, 2) == [200, 429]
    assert spend(api, own, 4) == [200, 200, 200, 429]


def test_the_organization_pool_is_reported_in_the_rate_limit_headers(api, make_key, backend, organization):
    organization.credits_per_minute = 5
    organization.save()
    issued = make_key(organization=organization)

    response = api.get("/regions", **bearer(issued))

    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("5", "4")
    assert api.get("/me", **bearer(issued)).json()["organization"] == "acme"


@pytest.mark.redis
def test_on_redis_the_pools_and_quotas_live_in_redis_for_every_process(
    api, make_key, settings, redis_url, redis_client
):
    settings.REDIS_URL = redis_url
    settings.RATE_LIMIT_BACKEND = "redis"
    reset_limiters()
    with time_machine.travel(LATE, tick=False):
        issued = make_key(credits_per_minute=5, daily_quota=100)
        spend(api, issued, 2)

    key_id = issued.api_key.key_id
    assert redis_client.zcard(f"keeper:credits:key:{key_id}") == 2
    assert redis_client.get(f"keeper:count:quota:{key_id}:20310304") == b"2"
    # Another process (a fresh limiter) sees the same pool.
    reset_limiters()
    assert spend(api, issued, 4) == [200, 200, 200, 429]
