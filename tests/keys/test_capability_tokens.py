"""Capability tokens: issued by POST /keys/validate, verified offline with /.well-known/jwks.json by PyJWT
(an independent verifier: its own JWKS parsing and ES256 check), accepted by Keeper in place of the key
with the key's limits, and refused by Keeper at once when the key is revoked, suspended or changed.
"""

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import jwt
import pytest
import redis
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.keys import denylist
from apps.keys.bootstrap import merge_bootstrap_keys
from apps.keys.capability import forget_verified_tokens, verified_tokens
from apps.keys.choices import Scope
from apps.keys.models import ApiKey, SigningKey, TokenDenial
from apps.keys.services import Actor, IssuedKey, key_delete, key_reactivate, key_revoke, key_suspend
from apps.keys.signing import (
    ACTIVATION_DELAY_SECONDS,
    SUPERSEDED_KEY_PUBLISHED_SECONDS,
    _decrypt,
    key_set,
    signing_keys_prune,
)
from apps.throttling.models import GlobalRateLimit, RouteCost
from apps.throttling.services import reset_limiters
from tests.keys.helpers import bearer

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)
STAFF = Actor("test-staff")


# --- Helpers --------------------------------------------------------------------


def validate(api, checker, key, **body) -> dict:
    response = api.post("/keys/validate", {"key": key.value, **body}, format="json", **bearer(checker))
    assert response.status_code == 200, response.content
    return response.json()


def token_of(api, checker, key, **body) -> str:
    answer = validate(api, checker, key, **body)
    assert answer["valid"] is True, answer
    return answer["capability_token"]


def published_jwks(api) -> dict:
    response = api.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.content
    return response.json()


def verify_offline(token: str, jwks: dict, *, audience: str = "keeper-api", issuer: str = "keeper") -> dict:
    """What a backend does: pick the key by kid from the published set, verify with PyJWT."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    return jwt.decode(token, key=key, algorithms=["ES256"], audience=audience, issuer=issuer)


def segments(token: str) -> list[dict]:
    head, payload, _ = token.split(".")
    return [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (head, payload)]


def with_payload(token: str, **changes) -> str:
    """The token with its payload edited and its signature kept (a forgery)."""
    head, payload, signature = token.split(".")
    claims = {**segments(token)[1], **changes}
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{edited}.{signature}"


@pytest.fixture
def checker(make_key):
    """The gateway's own key, which validates others."""
    return make_key(name="gateway")


@pytest.fixture
def limits(settings):
    """Rate limiting on, as tests/throttling/conftest.py sets it: 60 credits, a global bucket too big to matter."""
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    settings.RATE_LIMIT_UNAUTHORIZED_PENALTY = 10
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    reset_limiters()
    return settings


# --- Issuing ----------------------------------------------------------------------


def test_validate_answers_a_valid_key_with_a_token_carrying_what_the_key_may_do(api, checker, make_key, organization):
    key = make_key(
        name="backend",
        scope=Scope.READ,
        organization=organization,
        allowed_endpoints=["/regions", "/server/*"],
        blocked_endpoints=["/server/aws/*"],
        allowed_ips=["127.0.0.0/8"],
        credits_per_minute=50,
        daily_quota=1000,
    )
    with time_machine.travel(NOW, tick=False):
        api.get("/regions", **bearer(key))
        answer = validate(api, checker, key, endpoint="/regions")

    header, claims = segments(answer["capability_token"])
    assert header == {"alg": "ES256", "kid": header["kid"], "typ": "JWT"} and header["kid"].startswith("keeper-")
    assert claims == {
        "iss": "keeper",
        "aud": "keeper-api",
        "sub": key.api_key.key_id,
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 300,
        "jti": claims["jti"],
        "owner": "alice",
        "organization": "acme",
        "scope": "read",
        "allowed_endpoints": ["/regions", "/server/*"],
        "blocked_endpoints": ["/server/aws/*"],
        "allowed_ips": ["127.0.0.0/8"],
        "credits_per_minute": 50,
        "remaining_credits": 49,
        "daily_quota": 1000,
        "remaining_quota": 999,
    }
    assert answer["capability_token_expires_at"] == "2031-03-04T12:05:00Z"
    assert (answer["remaining_credits"], answer["remaining_quota"]) == (49, 999)


def test_each_token_has_its_own_jti_starting_with_its_issue_time(api, checker, make_key):
    key = make_key()

    with time_machine.travel(NOW, tick=False):
        first, second = (segments(token_of(api, checker, key))[1]["jti"] for _ in range(2))

    assert first != second
    assert int(first[:11], 16) == int(NOW.timestamp() * 1000) == int(second[:11], 16)


@pytest.mark.parametrize(("ttl", "lifetime"), [(None, 300), (1, 1), (60, 60), (3600, 3600)])
def test_ttl_seconds_sets_the_lifetime(api, checker, make_key, ttl, lifetime):
    key = make_key()
    body = {} if ttl is None else {"ttl_seconds": ttl}

    claims = segments(token_of(api, checker, key, **body))[1]

    assert claims["exp"] - claims["iat"] == lifetime


@pytest.mark.parametrize("ttl", [0, -5, 3601, "soon", 1.5, None])
def test_a_ttl_outside_1_to_3600_seconds_is_a_400_naming_it(api, checker, make_key, ttl):
    key = make_key()

    response = api.post("/keys/validate", {"key": key.value, "ttl_seconds": ttl}, format="json", **bearer(checker))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["ttl_seconds"]


def test_a_token_never_outlives_its_key(api, checker, make_key):
    with time_machine.travel(NOW, tick=False):
        key = make_key(expires_at=NOW + timedelta(seconds=120))
        claims = segments(token_of(api, checker, key, ttl_seconds=3600))[1]

    assert claims["exp"] == int(NOW.timestamp()) + 120


def test_an_invalid_or_invisible_key_gets_no_token(api, checker, make_key, bob):
    suspended = make_key(name="suspended")
    key_suspend(suspended.api_key, actor=STAFF)
    bobs = make_key(bob, name="bobs")

    for key in (suspended, bobs):
        answer = validate(api, checker, key)
        assert (answer["valid"], answer["capability_token"], answer["capability_token_expires_at"]) == (
            False,
            None,
            None,
        )


# --- Verified offline with the published keys -------------------------------------


def test_the_published_key_set_verifies_the_token(api, checker, make_key):
    key = make_key()
    token = token_of(api, checker, key)

    response = api.get("/.well-known/jwks.json")
    claims = verify_offline(token, response.json())

    assert claims["sub"] == key.api_key.key_id
    assert response["Cache-Control"] == f"public, max-age={ACTIVATION_DELAY_SECONDS}"
    assert [jwk["kid"] for jwk in response.json()["keys"]] == [segments(token)[0]["kid"]]
    assert set(response.json()["keys"][0]) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_a_backend_fetching_the_key_set_over_http_verifies_the_token(live_server, make_key):
    """PyJWKClient: what a backend runs, fetching /.well-known/jwks.json from a live Keeper."""
    from rest_framework.test import APIClient

    checker, key = make_key(name="gateway"), make_key(name="backend")
    token = token_of(APIClient(), checker, key)

    client = jwt.PyJWKClient(f"{live_server.url}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key, algorithms=["ES256"], audience="keeper-api", issuer="keeper")

    assert (claims["sub"], claims["owner"]) == (key.api_key.key_id, "alice")


def test_a_token_expires(api, checker, make_key):
    key = make_key()
    with time_machine.travel(NOW, tick=False):
        token = token_of(api, checker, key, ttl_seconds=60)
        jwks = published_jwks(api)
        assert api.get("/me", **bearer(token)).status_code == 200

    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        assert verify_offline(token, jwks)["sub"] == key.api_key.key_id
        assert api.get("/me", **bearer(token)).status_code == 200
    with time_machine.travel(NOW + timedelta(seconds=60), tick=False):
        with pytest.raises(jwt.ExpiredSignatureError):
            verify_offline(token, jwks)
        refused = api.get("/me", **bearer(token))

    assert refused.status_code == 401
    assert refused.json() == {"detail": "This capability token has expired.", "code": "invalid_capability_token"}
    assert refused["WWW-Authenticate"] == 'Bearer realm="keeper"'


def test_the_audience_is_checked_offline_and_at_keeper(api, checker, make_key, settings):
    key = make_key()
    token = token_of(api, checker, key)
    jwks = published_jwks(api)

    with pytest.raises(jwt.InvalidAudienceError):
        verify_offline(token, jwks, audience="another-service")
    assert api.get("/me", **bearer(token)).status_code == 200
    settings.KEEPER_TOKEN_AUDIENCE = "another-service"
    refused = api.get("/me", **bearer(token))

    assert refused.status_code == 401
    assert refused.json()["detail"] == "This capability token is not for 'another-service'."


def test_the_issuer_is_checked(api, checker, make_key, settings):
    key = make_key()
    token = token_of(api, checker, key)
    settings.KEEPER_TOKEN_ISSUER = "another-keeper"

    refused = api.get("/me", **bearer(token))

    assert (refused.status_code, refused.json()["detail"]) == (
        401,
        "This capability token was not issued by this Keeper.",
    )


# --- Tampering: refused by Keeper, never sent to the identity provider ----------------


def forgeries(token: str) -> dict[str, str]:
    header, claims = segments(token)
    stranger = ec.generate_private_key(ec.SECP256R1())
    unsigned = jwt.api_jws.PyJWS(algorithms=["none"])
    return {
        "payload edited (scope)": with_payload(token, scope="admin"),
        "payload edited (exp)": with_payload(token, exp=claims["exp"] + 86400),
        "payload edited (endpoints)": with_payload(token, allowed_endpoints=[]),
        "alg none": unsigned.encode(
            json.dumps(claims).encode(), key=None, algorithm="none", headers={"kid": header["kid"]}
        ),
        "another key, same kid": jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": header["kid"]}),
        "another key, its own kid": jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "keeper-x"}),
        # Algorithm confusion: an HMAC keyed with the published key must not pass for Keeper's signature.
        "HS256 keyed with the public key": _hs256(claims, header["kid"]),
        "signature cut": token.rsplit(".", 1)[0] + ".",
        "garbage signature": token.rsplit(".", 1)[0] + ".AAAA",
    }


def _hs256(claims: dict, kid: str) -> str:
    """An HS256 token keyed with the published public key (PyJWT refuses to make one, so by hand)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    public = json.dumps(key_set.published()[0].as_jwk()).encode()
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())}"


def test_a_tampered_token_is_refused_offline_and_at_keeper_and_never_introspected(
    api, checker, make_key, introspection
):
    key = make_key()
    token = token_of(api, checker, key)
    jwks = published_jwks(api)
    assert api.get("/me", **bearer(token)).status_code == 200

    outcomes = {}
    for label, forged in forgeries(token).items():
        with pytest.raises((jwt.PyJWTError, KeyError)):  # KeyError: a kid the published set does not have
            verify_offline(forged, jwks)
        response = api.get("/me", **bearer(forged))
        outcomes[label] = (response.status_code, response.json()["code"])

    assert outcomes == {label: (401, "invalid_capability_token") for label in outcomes}
    assert introspection.introspected == []


def test_another_issuers_jwt_is_left_to_the_identity_provider(api, introspection):
    other = jwt.encode(
        {"iss": "https://idp.example", "sub": "tom"}, "an identity provider's own secret, 32+ bytes", algorithm="HS256"
    )
    introspection.issue(other, sub="tom")

    response = api.get("/me", **bearer(other))

    assert (response.status_code, response.json()["auth_method"]) == (200, "token")
    assert introspection.introspected == [other]


def test_a_keeper_jwt_is_judged_even_without_an_identity_provider(api, checker, make_key):
    token = token_of(api, checker, make_key())

    response = api.get("/me", **bearer(with_payload(token, scope="admin")))

    assert (response.status_code, response.json()["code"]) == (401, "invalid_capability_token")


# --- Accepted by Keeper in place of the key ---------------------------------------------


def test_keeper_accepts_the_token_as_the_key(api, checker, make_key):
    key = make_key(scope=Scope.WRITE)
    token = token_of(api, checker, key)

    me = api.get("/me", **bearer(token))
    regions = api.get("/regions", **bearer(token))

    assert me.status_code == 200, me.content
    assert (me.json()["user_id"], me.json()["auth_method"], me.json()["scope"]) == (
        "alice",
        "capability_token",
        "write",
    )
    assert regions.status_code == 200


def test_the_token_is_refused_on_the_key_management_api_and_config(api, checker, make_key):
    token = token_of(api, checker, make_key(scope=Scope.ADMIN))

    for method, path in [("get", "/keys"), ("post", "/keys/validate"), ("get", "/config"), ("patch", "/config")]:
        response = getattr(api, method)(path, {}, format="json", **bearer(token))
        assert (response.status_code, response.json()["code"]) == (403, "capability_token_forbidden"), path


def test_the_keys_endpoint_and_ip_restrictions_apply_to_its_token(api, checker, make_key):
    endpoints = make_key(name="endpoints", allowed_endpoints=["/regions"])
    ips = make_key(name="ips", allowed_ips=["10.0.0.0/8"])
    by_endpoint = token_of(api, checker, endpoints, endpoint="/regions")
    by_ip = token_of(api, checker, ips, ip="10.1.2.3")

    assert api.get("/regions", **bearer(by_endpoint)).status_code == 200
    refused = api.get("/me", **bearer(by_endpoint))
    assert (refused.status_code, refused.json()["detail"]) == (403, "This API key may not call /me.")
    assert api.get("/me", REMOTE_ADDR="10.9.9.9", **bearer(by_ip)).status_code == 200
    refused = api.get("/me", **bearer(by_ip))
    assert (refused.status_code, refused.json()["detail"]) == (403, "This API key may not be used from 127.0.0.1.")


def test_the_tokens_requests_are_charged_to_the_keys_pool(api, checker, make_key, limits):
    key = make_key(credits_per_minute=5)
    token = token_of(api, checker, key)

    statuses = [api.get("/regions", **bearer(credential)).status_code for credential in (key, token, key, token)]
    last = api.get("/regions", **bearer(token))
    by_token = api.get("/regions", **bearer(token))
    by_key = api.get("/regions", **bearer(key))

    assert statuses == [200, 200, 200, 200]
    assert (last.status_code, last["X-RateLimit-Limit"], last["X-RateLimit-Remaining"]) == (200, "5", "0")
    assert (by_token.status_code, by_key.status_code) == (429, 429)
    assert by_token.json()["detail"].startswith("Credit limit exceeded")


def test_the_tokens_requests_count_against_the_keys_daily_quota(api, checker, make_key, limits):
    RouteCost.objects.create(route="/regions", cost=2)
    key = make_key(daily_quota=5)
    token = token_of(api, checker, key)

    statuses = [api.get("/regions", **bearer(token)).status_code for _ in range(2)]
    refused = api.get("/regions", **bearer(key))
    again = validate(api, checker, key)

    assert statuses == [200, 200]
    assert refused.status_code == 429 and refused.json()["detail"].startswith("Daily quota of 5 credits used up")
    assert segments(again["capability_token"])[1]["remaining_quota"] == 1


def test_an_organizations_pool_is_shared_by_its_keys_tokens(api, checker, make_key, organization, limits):
    organization.credits_per_minute = 3
    organization.save()
    first, second = make_key(name="one", organization=organization), make_key(name="two", organization=organization)
    tokens = [token_of(api, checker, first), token_of(api, checker, second)]

    statuses = [api.get("/regions", **bearer(token)).status_code for token in (*tokens, *tokens)]

    assert statuses == [200, 200, 200, 429]


def test_the_tokens_requests_are_counted_in_the_keys_usage(api, checker, make_key, settings):
    from apps.keys.models import KeyUsageDay
    from apps.keys.usage import usage_buffer

    key = make_key()
    token = token_of(api, checker, key)
    for _ in range(3):
        api.get("/regions", **bearer(token))
    usage_buffer.flush()

    assert KeyUsageDay.objects.get(key=key.api_key).requests == 3


# --- Refused at Keeper at once when the key changes ---------------------------------------


def warm(api, token: str) -> None:
    """Used once, so the token sits in this process's verified cache: the refusal must not depend on a miss."""
    assert api.get("/me", **bearer(token)).status_code == 200
    assert verified_tokens._entries


def test_revoking_the_key_refuses_its_tokens_at_once(api, checker, make_key):
    key = make_key()
    token = token_of(api, checker, key)
    warm(api, token)

    key_revoke(ApiKey.objects.get(pk=key.api_key.pk), actor=STAFF)
    refused = api.get("/me", **bearer(token))

    assert refused.status_code == 401
    assert refused.json() == {"detail": "This API key has been revoked.", "code": "invalid_capability_token"}


def test_revoking_through_the_api_refuses_its_tokens_at_once(api, checker, make_key):
    key = make_key(scope=Scope.WRITE)
    token = token_of(api, checker, key)
    warm(api, token)

    revoked = api.post(f"/keys/{key.api_key.key_id}/revoke", {}, format="json", **bearer(key))

    assert revoked.status_code == 200
    assert api.get("/regions", **bearer(token)).status_code == 401


def test_suspending_refuses_the_tokens_and_reactivating_does_not_bring_them_back(api, checker, make_key):
    key = make_key()
    before = token_of(api, checker, key)
    warm(api, before)

    key_suspend(ApiKey.objects.get(pk=key.api_key.pk), actor=STAFF)
    suspended = api.get("/me", **bearer(before))
    key_reactivate(ApiKey.objects.get(pk=key.api_key.pk), actor=STAFF)
    after = token_of(api, checker, key)

    assert (suspended.status_code, suspended.json()["detail"]) == (401, "This API key is suspended.")
    assert api.get("/me", **bearer(before)).status_code == 401
    assert api.get("/me", **bearer(after)).status_code == 200


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"allowed_endpoints": ["/regions"]}, True),
        ({"allowed_ips": ["10.0.0.0/8"]}, True),
        ({"credits_per_minute": 7}, True),
        ({"scope": "read"}, True),
        ({"name": "renamed"}, False),
        ({"description": "just words"}, False),
    ],
)
def test_changing_what_the_key_may_do_refuses_its_earlier_tokens(api, checker, make_key, change, refused):
    key = make_key(scope=Scope.WRITE)
    token = token_of(api, checker, key)
    warm(api, token)

    assert api.patch(f"/keys/{key.api_key.key_id}", change, format="json", **bearer(key)).status_code == 200
    response = api.get("/me", REMOTE_ADDR="10.0.0.1", **bearer(token))

    if refused:
        assert response.status_code == 401
        assert response.json()["detail"].startswith("The API key changed after this capability token was issued")
    else:
        assert response.status_code == 200


def test_rotating_or_deleting_the_key_refuses_its_tokens(api, checker, make_key):
    rotated, deleted = make_key(name="rotated", scope=Scope.WRITE), make_key(name="deleted")
    rotated_token, deleted_token = token_of(api, checker, rotated), token_of(api, checker, deleted)

    api.post(f"/keys/{rotated.api_key.key_id}/rotate", {"grace_period_seconds": 600}, format="json", **bearer(rotated))
    key_delete(ApiKey.objects.get(pk=deleted.api_key.pk), actor=STAFF)

    assert api.get("/me", **bearer(rotated_token)).status_code == 401
    refused = api.get("/me", **bearer(deleted_token))
    assert (refused.status_code, refused.json()["detail"]) == (401, "This API key has been deleted.")


def test_a_bootstrap_key_leaving_keeper_api_keys_takes_its_tokens_with_it(api, make_key, settings):
    checker = make_key(name="staff-gateway", scope=Scope.ADMIN)  # sees every key, the bootstrap user's too
    value = "bootstrap-gateway-key-0123456789-abcdef"
    settings.KEEPER_API_KEYS = [{"key": value, "name": "gateway-ops", "scope": "read"}]
    merge_bootstrap_keys()
    bootstrap = IssuedKey(ApiKey.objects.get(name="gateway-ops"), value)
    token = token_of(api, checker, bootstrap)
    warm(api, token)

    settings.KEEPER_API_KEYS = []
    merge_bootstrap_keys()  # the next start-up, without it
    refused = api.get("/me", **bearer(token))

    assert (refused.status_code, refused.json()["detail"]) == (
        401,
        "This API key is not listed in KEEPER_API_KEYS at present.",
    )


def test_the_deny_list_is_read_from_the_database_where_every_process_sees_it(api, checker, make_key):
    """Another process's revocation is a row; this process must see it on the next request, cache or not."""
    key = make_key()
    token = token_of(api, checker, key)
    warm(api, token)

    TokenDenial.objects.create(
        key_id=key.api_key.key_id,
        not_before_ms=segments(token)[1]["iat"] * 1000 + 999_999,
        reason="revoked",
        expires_at=datetime.now(UTC) + timedelta(hours=2),
    )

    assert api.get("/me", **bearer(token)).status_code == 401


def test_a_token_issued_after_a_revocation_cannot_exist_and_one_from_just_before_is_refused(api, checker, make_key):
    """The issue time is taken before the key is read: a token whose key was read just before the revocation
    carries an earlier time than the deny entry."""
    key = make_key()
    with time_machine.travel(NOW, tick=False):
        token = token_of(api, checker, key)
        key_revoke(ApiKey.objects.get(pk=key.api_key.pk), actor=STAFF)
        refused = api.get("/me", **bearer(token))

    assert refused.status_code == 401
    assert denylist.key_tokens_denial(key.api_key.key_id).not_before_ms == int(NOW.timestamp() * 1000)


def test_deny_entries_expire_after_the_longest_token_lifetime(api, checker, make_key):
    key = make_key()
    with time_machine.travel(NOW, tick=False):
        key_suspend(ApiKey.objects.get(pk=key.api_key.pk), actor=STAFF)
    with time_machine.travel(NOW + timedelta(seconds=denylist.KEPT_SECONDS - 1), tick=False):
        assert denylist.key_tokens_denial(key.api_key.key_id) is not None
    with time_machine.travel(NOW + timedelta(seconds=denylist.KEPT_SECONDS), tick=False):
        assert denylist.key_tokens_denial(key.api_key.key_id) is None
        # Pruned by the next write.
        other = make_key(name="other")
        key_suspend(ApiKey.objects.get(pk=other.api_key.pk), actor=STAFF)

    assert list(TokenDenial.objects.values_list("key_id", flat=True)) == [other.api_key.key_id]


def test_lowering_the_organizations_pool_reaches_its_keys_tokens_at_once(api, checker, make_key, organization, limits):
    """The token draws from the pool its key draws from now, not the one it was first verified with."""
    organization.credits_per_minute = 1000
    organization.save()
    key = make_key(organization=organization)
    token = token_of(api, checker, key)
    warm(api, token)

    organization.credits_per_minute = 3
    organization.save()
    by_token = [api.get("/regions", **bearer(token)) for _ in range(3)]
    by_key = api.get("/regions", **bearer(key))

    assert [answer["X-RateLimit-Limit"] for answer in by_token] == ["3", "3", "3"]
    # The pool of 3 holds the warm-up's request and two of these: the token is refused as its key is.
    assert [answer.status_code for answer in by_token] == [200, 200, 429]
    assert by_key.status_code == 429


def test_a_new_organization_pool_size_reaches_tokens_issued_before(api, checker, make_key, organization, limits):
    key = make_key(organization=organization)  # no organization pool yet: it draws from alice's
    token = token_of(api, checker, key)
    warm(api, token)

    organization.credits_per_minute = 2
    organization.save()
    by_token = [api.get("/regions", **bearer(token)) for _ in range(3)]

    assert [answer["X-RateLimit-Limit"] for answer in by_token] == ["2", "2", "2"]
    assert [answer.status_code for answer in by_token] == [200, 200, 429]


@pytest.mark.parametrize("deleted", ["owner", "organization"])
def test_deleting_the_keys_owner_or_organization_refuses_its_tokens(api, make_key, make_user, organization, deleted):
    """Deleted by the ORM, as any path deletes them (the admin refuses while they have keys): the keys go too."""
    checker = make_key(name="staff-gateway", scope=Scope.ADMIN)  # sees carol's key too
    owner = make_user("carol")
    key = make_key(owner, organization=organization)
    other = make_key(name="unrelated")  # alice's, in no organization
    token, other_token = token_of(api, checker, key), token_of(api, checker, other)
    warm(api, token)
    warm(api, other_token)

    (owner if deleted == "owner" else organization).delete()
    refused = api.get("/regions", **bearer(token))

    assert (refused.status_code, refused.json()) == (
        401,
        {"detail": "This API key has been deleted.", "code": "invalid_capability_token"},
    )
    assert api.get("/regions", **bearer(other_token)).status_code == 200


def test_an_owners_new_name_reaches_the_tokens_of_their_keys(api, checker, make_key):
    key = make_key()
    token = token_of(api, checker, key)
    warm(api, token)

    owner = key.api_key.owner
    owner.username = "alice-renamed"
    owner.save()
    me = api.get("/me", **bearer(token))

    assert (me.status_code, me.json()["user_id"]) == (200, "alice-renamed")


# --- With Redis refusing writes -----------------------------------------------------------
# The deny list is the database's alone (apps/keys/denylist.py): whatever Redis accepts, refuses or
# answers, a change counts at once and stays counted.


class WriteRefusingRedis:
    """The test Redis made to answer reads and refuse writes, as `CONFIG SET maxmemory 1` under noeviction does."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.before = {name: client.config_get(name)[name] for name in ("maxmemory", "maxmemory-policy")}

    def refuse_writes(self) -> None:
        self.client.config_set("maxmemory-policy", "noeviction")
        self.client.config_set("maxmemory", 1)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            self.client.set("probe-write", "refused")
        self.client.get("probe-read")  # reads still work

    def heal(self) -> None:
        for name, value in self.before.items():
            self.client.config_set(name, value)
        self.client.set("probe-write", "accepted")


@pytest.fixture
def write_refusing_redis(redis_cache) -> Iterator[WriteRefusingRedis]:
    server = WriteRefusingRedis(redis_cache)
    yield server
    server.heal()


# Each through the API with the key itself, as an owner would (a suspension is PATCH status).
CHANGES = {
    "revoke": ("post", "/revoke", {}),
    "suspend": ("patch", "", {"status": "suspended"}),
    "rotate": ("post", "/rotate", {"grace_period_seconds": 600}),
    "limits": ("patch", "", {"credits_per_minute": 7}),
}


@pytest.mark.redis
@pytest.mark.parametrize("change", list(CHANGES))
def test_with_redis_refusing_writes_a_change_refuses_the_tokens_at_once_and_after_redis_heals(
    api, checker, make_key, write_refusing_redis, change
):
    key = make_key(scope=Scope.WRITE)
    token = token_of(api, checker, key)
    warm(api, token)  # with Redis healthy
    method, suffix, body = CHANGES[change]

    write_refusing_redis.refuse_writes()
    changed = getattr(api, method)(f"/keys/{key.api_key.key_id}{suffix}", body, format="json", **bearer(key))
    during = [api.get("/regions", **bearer(token)) for _ in range(3)]
    write_refusing_redis.heal()
    after = [api.get("/regions", **bearer(token)) for _ in range(3)]

    assert changed.status_code == 200, changed.content
    assert [answer.status_code for answer in during + after] == [401] * 6, [a.content for a in during + after]
    assert all(answer.json()["code"] == "invalid_capability_token" for answer in during + after)


# --- Rotating the signing key ----------------------------------------------------------------


def test_rotation_keeps_old_tokens_valid_until_they_expire_and_then_drops_the_old_key(api, checker, make_key):
    key = make_key()
    with time_machine.travel(NOW, tick=False):
        old_token = token_of(api, checker, key, ttl_seconds=3600)
        old_kid = segments(old_token)[0]["kid"]
        out = StringIO()
        call_command("rotate_signing_key", stdout=out)
        new_kid = SigningKey.objects.order_by("-activates_at").first().kid
        right_after = published_jwks(api)
        still_old = segments(token_of(api, checker, key))[0]["kid"]

    assert [jwk["kid"] for jwk in right_after["keys"]] == [new_kid, old_kid]
    assert still_old == old_kid  # the new key is published a minute before it signs
    assert f"New signing key {new_kid} is published now" in out.getvalue()

    takeover = NOW + timedelta(seconds=ACTIVATION_DELAY_SECONDS)
    with time_machine.travel(takeover, tick=False):
        forget_verified_tokens()
        new_token = token_of(api, checker, key, ttl_seconds=3600)
        both = published_jwks(api)
        assert segments(new_token)[0]["kid"] == new_kid
        assert verify_offline(old_token, both)["sub"] == verify_offline(new_token, both)["sub"]
        assert api.get("/me", **bearer(old_token)).status_code == 200

    with time_machine.travel(NOW + timedelta(seconds=3599), tick=False):
        assert api.get("/me", **bearer(old_token)).status_code == 200
        assert verify_offline(old_token, published_jwks(api))

    dropped_at = takeover + timedelta(seconds=SUPERSEDED_KEY_PUBLISHED_SECONDS)
    with time_machine.travel(dropped_at - timedelta(seconds=1), tick=False):
        forget_verified_tokens()
        assert [jwk["kid"] for jwk in published_jwks(api)["keys"]] == [new_kid, old_kid]
    with time_machine.travel(dropped_at, tick=False):
        forget_verified_tokens()
        after = published_jwks(api)
        assert [jwk["kid"] for jwk in after["keys"]] == [new_kid]
        assert verify_offline(token_of(api, checker, key), after)["sub"] == key.api_key.key_id
        assert signing_keys_prune() == [old_kid]

    assert list(SigningKey.objects.values_list("kid", flat=True)) == [new_kid]


def test_a_rotation_after_the_old_tokens_expired_deletes_the_old_key(api, checker, make_key):
    with time_machine.travel(NOW, tick=False):
        token_of(api, checker, make_key())
        call_command("rotate_signing_key", stdout=StringIO())
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        out = StringIO()
        call_command("rotate_signing_key", stdout=out)

    assert SigningKey.objects.count() == 2
    assert "Dropped keeper-" in out.getvalue()


def test_a_compromised_key_is_dropped_at_once_with_its_tokens(api, checker, make_key):
    key = make_key()
    token = token_of(api, checker, key)
    old_kid = segments(token)[0]["kid"]
    warm(api, token)

    call_command("rotate_signing_key", "--compromised", stdout=StringIO())
    refused = api.get("/me", **bearer(token))
    fresh = token_of(api, checker, key)

    assert refused.status_code == 401
    assert refused.json()["detail"] == "This capability token is signed by a key Keeper does not publish."
    assert old_kid not in [jwk["kid"] for jwk in published_jwks(api)["keys"]]
    assert segments(fresh)[0]["kid"] != old_kid
    assert api.get("/me", **bearer(fresh)).status_code == 200


def test_the_first_signing_key_is_made_on_first_use(api):
    assert SigningKey.objects.count() == 0

    keys = published_jwks(api)["keys"]

    assert [jwk["kid"] for jwk in keys] == list(SigningKey.objects.values_list("kid", flat=True))


# --- The private key stays private -------------------------------------------------------------


def private_forms(private_key) -> list[str]:
    """Every way the private key could be written down: the JWK `d`, DER, PEM, the scalar in hex and decimal."""
    number = private_key.private_numbers().private_value
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return [
        jwt.algorithms.ECAlgorithm.to_jwk(private_key, as_dict=True)["d"],
        base64.b64encode(der).decode(),
        base64.urlsafe_b64encode(der).decode().rstrip("="),
        pem.splitlines()[1],
        der.hex(),
        f"{number:x}",
        str(number),
    ]


def test_the_private_keys_are_in_no_response_column_query_or_log(api, checker, make_key, admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    key = make_key()
    out = StringIO()
    with CaptureQueriesContext(connection) as queries:
        answers = [
            api.post("/keys/validate", {"key": key.value}, format="json", **bearer(checker)),
            api.get("/.well-known/jwks.json"),
            api.get("/openapi.json"),
        ]
        call_command("rotate_signing_key", stdout=out)
        answers.append(api.post("/keys/validate", {"key": key.value}, format="json", **bearer(checker)))
        answers.append(admin_client.get("/admin/keys/signingkey/"))
        answers += [
            admin_client.get(f"/admin/keys/signingkey/{pk}/change/")
            for pk in SigningKey.objects.values_list("pk", flat=True)
        ]
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    rows = list(SigningKey.objects.all())
    # Each stored key is the real one (it decrypts), and none of its forms is anywhere else.
    privates = [
        serialization.load_der_private_key(_decrypt(row.private_key_encrypted, row.kid), password=None) for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM keys_signingkey")
        columns = "\n".join(str(value) for row in cursor.fetchall() for value in row)
    places = {
        "responses": "\n".join(answer.content.decode() for answer in answers) + out.getvalue(),
        "database": columns,
        "SQL sent": "\n".join(query["sql"] for query in queries),
        "logs": caplog.text,
    }

    assert len(rows) == 2 and all(row.kid in places["responses"] for row in rows)  # not vacuous
    assert "keys_signingkey" in places["SQL sent"] and "INSERT" in places["SQL sent"]
    leaked = {
        place: [form for private in privates for form in private_forms(private) if form in text]
        for place, text in places.items()
    }
    assert leaked == {place: [] for place in places}
    assert '"d"' not in answers[1].content.decode()


def test_a_stored_key_does_not_decrypt_with_another_secret(api, checker, make_key, settings):
    key = make_key()
    token_of(api, checker, key)
    settings.KEEPER_TOKEN_KEY_SECRET = "another secret"
    forget_verified_tokens()

    refused = api.post("/keys/validate", {"key": key.value}, format="json", **bearer(checker))
    call_command("rotate_signing_key", stdout=StringIO())
    forget_verified_tokens()
    again = validate(api, checker, key)

    assert refused.status_code == 503
    assert refused.json()["code"] == "signing_key_unavailable"
    assert refused["Retry-After"] == "60"
    assert again["capability_token"]
