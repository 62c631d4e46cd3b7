"""The JWKS server and the API key service down, against live gunicorn: JWTs signed by a key Keeper holds keep
working, tokens that need the servers get a JSON 503 with Retry-After (never a 500), and Keeper's own keys and
static tokens are not touched (README "Who is calling")."""

import json

import pytest

from tests.fakes import JWT_AUDIENCE, JWT_ISSUER, FakeJwks, FakeKeyService, public_pem, signed_jwt
from tests.live import LiveKeeper

# An imported key (KEEPER_API_KEYS), sent as X-API-Key.
KEEPER_KEY = "faults-jwks-imported-0123456789abcdefghijkl"
STATIC_TOKEN = "static-faults-0123456789abcdefghijklmnop"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_needing_a_server_that_is_down_get_a_503_and_the_others_keep_working(live_keeper):
    jwks, keys = FakeJwks(), FakeKeyService()
    jwks.start()
    keys.start()
    try:
        server = live_keeper(
            workers=1,
            api_keys=[(KEEPER_KEY, "faults-jwks", "read")],
            AUTH_JWT_JWKS_URL=jwks.url,
            AUTH_JWT_ISSUER=JWT_ISSUER,
            AUTH_JWT_AUDIENCE=JWT_AUDIENCE,
            AUTH_API_KEY_VERIFY_URL=keys.url,
            AUTH_API_KEY_TOKEN_REGEX="^sk_",
            AUTH_STATIC_TOKENS=json.dumps([{"token": STATIC_TOKEN, "subject": "faults-static"}]),
        )
        assert server.get("/me", headers=bearer(signed_jwt(sub="faults-jwt"))).json()["user_id"] == "faults-jwt"
        jwks.stop()
        keys.stop()

        answers = {
            "known key": server.get("/me", headers=bearer(signed_jwt("ec", "ec-1", sub="faults-ec"))),
            "new kid": server.get("/me", headers=bearer(signed_jwt(kid="rsa-new"))),
            "service key": server.get("/me", headers=bearer("sk_faults")),
            "keeper key": server.get("/me", headers={"X-API-Key": KEEPER_KEY}),
            "static": server.get("/me", headers=bearer(STATIC_TOKEN)),
        }
    finally:
        jwks.stop()
        keys.stop()

    assert answers["known key"].status == 200, answers["known key"].body
    for name, code in [("new kid", "jwks_unavailable"), ("service key", "api_key_service_unavailable")]:
        answer = answers[name]
        assert answer.status == 503, answer.body
        assert int(answer.headers["retry-after"]) > 0
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["code"] == code
    assert answers["keeper key"].status == 200, answers["keeper key"].body
    assert answers["keeper key"].json()["auth_method"] == "api_key"
    assert answers["static"].json()["user_id"] == "faults-static"


def test_gunicorn_does_not_start_with_a_bad_token_regex(tmp_path):
    server = LiveKeeper(
        tmp_path, catalog=None, prepare=False, AUTH_JWT_PUBLIC_KEY=public_pem("ec"), AUTH_JWT_TOKEN_REGEX="(unclosed"
    )
    assert server.manage("migrate", "-v0", AUTH_JWT_TOKEN_REGEX="").returncode == 0

    try:
        with pytest.raises(AssertionError, match="gunicorn exited"):
            server.start()
    finally:
        status, output = server.stop(), server.log.read_text()

    assert status != 0
    assert "AUTH_JWT_TOKEN_REGEX is not a valid regular expression" in output
