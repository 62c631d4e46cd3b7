"""The in-process (L1) token cache: hits skip the identity provider; size, TTL and expiry bound it."""

import hashlib
import hmac
import time

import pytest
import time_machine

from apps.accounts.verification import get_verifier
from tests.fakes import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def l1(introspection, settings):
    settings.AUTH_TOKEN_CACHE_L1_TTL_SECONDS = 60
    settings.AUTH_TOKEN_CACHE_L1_MAX_SIZE = 1000
    settings.AUTH_TOKEN_CACHE_NEGATIVE_TTL_SECONDS = 5
    return introspection


@pytest.fixture
def clock():
    with time_machine.travel(1_800_000_000, tick=False) as traveller:
        yield traveller


def test_a_second_request_with_the_same_token_does_not_call_the_identity_provider(api, l1):
    token = l1.issue("tok-alice")

    first = api.get("/me", **bearer(token))
    second = api.get("/me", **bearer(token))

    assert first.status_code == second.status_code == 200
    assert second.json()["user_id"] == "alice"
    assert l1.introspected == [token]


def test_each_token_is_introspected_once(api, l1):
    alice, bob = l1.issue("tok-alice", sub="alice"), l1.issue("tok-bob", sub="bob")

    users = [api.get("/me", **bearer(token)).json()["user_id"] for token in (alice, bob, alice, bob)]

    assert users == ["alice", "bob", "alice", "bob"]
    assert l1.introspected == [alice, bob]


def test_the_least_recently_used_token_is_evicted_when_the_cache_is_full(api, l1, settings):
    settings.AUTH_TOKEN_CACHE_L1_MAX_SIZE = 2
    a, b, c = (l1.issue(f"tok-{name}", sub=name) for name in "abc")

    for token in (a, b, a, c):  # reading a makes b the least recently used; c evicts b
        api.get("/me", **bearer(token))
    assert l1.introspected == [a, b, c]
    assert len(get_verifier().l1) == 2

    api.get("/me", **bearer(a))
    api.get("/me", **bearer(c))
    assert l1.introspected == [a, b, c]
    api.get("/me", **bearer(b))
    assert l1.introspected == [a, b, c, b]


def test_a_cached_token_is_introspected_again_after_the_l1_ttl(api, l1, clock):
    token = l1.issue("tok-alice")

    api.get("/me", **bearer(token))
    clock.shift(59)
    api.get("/me", **bearer(token))
    assert l1.introspected == [token]

    clock.shift(2)
    assert api.get("/me", **bearer(token)).status_code == 200
    assert l1.introspected == [token, token]


def test_a_revocation_is_seen_once_the_cached_verdict_expires(api, l1, clock):
    token = l1.issue("tok-alice")
    api.get("/me", **bearer(token))

    l1.answer(token, {"active": False})
    assert api.get("/me", **bearer(token)).status_code == 200
    clock.shift(61)

    assert api.get("/me", **bearer(token)).status_code == 401


def test_a_cached_token_is_not_used_past_its_expiry(api, l1, clock):
    token = l1.issue("tok-short", exp=int(time.time()) + 10)

    assert api.get("/me", **bearer(token)).status_code == 200
    clock.shift(9)
    assert api.get("/me", **bearer(token)).status_code == 200
    assert l1.introspected == [token]

    clock.shift(2)
    response = api.get("/me", **bearer(token))

    assert l1.introspected == [token, token]
    assert response.status_code == 401
    assert response.json()["detail"] == "Token has expired."


def test_an_invalid_token_is_remembered_for_the_negative_ttl_only(api, l1, clock):
    token = l1.answer("tok-revoked", {"active": False})

    assert api.get("/me", **bearer(token)).status_code == 401
    clock.shift(4)
    assert api.get("/me", **bearer(token)).status_code == 401
    assert l1.introspected == [token]

    l1.issue(token)  # re-activated at the provider
    clock.shift(2)

    assert api.get("/me", **bearer(token)).status_code == 200
    assert l1.introspected == [token, token]


def test_the_l1_cache_is_keyed_by_an_hmac_of_the_token_never_the_token(api, l1, settings):
    settings.AUTH_TOKEN_CACHE_SALT = "pepper-for-this-test"
    token = l1.issue("tok-secret-value-0123456789")

    api.get("/me", **bearer(token))

    expected = hmac.new(b"pepper-for-this-test", token.encode(), hashlib.sha256).hexdigest()
    keys = list(get_verifier().l1._entries)
    assert keys == [expected]
    assert not any(token in key for key in keys)


def test_a_different_salt_gives_different_cache_keys(l1, settings):
    first = get_verifier().cache_key("tok-alice")
    settings.AUTH_TOKEN_CACHE_SALT = "another-salt"

    assert get_verifier().cache_key("tok-alice") != first


def test_a_zero_l1_size_disables_the_l1_cache(api, l1, settings):
    settings.AUTH_TOKEN_CACHE_L1_MAX_SIZE = 0
    token = l1.issue("tok-alice")

    api.get("/me", **bearer(token))
    api.get("/me", **bearer(token))

    assert l1.introspected == [token, token]
