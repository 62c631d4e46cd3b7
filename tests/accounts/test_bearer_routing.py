"""Which verifier sees a bearer token: regexes first (API key, JWT, introspection), then the others; the
configuration is checked when Keeper starts."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.bearer import BearerVerifiers
from apps.keys.services import Actor, key_create
from tests.fakes import FakeIdentityProvider, FakeJwks, FakeKeyService, bearer, public_pem, run_django, signed_jwt

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_verifier(settings, introspection: FakeIdentityProvider, jwt_auth: FakeJwks, key_service_auth: FakeKeyService):
    """Introspection, JWTs and the key service, all configured (the fixtures' settings, introspection's URL again)."""
    settings.AUTH_TOKEN_INTROSPECTION_URL = introspection.url
    return introspection, jwt_auth, key_service_auth


def test_without_regexes_a_token_goes_to_every_verifier_until_one_accepts(api, every_verifier):
    idp, jwks, keys = every_verifier
    token = idp.issue("opaque-idp-token", sub="frank")

    response = api.get("/me", **bearer(token))

    assert response.status_code == 200
    assert response.json()["user_id"] == "frank"
    assert keys.checked == [token]  # asked first, said no
    assert idp.introspected == [token]
    assert jwks.fetches == 0  # not a JWT: no keys needed


def test_the_first_verifier_to_accept_wins(api, every_verifier):
    idp, jwks, keys = every_verifier
    token = keys.grant("opaque-shared-token", subject="from-key-service")
    idp.issue(token, sub="from-idp")

    response = api.get("/me", **bearer(token))

    assert response.json()["user_id"] == "from-key-service"
    assert idp.introspected == []


def test_a_token_a_later_verifier_accepted_is_not_sent_to_the_earlier_ones_again(api, every_verifier, settings):
    idp, jwks, keys = every_verifier
    settings.AUTH_TOKEN_CACHE_NEGATIVE_TTL_SECONDS = 0  # the key service's "no" is not remembered
    token = idp.issue("opaque-idp-token", sub="frank")
    assert api.get("/me", **bearer(token)).status_code == 200
    keys.hang()  # were it asked again, the request would wait for its timeout and the call would be recorded

    response = api.get("/me", **bearer(token))
    keys.release()

    assert response.json()["user_id"] == "frank"
    assert (keys.checked, idp.introspected) == ([token], [token])


def test_a_token_matching_a_regex_goes_to_that_verifier_first(api, every_verifier, settings):
    idp, jwks, keys = every_verifier
    settings.AUTH_TOKEN_INTROSPECTION_REGEX = r"^idp_"
    token = idp.issue("idp_0123", sub="frank")
    keys.grant(token, subject="someone-else")

    response = api.get("/me", **bearer(token))

    assert response.json()["user_id"] == "frank"
    assert keys.checked == []


def test_a_verifier_with_a_regex_never_sees_other_tokens(api, every_verifier, settings):
    idp, jwks, keys = every_verifier
    settings.AUTH_API_KEY_TOKEN_REGEX = r"^sk_"
    token = idp.issue("opaque-idp-token", sub="frank")

    assert api.get("/me", **bearer(token)).status_code == 200
    assert api.get("/me", **bearer("sk_unknown")).status_code == 401

    assert keys.checked == ["sk_unknown"]
    assert idp.introspected == [token, "sk_unknown"]


def test_routing_by_regex_keeps_jwts_from_the_identity_provider(api, every_verifier, settings):
    idp, jwks, keys = every_verifier
    settings.AUTH_JWT_TOKEN_REGEX = r"^eyJ"
    settings.AUTH_TOKEN_INTROSPECTION_REGEX = r"^idp_"
    settings.AUTH_API_KEY_TOKEN_REGEX = r"^sk_"
    token = signed_jwt(sub="gina")

    assert api.get("/me", **bearer(token)).json()["user_id"] == "gina"
    assert api.get("/me", **bearer(signed_jwt(aud="another-api"))).status_code == 401
    assert api.get("/me", **bearer("no-verifier-matches-this")).status_code == 401

    assert (idp.introspected, keys.checked) == ([], [])


def test_an_opaque_token_is_served_while_the_jwks_server_is_down(api, every_verifier):
    idp, jwks, keys = every_verifier
    jwks.stop()
    token = idp.issue("opaque-idp-token", sub="frank")

    assert api.get("/me", **bearer(token)).status_code == 200


def test_a_jwt_no_other_verifier_accepts_is_a_503_while_the_jwks_server_is_down(api, every_verifier):
    idp, jwks, keys = every_verifier
    jwks.stop()

    response = api.get("/me", **bearer(signed_jwt()))

    assert response.status_code == 503
    assert response.json()["code"] == "jwks_unavailable"


def test_keeper_api_keys_never_reach_these_verifiers(api, every_verifier, django_user_model):
    idp, jwks, keys = every_verifier
    owner = django_user_model.objects.create_user(username="hank", password=None)
    issued = key_create(owner=owner, name="hank's key", actor=Actor("test-setup"))

    response = api.get("/me", **bearer(issued.value))

    assert response.status_code == 200
    assert response.json()["auth_method"] == "api_key"
    assert (idp.introspected, keys.checked, jwks.fetches) == ([], [], 0)


def test_bearer_tokens_are_ignored_when_no_verifier_is_configured(api, settings, no_redis):
    settings.AUTH_TOKEN_INTROSPECTION_URL = None

    # The token is not judged at all: /me answers as to an anonymous caller.
    response = api.get("/me", **bearer("anything"))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "configuration, message",
    [
        ({"AUTH_JWT_TOKEN_REGEX": "[", "AUTH_JWT_PUBLIC_KEY": "ec"}, "AUTH_JWT_TOKEN_REGEX is not a valid regular"),
        (
            {"AUTH_TOKEN_INTROSPECTION_REGEX": "(?P<", "AUTH_TOKEN_INTROSPECTION_URL": "http://127.0.0.1:9/"},
            "AUTH_TOKEN_INTROSPECTION_REGEX is not a valid regular expression",
        ),
        ({"AUTH_JWT_ISSUER": "https://issuer.test"}, "AUTH_JWT_ISSUER is set but neither AUTH_JWT_JWKS_URL nor"),
        ({"AUTH_JWT_AUDIENCE": ["keeper-api"]}, "AUTH_JWT_AUDIENCE is set but neither"),
        ({"AUTH_JWT_AUTHORIZED_PARTIES": ["cli"]}, "AUTH_JWT_AUTHORIZED_PARTIES is set but neither"),
        ({"AUTH_JWT_TOKEN_REGEX": "^eyJ"}, "AUTH_JWT_TOKEN_REGEX is set but neither"),
        (
            {"AUTH_JWT_JWKS_URL": "https://issuer.test/jwks", "AUTH_JWT_PUBLIC_KEY": "ec"},
            "Set AUTH_JWT_JWKS_URL or AUTH_JWT_PUBLIC_KEY, not both",
        ),
        ({"AUTH_JWT_JWKS_URL": "file:///etc/jwks.json"}, "AUTH_JWT_JWKS_URL must be an http(s) URL"),
        ({"AUTH_JWT_PUBLIC_KEY": "not a key"}, "AUTH_JWT_PUBLIC_KEY is not a PEM public key"),
        ({"AUTH_API_KEY_VERIFY_BEARER": "s3cret"}, "AUTH_API_KEY_VERIFY_BEARER is set but AUTH_API_KEY_VERIFY_URL"),
        ({"AUTH_API_KEY_TOKEN_REGEX": "^sk_"}, "AUTH_API_KEY_TOKEN_REGEX is set but AUTH_API_KEY_VERIFY_URL is not"),
        ({"AUTH_API_KEY_VERIFY_URL": "ftp://keys.test/verify"}, "AUTH_API_KEY_VERIFY_URL must be an http(s) URL"),
        ({"AUTH_TOKEN_INTROSPECTION_REGEX": "^idp_"}, "AUTH_TOKEN_INTROSPECTION_REGEX is set but AUTH_TOKEN_INTRO"),
    ],
    ids=[
        "bad-jwt-regex",
        "bad-introspection-regex",
        "issuer-alone",
        "audience-alone",
        "azp-alone",
        "jwt-regex-alone",
        "jwks-and-public-key",
        "jwks-not-http",
        "public-key-not-pem",
        "key-service-bearer-alone",
        "key-service-regex-alone",
        "key-service-not-http",
        "introspection-regex-alone",
    ],
)
def test_a_bad_or_half_configuration_is_refused(settings, configuration, message):
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    for name, value in configuration.items():
        setattr(settings, name, public_pem("ec") if value == "ec" else value)

    with pytest.raises(ImproperlyConfigured) as refusal:
        BearerVerifiers()

    assert message in str(refusal.value)


def test_a_weak_rsa_public_key_is_refused(settings):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    settings.AUTH_JWT_PUBLIC_KEY = weak.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()

    with pytest.raises(ImproperlyConfigured, match="RSA key of at least 2048 bits"):
        BearerVerifiers()


def test_keeper_does_not_start_with_a_bad_regex():
    result = run_django(
        "print('started')", {"AUTH_API_KEY_VERIFY_URL": "http://127.0.0.1:9/verify", "AUTH_API_KEY_TOKEN_REGEX": "[a-"}
    )

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured: AUTH_API_KEY_TOKEN_REGEX is not a valid regular expression" in result.stderr


def test_keeper_starts_with_every_verifier_configured():
    result = run_django(
        "from apps.accounts.bearer import get_bearer_verifiers\n"
        "print([method.name for method in get_bearer_verifiers().methods])",
        {
            "AUTH_TOKEN_INTROSPECTION_URL": "http://127.0.0.1:9/introspect",
            "AUTH_CLIENT_ID": "keeper",
            "AUTH_CLIENT_SECRET": "s3cret",
            "AUTH_JWT_JWKS_URL": "http://127.0.0.1:9/jwks.json",
            "AUTH_JWT_ISSUER": "https://issuer.test",
            "AUTH_JWT_AUDIENCE": "keeper-api, other-api",
            "AUTH_API_KEY_VERIFY_URL": "http://127.0.0.1:9/verify",
            "AUTH_API_KEY_TOKEN_REGEX": "^sk_",
        },
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['api_key', 'jwt', 'introspection']"
