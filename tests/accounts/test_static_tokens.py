"""AUTH_STATIC_TOKENS: tokens configured with their subject (and pool), compared in constant time, never logged."""

import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.bearer import StaticTokens
from tests.fakes import bearer, run_django

pytestmark = pytest.mark.django_db

CI_TOKEN = "ci-pipeline-0123456789abcdefghijkl"
DASHBOARD_TOKEN = "dashboard-0123456789abcdefghijklmn"
STATIC = [
    {"token": CI_TOKEN, "subject": "ci", "api_credits_per_minute": 500},
    {"token": DASHBOARD_TOKEN, "subject": "dashboard"},
]


@pytest.fixture
def static_tokens(settings, no_redis) -> None:
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    settings.AUTH_STATIC_TOKENS = json.dumps(STATIC)


def test_a_static_token_is_its_subject_with_its_pool(api, static_tokens, settings):
    response = api.get("/me", **bearer(CI_TOKEN))

    assert response.status_code == 200
    me = response.json()
    assert (me["user_id"], me["auth_method"], me["credits_per_minute"]) == ("ci", "token", 500)


def test_a_static_token_without_a_pool_has_the_default_one(api, static_tokens, settings):
    response = api.get("/me", **bearer(DASHBOARD_TOKEN))

    assert response.status_code == 200
    assert response.json()["credits_per_minute"] == settings.RATE_LIMIT_CREDITS_PER_MINUTE


@pytest.mark.parametrize("token", [CI_TOKEN[:-1], CI_TOKEN + "x", CI_TOKEN.upper(), "short"])
def test_any_other_token_is_refused(api, static_tokens, token, caplog):
    with caplog.at_level(logging.DEBUG):
        response = api.get("/me", **bearer(token))

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or expired token.", "code": "invalid_token"}
    assert token not in caplog.text


def test_a_static_token_is_never_logged(api, static_tokens, caplog):
    with caplog.at_level(logging.DEBUG):
        assert api.get("/me", **bearer(CI_TOKEN)).status_code == 200

    assert CI_TOKEN not in caplog.text


def test_static_tokens_need_no_remote_service(api, static_tokens, settings, introspection, key_service_auth):
    # Every remote verifier configured and down: a static token is judged by Keeper alone.
    settings.AUTH_TOKEN_INTROSPECTION_URL = introspection.url
    introspection.stop()
    key_service_auth.stop()

    assert api.get("/me", **bearer(CI_TOKEN)).status_code == 200
    assert introspection.introspected == []
    assert key_service_auth.checked == []


@pytest.mark.parametrize(
    "value, message",
    [
        ("not json", "AUTH_STATIC_TOKENS must be a JSON array"),
        ('{"token": "x"}', "AUTH_STATIC_TOKENS must be a JSON array of {token, subject} objects"),
        ('[{"subject": "ci"}]', "AUTH_STATIC_TOKENS[0] needs a string token and a subject"),
        (json.dumps([{"token": CI_TOKEN}]), "AUTH_STATIC_TOKENS[0]: the subject must be a non-empty string"),
        (json.dumps([{"token": "too-short-secret", "subject": "ci"}]), "AUTH_STATIC_TOKENS[0] (ci): the token is"),
        (json.dumps([{"token": CI_TOKEN + " x", "subject": "ci"}]), "AUTH_STATIC_TOKENS[0] (ci): the token must be"),
        (json.dumps([{"token": "keeper_" + CI_TOKEN, "subject": "ci"}]), "tokens starting with keeper_ are Keeper's"),
        (json.dumps([{"token": CI_TOKEN, "subject": "ci", "scope": "admin"}]), "unknown field(s) scope"),
        (
            json.dumps([{"token": CI_TOKEN, "subject": "ci", "api_credits_per_minute": 0}]),
            "api_credits_per_minute must be an integer from 1",
        ),
        (json.dumps(STATIC + [{"token": CI_TOKEN, "subject": "again"}]), "AUTH_STATIC_TOKENS[2] (again): the token is"),
    ],
    ids=[
        "not-json",
        "not-a-list",
        "no-token",
        "no-subject",
        "short",
        "spaces",
        "keeper-prefix",
        "unknown-field",
        "zero-credits",
        "duplicate",
    ],
)
def test_malformed_static_tokens_are_refused_naming_the_entry_never_the_token(value, message):
    with pytest.raises(ImproperlyConfigured) as refusal:
        StaticTokens(value)

    assert message in str(refusal.value)
    assert CI_TOKEN not in str(refusal.value)


def test_keeper_does_not_start_with_malformed_static_tokens():
    value = json.dumps([{"token": "too-short-secret", "subject": "ci"}])

    result = run_django("print('started')", {"AUTH_STATIC_TOKENS": value})

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured: AUTH_STATIC_TOKENS[0] (ci): the token is shorter than 32 characters" in result.stderr
    assert "too-short-secret" not in result.stderr + result.stdout


def test_keeper_starts_with_well_formed_static_tokens():
    result = run_django(
        "from apps.accounts.bearer import get_bearer_verifiers\nprint(bool(get_bearer_verifiers().static))",
        {"AUTH_STATIC_TOKENS": json.dumps(STATIC)},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
