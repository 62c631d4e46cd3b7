"""The shared (L2) token cache in Redis, used when REDIS_URL is set: every process sees what one verified."""

import hashlib
import hmac
import json
import logging
import time

import pytest
import time_machine

from apps.accounts.verification import get_verifier, reset_verifier
from tests.fakes import bearer, closed_port, redis_cache_settings, run_django

pytestmark = pytest.mark.django_db

SALT = "l2-test-salt"


@pytest.fixture
def l2(introspection, redis_cache, settings):
    """Introspection at the fake provider, with the L2 cache in the test Redis."""
    settings.AUTH_TOKEN_CACHE_SALT = SALT
    settings.AUTH_TOKEN_CACHE_L1_TTL_SECONDS = 60
    settings.AUTH_TOKEN_CACHE_L2_TTL_SECONDS = 300
    settings.AUTH_TOKEN_CACHE_NEGATIVE_TTL_SECONDS = 5
    return introspection


def token_keys(redis_client) -> list[str]:
    return sorted(key.decode() for key in redis_client.keys("*auth:token:*"))


def test_a_verified_token_is_found_by_another_process_while_the_provider_is_down(api, l2, redis_url):
    token = l2.issue("tok-shared", sub="alice", api_credits_per_minute=120)
    unseen = l2.issue("tok-never-verified", sub="bob")
    assert api.get("/me", **bearer(token)).status_code == 200
    l2.stop()

    result = run_django(
        "import json\n"
        "from apps.accounts.verification import IdentityProviderUnavailable, get_verifier\n"
        "verifier = get_verifier()\n"
        f"verdict = verifier.verify({token!r})\n"
        "try:\n"
        f"    verifier.verify({unseen!r})\n"
        "    unseen = 'verified'\n"
        "except IdentityProviderUnavailable:\n"
        "    unseen = 'provider down'\n"
        "print(json.dumps({'valid': verdict.valid, 'user_id': verdict.user_id,"
        " 'credits': verdict.credits_per_minute, 'unseen': unseen}))\n",
        {
            "AUTH_TOKEN_INTROSPECTION_URL": l2.url,
            "AUTH_CLIENT_ID": l2.client_id,
            "AUTH_CLIENT_SECRET": l2.client_secret,
            "AUTH_TOKEN_CACHE_SALT": SALT,
            "REDIS_URL": redis_url,
        },
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "valid": True,
        "user_id": "alice",
        "credits": 120,
        "unseen": "provider down",
    }
    assert l2.introspected == [token]


def test_a_new_verifier_in_this_process_reads_the_token_from_redis(api, l2):
    token = l2.issue("tok-shared")
    api.get("/me", **bearer(token))

    reset_verifier()  # as after a restart: L1 is empty
    response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert l2.introspected == [token]


def test_redis_keys_are_hmacs_of_the_token_and_hold_no_token(api, l2, redis_client):
    token = l2.issue("tok-very-secret-0123456789abcdef")

    api.get("/me", **bearer(token))

    digest = hmac.new(SALT.encode(), token.encode(), hashlib.sha256).hexdigest()
    keys = token_keys(redis_client)
    assert keys == [f"keeper:1:auth:token:{digest}"]
    assert all(token not in key for key in keys)
    assert token.encode() not in redis_client.get(keys[0])


def test_the_l1_cache_uses_the_same_hmac_keys(api, l2):
    token = l2.issue("tok-alice")

    api.get("/me", **bearer(token))

    assert list(get_verifier().l1._entries) == [hmac.new(SALT.encode(), token.encode(), hashlib.sha256).hexdigest()]


def test_a_redis_entry_expires_with_the_token(api, l2, redis_client):
    token = l2.issue("tok-short", exp=int(time.time()) + 30)

    api.get("/me", **bearer(token))

    (key,) = token_keys(redis_client)
    assert 0 < redis_client.ttl(key) <= 30


def test_a_redis_entry_is_not_used_past_the_tokens_expiry(api, l2):
    with time_machine.travel(time.time(), tick=False) as clock:
        token = l2.issue("tok-short", exp=int(time.time()) + 30)
        api.get("/me", **bearer(token))
        clock.shift(31)  # the token has expired; Redis may keep the entry a moment longer
        reset_verifier()

        response = api.get("/me", **bearer(token))

    assert response.status_code == 401
    assert response.json()["detail"] == "Token has expired."
    assert l2.introspected == [token, token]


def test_a_redis_entry_of_a_long_lived_token_lasts_the_l2_ttl(api, l2, redis_client):
    token = l2.issue("tok-long", exp=int(time.time()) + 86_400)

    api.get("/me", **bearer(token))

    (key,) = token_keys(redis_client)
    assert 290 < redis_client.ttl(key) <= 300


def test_an_invalid_token_is_cached_in_redis_for_the_negative_ttl_only(api, l2, redis_client):
    token = l2.answer("tok-revoked", {"active": False})

    assert api.get("/me", **bearer(token)).status_code == 401
    reset_verifier()
    assert api.get("/me", **bearer(token)).status_code == 401

    (key,) = token_keys(redis_client)
    assert 0 < redis_client.ttl(key) <= 5
    assert l2.introspected == [token]


def test_tokens_are_still_verified_when_the_redis_cache_is_down(api, introspection, settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/1"
    settings.CACHES = redis_cache_settings(settings.REDIS_URL)
    token = introspection.issue("tok-alice")

    with caplog.at_level(logging.WARNING, logger="apps.accounts.verification"):
        response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert "Token cache (Redis) unavailable" in caplog.text
