"""JWT access tokens, verified against a real JWKS server on 127.0.0.1 (or one configured public key)."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
import time_machine

from apps.accounts.jwt_tokens import JWKS_MIN_REFETCH_SECONDS, LEEWAY_SECONDS, MAX_JWKS_KEYS
from apps.keys.services import Actor, key_create
from tests.fakes import JWT_AUDIENCE, FakeJwks, bearer, public_jwk, public_pem, signed_jwt

pytestmark = pytest.mark.django_db


def assert_refused(response, reason: str) -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": reason, "code": "invalid_token"}


def assert_jwks_unavailable(response) -> None:
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The token issuer's signing keys (JWKS) cannot be fetched; try again later.",
        "code": "jwks_unavailable",
    }


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("key, kid", [("rsa", "rsa-1"), ("ec", "ec-1")], ids=["RS256", "ES256"])
def test_a_valid_jwt_is_accepted_as_its_subject(api, jwt_auth, key, kid):
    response = api.get("/me", **bearer(signed_jwt(key, kid, sub="dora")))

    assert response.status_code == 200
    assert response.json()["user_id"] == "dora"
    assert response.json()["auth_method"] == "token"
    assert jwt_auth.fetches == 1


def test_the_jwks_is_fetched_once_for_many_tokens(api, jwt_auth):
    for key, kid in [("rsa", "rsa-1"), ("ec", "ec-1"), ("rsa", "rsa-1")]:
        assert api.get("/me", **bearer(signed_jwt(key, kid))).status_code == 200

    assert jwt_auth.fetches == 1


def test_an_unsigned_token_alg_none_is_refused(api, jwt_auth):
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'rsa-1'})}.{b64({'sub': 'mallory', 'exp': 9999999999})}."

    assert_refused(api.get("/me", **bearer(token)), "Token is signed with an algorithm Keeper does not accept.")


def test_a_token_signed_hs256_with_the_public_key_is_refused(api, jwt_auth):
    # The classic confusion attack: the RSA public key (public, after all) used as an HMAC secret.
    payload = {"sub": "mallory", "iss": "https://issuer.test", "aud": JWT_AUDIENCE, "exp": int(time.time()) + 300}
    header = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    body = b64(payload)
    signature = hmac.new(public_pem("rsa").encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    assert_refused(api.get("/me", **bearer(token)), "Token is signed with an algorithm Keeper does not accept.")


def test_a_token_claiming_rs256_under_an_ec_key_id_is_refused(api, jwt_auth):
    assert_refused(
        api.get("/me", **bearer(signed_jwt("rsa", "ec-1"))), "Token is signed with an algorithm its key does not use."
    )


def test_a_token_signed_by_another_key_under_a_known_key_id_is_refused(api, jwt_auth):
    assert_refused(api.get("/me", **bearer(signed_jwt("rsa-forger", "rsa-1"))), "Token is invalid.")


@pytest.mark.parametrize(
    "claims, reason",
    [
        ({"aud": "another-api"}, "Token is not meant for this API (audience)."),
        ({"iss": "https://other-issuer.test"}, "Token is from another issuer."),
        ({"exp": -LEEWAY_SECONDS - 5}, "Token has expired."),
        ({"nbf": LEEWAY_SECONDS + 60}, "Token is not valid yet."),
        ({"exp": None}, "Token has no exp claim."),
        ({"sub": None}, "Token has no sub claim."),
        ({"sub": "  "}, "Token has no subject."),
    ],
    ids=["wrong-aud", "wrong-iss", "expired", "not-yet-valid", "no-exp", "no-sub", "blank-sub"],
)
def test_a_token_with_wrong_claims_is_refused(api, jwt_auth, claims, reason):
    # exp and nbf are given as seconds from now (the test may run long after collection).
    now = int(time.time())
    claims = {
        name: now + value if name in ("exp", "nbf") and value is not None else value for name, value in claims.items()
    }

    assert_refused(api.get("/me", **bearer(signed_jwt(**claims))), reason)


def test_exp_and_nbf_have_a_small_leeway(api, jwt_auth):
    now = int(time.time())
    token = signed_jwt(exp=now - LEEWAY_SECONDS // 2, nbf=now + LEEWAY_SECONDS // 2)

    assert api.get("/me", **bearer(token)).status_code == 200


def test_any_of_the_configured_audiences_is_accepted(api, jwt_auth, settings):
    settings.AUTH_JWT_AUDIENCE = ["first-api", "second-api"]

    assert api.get("/me", **bearer(signed_jwt(aud="second-api"))).status_code == 200
    assert_refused(
        api.get("/me", **bearer(signed_jwt(aud=JWT_AUDIENCE))), "Token is not meant for this API (audience)."
    )


def test_authorized_parties_are_checked_against_azp(api, jwt_auth, settings):
    settings.AUTH_JWT_AUTHORIZED_PARTIES = ["web-app", "cli"]

    assert api.get("/me", **bearer(signed_jwt(azp="cli"))).status_code == 200
    refusal = "Token was issued to a client this API does not accept (azp)."
    assert_refused(api.get("/me", **bearer(signed_jwt(azp="other-app"))), refusal)
    assert_refused(api.get("/me", **bearer(signed_jwt())), refusal)


@pytest.mark.parametrize("azp", [["cli"], {"cli": True}, 7])
def test_an_azp_that_is_no_string_is_refused(api, jwt_auth, settings, azp):
    settings.AUTH_JWT_AUTHORIZED_PARTIES = ["cli"]

    refusal = "Token was issued to a client this API does not accept (azp)."
    assert_refused(api.get("/me", **bearer(signed_jwt(azp=azp))), refusal)


def test_claims_nested_too_deep_are_refused(api, jwt_auth):
    nested: dict = {}
    for _ in range(40):
        nested = {"n": nested}

    assert_refused(api.get("/me", **bearer(signed_jwt(deep=nested))), "Token has claims nested deeper than 32 levels.")


DEEP_HEADER = base64.urlsafe_b64encode(b'{"alg": "RS256", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}").rstrip(b"=")


def test_a_header_nested_without_end_is_no_jwt_and_no_500(api, jwt_auth):
    assert_refused(api.get("/me", **bearer(f"{DEEP_HEADER.decode()}.e30.c2ln")), "Invalid or expired token.")


def test_a_header_nested_without_end_is_no_500_without_any_verifier_either(api, settings, no_redis):
    # Keeper's capability token check and the traffic counters read every bearer JWT's header too.
    settings.AUTH_TOKEN_INTROSPECTION_URL = None

    response = api.get("/me", **bearer(f"{DEEP_HEADER.decode()}.e30.c2ln"))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_an_unknown_kid_fetches_the_jwks_once_more_then_is_refused(api, jwt_auth):
    assert api.get("/me", **bearer(signed_jwt())).status_code == 200
    assert jwt_auth.fetches == 1

    assert_refused(api.get("/me", **bearer(signed_jwt(kid="rsa-2"))), "Token is signed with an unknown key.")
    assert jwt_auth.fetches == 2
    # A flood of made-up kids costs no more fetches within the interval.
    for number in range(3, 8):
        assert_refused(
            api.get("/me", **bearer(signed_jwt(kid=f"rsa-{number}"))), "Token is signed with an unknown key."
        )
    assert jwt_auth.fetches == 2


def test_a_rotated_key_is_picked_up_on_its_first_token(api, jwt_auth: FakeJwks):
    assert api.get("/me", **bearer(signed_jwt())).status_code == 200
    jwt_auth.keys = {"rsa-next": "rsa-2"}

    response = api.get("/me", **bearer(signed_jwt("rsa-next", "rsa-2")))

    assert response.status_code == 200
    assert jwt_auth.fetches == 2


def test_unknown_kids_fetch_again_after_the_interval(api, jwt_auth: FakeJwks):
    with time_machine.travel(time.time(), tick=False) as traveller:
        assert api.get("/me", **bearer(signed_jwt())).status_code == 200
        assert_refused(api.get("/me", **bearer(signed_jwt(kid="rsa-2"))), "Token is signed with an unknown key.")
        assert jwt_auth.fetches == 2
        jwt_auth.keys = {"rsa-next": "rsa-2"}

        traveller.shift(JWKS_MIN_REFETCH_SECONDS - 1)
        refused = api.get("/me", **bearer(signed_jwt("rsa-next", "rsa-2")))
        traveller.shift(2)
        accepted = api.get("/me", **bearer(signed_jwt("rsa-next", "rsa-2")))

    assert_refused(refused, "Token is signed with an unknown key.")
    assert accepted.status_code == 200
    assert jwt_auth.fetches == 3


def test_the_jwks_is_fetched_again_when_its_cache_expires(api, jwt_auth: FakeJwks, settings):
    settings.AUTH_JWT_JWKS_CACHE_TTL_SECONDS = 60
    with time_machine.travel(time.time(), tick=False) as traveller:
        assert api.get("/me", **bearer(signed_jwt())).status_code == 200
        traveller.shift(30)
        assert api.get("/me", **bearer(signed_jwt())).status_code == 200
        assert jwt_auth.fetches == 1
        traveller.shift(31)
        assert api.get("/me", **bearer(signed_jwt())).status_code == 200
        assert jwt_auth.fetches == 2


def test_a_jwks_server_that_is_down_answers_503_and_keeper_keys_still_work(api, jwt_auth, django_user_model):
    owner = django_user_model.objects.create_user(username="erin", password=None)
    issued = key_create(owner=owner, name="erin's key", actor=Actor("test-setup"))
    jwt_auth.stop()

    assert_jwks_unavailable(api.get("/me", **bearer(signed_jwt())))
    response = api.get("/me", **bearer(issued.value))
    assert response.status_code == 200
    assert response.json()["auth_method"] == "api_key"
    assert jwt_auth.fetches == 0


def test_a_jwks_server_timing_out_answers_503(api, jwt_auth, settings):
    settings.AUTH_JWT_JWKS_TIMEOUT_SECONDS = 0.2
    jwt_auth.hang()

    assert_jwks_unavailable(api.get("/me", **bearer(signed_jwt())))
    jwt_auth.release()


@pytest.mark.parametrize(
    "status, raw",
    [
        (500, None),
        (302, None),
        (200, b"<html>not json</html>"),
        (200, b'{"keys": "none"}'),
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "rsa-1"}]}'),
        (200, b'{"keys": [' + b'{"kty": "EC"},' * 300 * 1024 + b"{}]}"),
    ],
    ids=["http-500", "redirect", "not-json", "keys-not-a-list", "only-symmetric-keys", "huge"],
)
def test_a_jwks_answer_keeper_cannot_use_is_a_503(api, jwt_auth: FakeJwks, status, raw):
    jwt_auth.status = status
    jwt_auth.raw = raw

    assert_jwks_unavailable(api.get("/me", **bearer(signed_jwt())))


def test_a_jwks_with_too_many_keys_is_refused(api, jwt_auth: FakeJwks):
    jwt_auth.extra_jwks = [public_jwk("ec", f"spare-{number}") for number in range(MAX_JWKS_KEYS)]

    assert_jwks_unavailable(api.get("/me", **bearer(signed_jwt())))


def test_a_failed_refresh_keeps_the_keys_fetched_before(api, jwt_auth: FakeJwks, settings):
    settings.AUTH_JWT_JWKS_CACHE_TTL_SECONDS = 60
    with time_machine.travel(time.time(), tick=False) as traveller:
        assert api.get("/me", **bearer(signed_jwt())).status_code == 200
        jwt_auth.status = 503
        traveller.shift(61)

        assert api.get("/me", **bearer(signed_jwt())).status_code == 200
        assert jwt_auth.fetches == 2


def test_known_keys_keep_working_while_the_jwks_server_is_down(api, jwt_auth: FakeJwks):
    assert api.get("/me", **bearer(signed_jwt())).status_code == 200
    jwt_auth.stop()

    assert api.get("/me", **bearer(signed_jwt("ec", "ec-1"))).status_code == 200
    # A new kid may be a key the server would publish: unavailable, not invalid (and not asked again at once).
    assert_jwks_unavailable(api.get("/me", **bearer(signed_jwt(kid="rsa-9"))))
    assert_jwks_unavailable(api.get("/me", **bearer(signed_jwt(kid="rsa-10"))))


@pytest.fixture
def jwks_elsewhere() -> Iterator[FakeJwks]:
    server = FakeJwks()
    server.start()
    yield server
    server.stop()


def test_a_url_in_the_token_header_is_never_fetched(api, jwt_auth: FakeJwks, jwks_elsewhere: FakeJwks):
    jwks_elsewhere.keys = {"rsa-forger": "forged"}
    token = signed_jwt("rsa-forger", "forged", headers={"jku": jwks_elsewhere.url})

    assert_refused(api.get("/me", **bearer(token)), "Token is signed with an unknown key.")
    assert jwks_elsewhere.fetches == 0


def test_the_credit_pool_comes_from_the_claim(api, jwt_auth):
    response = api.get("/me", **bearer(signed_jwt(api_credits_per_minute=1234)))

    assert response.status_code == 200
    assert response.json()["credits_per_minute"] == 1234


def test_the_cel_rules_apply_to_the_claims(api, jwt_auth, settings):
    settings.AUTH_TOKEN_VALIDATION_CEL = 'claims.scope.contains("api")'
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = '{"plan": claims.plan}'

    response = api.get("/me", **bearer(signed_jwt(scope="read api", plan="pro")))
    assert response.status_code == 200
    assert response.json()["extra"] == {"plan": "pro"}
    assert_refused(api.get("/me", **bearer(signed_jwt(scope="read"))), "Token rejected by the validation rule.")


def test_a_configured_public_key_verifies_tokens_without_a_jwks(api, settings, no_redis):
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    settings.AUTH_JWT_PUBLIC_KEY = public_pem("ec").replace("\n", "\\n")
    settings.AUTH_JWT_AUDIENCE = [JWT_AUDIENCE]

    assert api.get("/me", **bearer(signed_jwt("ec", kid=None))).status_code == 200
    assert_refused(api.get("/me", **bearer(signed_jwt("ec-other", kid=None))), "Token is invalid.")
    assert_refused(
        api.get("/me", **bearer(signed_jwt("rsa", kid=None))), "Token is signed with an algorithm its key does not use."
    )


def test_a_token_that_is_no_jwt_is_refused_when_only_jwts_are_accepted(api, jwt_auth):
    assert_refused(api.get("/me", **bearer("opaque-token-value")), "Invalid or expired token.")
    assert jwt_auth.fetches == 0
