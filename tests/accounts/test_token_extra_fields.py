"""AUTH_TOKEN_EXTRA_FIELDS_CEL adds fields to the caller; api_credits_per_minute sets the caller's pool."""

import pytest

from tests.fakes import bearer

pytestmark = pytest.mark.django_db


def test_extra_fields_computed_from_the_claims_are_shown_at_me(api, introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"organization_id": claims.org, "plan": "pro", "seats": 3}'
    token = introspection.issue("tok-alice", org="acme")

    response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert response.json()["extra"] == {"organization_id": "acme", "plan": "pro", "seats": 3}


def test_an_extra_fields_rule_that_fails_adds_nothing_but_keeps_the_token_valid(api, introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"organization_id": claims.org}'
    token = introspection.issue("tok-no-org")

    response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert response.json()["extra"] == {}


def test_an_extra_fields_rule_that_returns_no_map_adds_nothing(api, introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = "claims.sub"
    token = introspection.issue("tok-alice")

    assert api.get("/me", **bearer(token)).json()["extra"] == {}


def test_credits_per_minute_come_from_the_token_claims(api, introspection):
    token = introspection.issue("tok-big", api_credits_per_minute=500)

    assert api.get("/me", **bearer(token)).json()["credits_per_minute"] == 500


def test_credits_per_minute_come_from_the_extra_fields(api, introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"api_credits_per_minute": claims.plan == "pro" ? 1000 : 100}'
    token = introspection.issue("tok-pro", plan="pro")

    assert api.get("/me", **bearer(token)).json()["credits_per_minute"] == 1000


def test_credits_in_the_extra_fields_win_over_the_claims(api, introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"api_credits_per_minute": 250}'
    token = introspection.issue("tok-both", api_credits_per_minute=500)

    assert api.get("/me", **bearer(token)).json()["credits_per_minute"] == 250


@pytest.mark.parametrize("value", [0, -5, "lots", True, None], ids=["zero", "negative", "text", "bool", "null"])
def test_an_unusable_credits_claim_falls_back_to_the_default_pool(api, introspection, settings, value):
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    token = introspection.issue("tok-odd", api_credits_per_minute=value)

    assert api.get("/me", **bearer(token)).json()["credits_per_minute"] == 60


def test_the_pool_from_the_claims_is_the_one_the_credit_limit_uses(api, introspection, settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    token = introspection.issue("tok-big", api_credits_per_minute=500)

    response = api.get("/regions", **bearer(token))

    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "500"
    assert response["X-RateLimit-Remaining"] == "499"


def test_the_pool_from_the_extra_fields_is_the_one_the_credit_limit_uses(api, introspection, settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"api_credits_per_minute": 7}'
    token = introspection.issue("tok-small")

    response = api.get("/regions", **bearer(token))

    assert response["X-RateLimit-Limit"] == "7"
    assert response["X-RateLimit-Remaining"] == "6"
