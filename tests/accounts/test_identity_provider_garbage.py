"""An identity provider answering what JSON cannot hold, or nesting without end, is a provider error.

The answer is the documented 503 `identity_provider_unavailable` (never a 500), for opaque tokens
and for JWTs issued by the provider alike: both are introspected at the fake provider on 127.0.0.1.
"""

import jwt
import pytest

from tests.accounts.test_identity_provider_down import assert_identity_provider_unavailable
from tests.fakes import bearer

pytestmark = pytest.mark.django_db

# A JWT issued by the identity provider (not Keeper's issuer or kid): Keeper introspects it like any token.
PROVIDER_JWT = jwt.encode(
    {"iss": "https://idp.example", "sub": "alice", "exp": 4_000_000_000},
    "the-providers-own-signing-secret-32-bytes",
    algorithm="HS256",
)
TOKENS = pytest.mark.parametrize("token", ["opaque-token", PROVIDER_JWT], ids=["opaque", "jwt"])


def active(claims: str) -> bytes:
    return ('{"active": true, "sub": "alice", ' + claims + "}").encode()


@TOKENS
@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_a_credits_claim_that_is_no_finite_number_is_a_provider_error(api, introspection, token, number):
    introspection.answer_raw(token, active(f'"api_credits_per_minute": {number}'))

    assert_identity_provider_unavailable(api.get("/me", **bearer(token)))


@TOKENS
@pytest.mark.parametrize("depth", [100_000, 1_000, 40])
def test_claims_nested_without_end_are_a_provider_error(api, introspection, token, depth):
    introspection.answer_raw(token, active('"deep": ' + "[" * depth + "]" * depth))

    assert_identity_provider_unavailable(api.get("/me", **bearer(token)))


def test_an_object_nested_without_end_is_a_provider_error(api, introspection):
    token = introspection.answer_raw("tok-deep", active('"deep": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000))

    assert_identity_provider_unavailable(api.get("/me", **bearer(token)))


def test_claims_nested_a_few_levels_are_accepted(api, introspection):
    # Keycloak's roles live three levels down (resource_access.<client>.roles).
    token = introspection.issue("tok-roles", resource_access={"keeper": {"roles": [["a"]]}}, api_credits_per_minute=90)

    response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert response.json()["credits_per_minute"] == 90


def test_a_provider_error_is_not_cached(api, introspection):
    token = introspection.answer_raw("tok-odd", active('"api_credits_per_minute": Infinity'))
    assert api.get("/me", **bearer(token)).status_code == 503

    introspection.raw_responses.clear()
    introspection.issue(token, api_credits_per_minute=90)

    assert api.get("/me", **bearer(token)).json()["credits_per_minute"] == 90


@pytest.mark.parametrize("value", [1e29, 2**31, 12.5e300], ids=["1e29", "2^31", "1.25e301"])
def test_a_credits_claim_beyond_any_pool_falls_back_to_the_default_pool(api, introspection, settings, value):
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    token = introspection.issue("tok-huge", api_credits_per_minute=value)

    assert api.get("/me", **bearer(token)).json()["credits_per_minute"] == 60


@pytest.mark.parametrize("expression", ["1.0 / 0.0", "-1.0 / 0.0", "1e300 * 1e300", "0.0 / 0.0"])
def test_credits_from_the_extra_fields_that_are_not_finite_fall_back_to_the_default_pool(
    api, introspection, settings, expression
):
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"api_credits_per_minute": ' + expression + "}"
    token = introspection.issue("tok-cel")

    response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert response.json()["credits_per_minute"] == 60
