"""The admin's password sign-in: failures limited per client address and per user name, refused attempts
hash no password, unknown names cost what known ones do, and the admin's POSTs are charged as API requests."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher

from apps.throttling import services
from apps.throttling.models import RouteCost
from apps.throttling.throttles import GlobalTokenBucketThrottle
from tests.throttling.conftest import FakeClock, set_global_limit

LOGIN = "/admin/login/"
PASSWORD = "a-long-password"
LIMIT = 5
WINDOW = 900


class CountingHasher(MD5PasswordHasher):
    """Django's MD5 hasher (fast), counting every password it hashes or checks."""

    algorithm = "counting_md5"
    runs = 0

    def encode(self, password: str, salt: str) -> str:
        CountingHasher.runs += 1
        return super().encode(password, salt)


@pytest.fixture
def hashes(settings) -> type[CountingHasher]:
    settings.PASSWORD_HASHERS = ["tests.throttling.test_admin_login.CountingHasher"]
    CountingHasher.runs = 0
    return CountingHasher


@pytest.fixture(params=["memory", "redis"])
def login_limits(request, db, settings, no_redis, hashes):
    """The sign-in limits (5 failures in 15 minutes), counted in memory or in Redis; credit limits off."""
    settings.KEEPER_LOGIN_FAILURE_LIMIT = LIMIT
    settings.KEEPER_LOGIN_FAILURE_WINDOW_SECONDS = WINDOW
    settings.RATE_LIMIT_ENABLED = False
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_TRUSTED_PROXIES = []
    if request.param == "redis":
        request.getfixturevalue("redis_cache")
        settings.RATE_LIMIT_BACKEND = "redis"
    return request.param


@pytest.fixture
def staff(db, django_user_model, hashes):
    user = django_user_model.objects.create_user("admin", password=PASSWORD, is_staff=True, is_superuser=True)
    hashes.runs = 0
    return user


def sign_in(client, username: str, password: str, address: str = "192.0.2.1"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def assert_refused(response) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "login_throttled"
    assert "Too many failed sign-ins" in body["detail"]
    assert 0 < int(response["Retry-After"]) <= WINDOW
    assert "_auth_user_id" not in response.wsgi_request.session


def assert_signed_in(response) -> None:
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == "/admin/"


def test_failures_from_one_address_lock_that_address_out(client, login_limits, staff):
    failures = [sign_in(client, f"guess-{n}", "wrong").status_code for n in range(LIMIT)]

    assert failures == [200] * LIMIT  # the form again, saying the name or password is wrong
    assert_refused(sign_in(client, "another-guess", "wrong"))
    assert_refused(sign_in(client, "admin", PASSWORD))
    assert_signed_in(sign_in(client, "admin", PASSWORD, address="192.0.2.2"))


def test_failures_for_one_name_lock_it_out_from_every_address(client, login_limits, staff, django_user_model):
    django_user_model.objects.create_user("colleague", password=PASSWORD, is_staff=True)
    for n in range(LIMIT):
        assert sign_in(client, "admin", "wrong", address=f"198.51.100.{n}").status_code == 200

    # The right password too, from an address that never failed: the name is locked.
    assert_refused(sign_in(client, "admin", PASSWORD, address="203.0.113.9"))
    assert_refused(sign_in(client, "ADMIN", PASSWORD, address="203.0.113.9"))
    assert_signed_in(sign_in(client, "colleague", PASSWORD, address="198.51.100.0"))


def test_refused_attempts_are_not_counted_and_the_lockout_ends_with_the_window(client, settings, db, no_redis, staff):
    settings.KEEPER_LOGIN_FAILURE_LIMIT = LIMIT
    settings.KEEPER_LOGIN_FAILURE_WINDOW_SECONDS = WINDOW
    settings.RATE_LIMIT_BACKEND = "memory"
    clock = FakeClock()
    services.limiters().memory_login_failures.clock = clock
    for _ in range(LIMIT):
        sign_in(client, "admin", "wrong")
        clock.advance(10)

    clock.advance(WINDOW - 10 * LIMIT - 1)
    refused = sign_in(client, "admin", PASSWORD)
    clock.advance(2)  # the first failure has left the window; the refused attempt counted for nothing

    assert_refused(refused)
    assert refused["Retry-After"] == "1"
    assert_signed_in(sign_in(client, "admin", PASSWORD))


def test_a_refused_attempt_hashes_no_password_and_an_unknown_name_hashes_one_as_a_known_name_does(
    client, login_limits, staff, hashes
):
    sign_in(client, "admin", "wrong", address="192.0.2.10")
    known = hashes.runs
    sign_in(client, "nobody-by-this-name", "wrong", address="192.0.2.11")
    unknown = hashes.runs - known

    assert known == unknown == 1
    for n in range(LIMIT):
        sign_in(client, "nobody-by-this-name", "wrong", address=f"192.0.2.{20 + n}")
        sign_in(client, "admin", "wrong", address=f"192.0.2.{30 + n}")
    before = hashes.runs
    answers = [sign_in(client, "admin", PASSWORD), sign_in(client, "nobody-by-this-name", PASSWORD)]

    for answer in answers:
        assert_refused(answer)
    assert hashes.runs == before


# --- the admin's POSTs pay like API requests --------------------------------------------------------


def charged(response) -> tuple[int, int]:
    return int(response["X-RateLimit-Cost"]), int(response["X-RateLimit-Remaining"])


def test_a_sign_in_costs_its_route_from_the_address_pool(client, api, backend, staff):
    RouteCost.objects.create(route=LOGIN, cost=7)

    answer = sign_in(client, "admin", "wrong", address="192.0.2.1")

    assert answer.status_code == 200
    assert charged(answer) == (7, 60 - 7)
    assert charged(api.get("/regions", REMOTE_ADDR="192.0.2.1")) == (1, 60 - 7 - 1)
    assert charged(api.get("/regions", REMOTE_ADDR="192.0.2.2")) == (1, 59)


def test_an_empty_pool_refuses_the_admin_post_before_any_password_is_hashed(client, backend, staff, hashes):
    RouteCost.objects.create(route=LOGIN, cost=60)
    sign_in(client, "admin", "wrong")
    before = hashes.runs

    refused = sign_in(client, "admin", PASSWORD)

    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert charged(refused) == (60, 0)
    assert hashes.runs == before


def test_anonymous_admin_posts_take_a_token_of_the_global_bucket(client, backend, staff, hashes):
    set_global_limit(rate_limit=0.001, rate_burst=1)

    first = sign_in(client, "admin", "wrong")
    before = hashes.runs
    second = sign_in(client, "admin", PASSWORD)

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json() == {
        "detail": f"{GlobalTokenBucketThrottle.detail} Expected available in {second['Retry-After']} seconds.",
        "code": "throttled",
    }
    assert hashes.runs == before


def test_a_signed_in_staff_users_admin_posts_pay_from_their_own_pool_past_an_empty_bucket(client, api, backend, staff):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    api.get("/regions", REMOTE_ADDR="192.0.2.1")  # the bucket's one token
    client.force_login(staff)

    answer = client.post("/admin/logout/", REMOTE_ADDR="192.0.2.1")

    assert answer.status_code == 302  # signed out, sent on
    assert charged(answer) == (1, 59)
    assert services.consume_credits("user:admin", 0, 60).remaining == 59
    assert services.consume_credits("ip:192.0.2.1", 0, 60).remaining == 59
