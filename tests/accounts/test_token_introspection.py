"""Bearer tokens are checked by RFC 7662 introspection at AUTH_TOKEN_INTROSPECTION_URL."""

import time

import pytest

from tests.fakes import FakeIdentityProvider, bearer

pytestmark = pytest.mark.django_db


def test_an_active_token_with_a_subject_identifies_the_caller(api, introspection):
    token = introspection.issue("tok-alice", sub="alice")

    response = api.get("/me", **bearer(token))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "user_id": "alice",
        "auth_method": "token",
        "credits_per_minute": 60,
        "is_staff": False,
        "scope": None,
        "organization": None,
        "extra": {},
    }


def test_the_token_is_posted_with_the_client_credentials_in_http_basic(api, introspection):
    token = introspection.issue("tok-alice")

    api.get("/me", **bearer(token))

    assert [(call.token, call.client_authenticated) for call in introspection.calls] == [(token, True)]


def test_a_token_with_a_future_expiry_is_valid(api, introspection):
    token = introspection.issue("tok-fresh", exp=int(time.time()) + 3600)

    assert api.get("/me", **bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "response",
    [
        pytest.param({"active": False}, id="inactive"),
        pytest.param({"active": False, "sub": "alice"}, id="inactive-with-subject"),
        pytest.param({"active": "true", "sub": "alice"}, id="active-as-the-string-true"),
        pytest.param({"active": 1, "sub": "alice"}, id="active-as-the-number-1"),
        pytest.param({"sub": "alice"}, id="active-missing"),
        pytest.param({"active": True}, id="subject-missing"),
        pytest.param({"active": True, "sub": ""}, id="subject-empty"),
        pytest.param({"active": True, "sub": "   "}, id="subject-blank"),
        pytest.param({"active": True, "sub": 42}, id="subject-not-a-string"),
        pytest.param({"active": True, "sub": "alice", "exp": 1_000_000_000}, id="expired"),
        pytest.param({"active": True, "sub": "alice", "exp": "tomorrow"}, id="expiry-malformed"),
    ],
)
def test_a_token_is_invalid_unless_active_is_exactly_true_with_a_subject_and_no_past_expiry(
    api, introspection, response
):
    token = introspection.answer("tok-questionable", response)

    response = api.get("/me", **bearer(token))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_an_invalid_token_is_answered_401_with_www_authenticate_bearer_and_a_json_error(api, introspection):
    token = introspection.answer("tok-revoked", {"active": False})

    response = api.get("/me", **bearer(token))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Token is not active.", "code": "invalid_token"}


def test_an_invalid_token_is_refused_even_on_an_open_endpoint(api, introspection):
    token = introspection.answer("tok-revoked", {"active": False})

    assert api.get("/regions", **bearer(token)).status_code == 401


def test_a_request_without_a_token_is_anonymous_and_me_answers_401(api, introspection):
    response = api.get("/me")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"
    assert introspection.calls == []


def test_bearer_tokens_are_ignored_when_no_introspection_url_is_set(api, idp: FakeIdentityProvider, settings):
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    token = idp.issue("tok-alice")

    assert api.get("/regions", **bearer(token)).status_code == 200
    assert api.get("/me", **bearer(token)).status_code == 401
    assert idp.calls == []


def test_keeper_api_keys_are_not_sent_to_the_identity_provider(api, introspection):
    api.get("/regions", **bearer("keeper_not-an-idp-token"))

    assert introspection.calls == []


def test_a_non_bearer_authorization_header_is_not_introspected(api, introspection):
    response = api.get("/regions", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")

    assert response.status_code == 200
    assert introspection.calls == []
