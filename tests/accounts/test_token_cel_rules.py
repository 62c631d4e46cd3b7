"""AUTH_TOKEN_VALIDATION_CEL: a boolean CEL expression on {"claims": ...} that a token must satisfy."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.verification import TokenVerifier, get_verifier
from tests.fakes import CLIENT_ID, CLIENT_SECRET, bearer, run_django

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule(introspection, settings):
    def set_rule(expression: str) -> None:
        settings.AUTH_TOKEN_VALIDATION_CEL = expression

    return set_rule


def test_a_token_the_rule_accepts_is_valid(api, introspection, rule):
    rule('claims.client_id == "dashboard" && "read" in claims.scopes')
    token = introspection.issue("tok-dashboard", client_id="dashboard", scopes=["openid", "read"])

    assert api.get("/me", **bearer(token)).json()["user_id"] == "alice"


def test_a_token_the_rule_refuses_is_invalid(api, introspection, rule):
    rule('claims.client_id == "dashboard"')
    token = introspection.issue("tok-other-app", client_id="other-app")

    response = api.get("/me", **bearer(token))

    assert response.status_code == 401
    assert response.json() == {"detail": "Token rejected by the validation rule.", "code": "invalid_token"}


@pytest.mark.parametrize("expression", ["claims.sub", "1", "claims", "[true]"], ids=["string", "int", "map", "list"])
def test_a_rule_that_does_not_return_a_boolean_makes_the_token_invalid(api, introspection, rule, expression):
    rule(expression)
    token = introspection.issue("tok-alice")

    assert api.get("/me", **bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "expression",
    ['claims.tenant == "acme"', "1 / 0 == 1", 'claims.sub + 1 == "x"'],
    ids=["missing-claim", "division-by-zero", "type-error"],
)
def test_a_rule_that_fails_to_evaluate_makes_the_token_invalid(api, introspection, rule, expression):
    rule(expression)
    token = introspection.issue("tok-alice")

    assert api.get("/me", **bearer(token)).status_code == 401


def test_a_rule_with_a_syntax_error_is_refused_when_the_verifier_is_built(introspection, rule):
    rule('claims.sub == "alice" &&')

    with pytest.raises(ImproperlyConfigured, match="AUTH_TOKEN_VALIDATION_CEL"):
        get_verifier()
    with pytest.raises(ImproperlyConfigured, match="AUTH_TOKEN_VALIDATION_CEL"):
        TokenVerifier()


def test_an_extra_fields_rule_with_a_syntax_error_is_refused_when_the_verifier_is_built(introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"org": claims.org'

    with pytest.raises(ImproperlyConfigured, match="AUTH_TOKEN_EXTRA_FIELDS_CEL"):
        get_verifier()


def test_a_rule_with_a_syntax_error_stops_keeper_from_starting():
    result = run_django(
        "print('started')",
        {
            "AUTH_TOKEN_INTROSPECTION_URL": "http://127.0.0.1:9/introspect",
            "AUTH_CLIENT_ID": CLIENT_ID,
            "AUTH_CLIENT_SECRET": CLIENT_SECRET,
            "AUTH_TOKEN_VALIDATION_CEL": "claims.active ==",
        },
    )

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured: AUTH_TOKEN_VALIDATION_CEL is not a valid CEL expression" in result.stderr
