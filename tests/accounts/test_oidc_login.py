"""Staff sign-in to the admin through OpenID Connect, against a fake provider on 127.0.0.1.

The provider is a real HTTP server (token and userinfo endpoints), so the
library's HTTP client, the id_token signature and nonce checks all run; the
test plays the browser, following the redirect to the provider and back.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

CLIENT_ID = "keeper-admin"
CLIENT_SECRET = "a-client-secret-long-enough-for-hs256-signing"
BACKENDS = ["apps.accounts.oidc.StaffOIDCBackend", "django.contrib.auth.backends.ModelBackend"]
User = get_user_model()


@dataclass
class FakeProvider:
    """What the provider will answer, and what it was asked."""

    port: int = 0
    claims: dict[str, Any] = field(default_factory=dict)
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    nonce: str = ""
    token_status: int = 200
    token_requests: list[dict[str, str]] = field(default_factory=list)
    userinfo_authorizations: list[str] = field(default_factory=list)
    # JSON text json.dumps cannot write (too deep): added to the id_token as claim "deep", or sent as userinfo.
    id_token_deep_claim: bytes = b""
    userinfo_body: bytes = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def id_token(self) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "sub": self.claims["sub"],
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce,
            **self.id_token_claims,
        }
        if not self.id_token_deep_claim:
            return jwt.encode(payload, CLIENT_SECRET, algorithm="HS256")
        # Signed by hand: PyJWT would serialize the claims with json.dumps.
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64url(json.dumps(payload).encode()[:-1] + b', "deep": ' + self.id_token_deep_claim + b"}")
        signature = hmac.new(CLIENT_SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _ProviderHandler(BaseHTTPRequestHandler):
    def __init__(self, *args: Any, provider: FakeProvider, **kwargs: Any):
        self.provider = provider
        super().__init__(*args, **kwargs)

    def do_POST(self) -> None:
        if self.path != "/token":
            return self._answer(404, {"error": "not_found"})
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.provider.token_requests.append({key: values[0] for key, values in parse_qs(body).items()})
        if self.provider.token_status != 200:
            return self._answer(self.provider.token_status, {"error": "invalid_grant"})
        self._answer(
            200,
            {
                "access_token": "access-token-1",
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.provider.id_token(),
            },
        )

    def do_GET(self) -> None:
        if self.path != "/userinfo":
            return self._answer(404, {"error": "not_found"})
        self.provider.userinfo_authorizations.append(self.headers.get("Authorization", ""))
        self._answer(200, self.provider.userinfo_body or self.provider.claims)

    def _answer(self, status: int, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    state = FakeProvider(
        claims={
            "sub": "0b6f3c1e-1",
            "preferred_username": "alice",
            "email": "alice@example.com",
            "given_name": "Alice",
            "family_name": "Liddell",
            "groups": ["keeper-staff", "engineering"],
        }
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_ProviderHandler, provider=state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def oidc(settings, provider: FakeProvider) -> FakeProvider:
    """OIDC configured against the fake provider, as keeper/settings.py would with OIDC_RP_CLIENT_ID set."""
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SIGN_ALGO = "HS256"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider.url}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider.url}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider.url}/userinfo"
    settings.AUTHENTICATION_BACKENDS = BACKENDS
    return provider


def start_sign_in(client: Client, provider: FakeProvider) -> dict[str, str]:
    """GET /oidc/authenticate/ and return the query sent to the provider; the provider will echo the nonce."""
    response = client.get("/oidc/authenticate/", {"next": "/admin/"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.url}/authorize"
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    provider.nonce = query["nonce"]
    return query


def sign_in(client: Client, provider: FakeProvider) -> Any:
    """The whole flow: to the provider, and back to the callback with a code."""
    query = start_sign_in(client, provider)
    return client.get("/oidc/callback/", {"code": "abc", "state": query["state"]})


def session_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_staff_sign_in_through_the_provider_reaches_the_admin(client: Client, oidc: FakeProvider) -> None:
    query = start_sign_in(client, oidc)
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == "http://testserver/oidc/callback/"
    assert query["scope"] == "openid email profile"
    assert query["state"] and query["nonce"]

    response = client.get("/oidc/callback/", {"code": "abc", "state": query["state"]})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert oidc.token_requests == [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": "abc",
            "redirect_uri": "http://testserver/oidc/callback/",
        }
    ]
    assert oidc.userinfo_authorizations == ["Bearer access-token-1"]
    user = User.objects.get(username="alice")
    assert (user.email, user.first_name, user.last_name) == ("alice@example.com", "Alice", "Liddell")
    assert user.is_staff and not user.is_superuser
    assert not user.has_usable_password()
    assert session_user_id(client) == str(user.pk)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_second_sign_in_updates_the_same_user(client: Client, oidc: FakeProvider) -> None:
    sign_in(client, oidc)
    oidc.claims["email"] = "alice@new.example.com"
    client.logout()

    assert sign_in(client, oidc)["Location"] == "/admin/"

    user = User.objects.get(username="alice")
    assert user.email == "alice@new.example.com"
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_user_without_the_staff_group_is_refused(client: Client, oidc: FakeProvider) -> None:
    oidc.claims["groups"] = ["engineering"]

    response = sign_in(client, oidc)

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert session_user_id(client) is None
    assert not User.objects.filter(is_staff=True).exists()
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_user_removed_from_the_staff_group_loses_staff_on_next_sign_in(client: Client, oidc: FakeProvider) -> None:
    sign_in(client, oidc)
    assert User.objects.get(username="alice").is_staff
    client.logout()
    oidc.claims["groups"] = ["engineering"]

    response = sign_in(client, oidc)

    assert response["Location"] == "/admin/login/"
    assert session_user_id(client) is None
    assert not User.objects.get(username="alice").is_staff


@pytest.mark.django_db
def test_staff_claim_and_group_are_configurable(client: Client, oidc: FakeProvider, settings) -> None:
    settings.KEEPER_STAFF_CLAIM = "keeper_admin"
    oidc.claims["keeper_admin"] = True

    assert sign_in(client, oidc)["Location"] == "/admin/"
    assert User.objects.get(username="alice").is_staff


@pytest.mark.django_db
def test_staff_group_in_the_id_token_counts(client: Client, oidc: FakeProvider) -> None:
    del oidc.claims["groups"]
    oidc.id_token_claims["groups"] = ["keeper-staff"]

    assert sign_in(client, oidc)["Location"] == "/admin/"
    assert User.objects.get(username="alice").is_staff


@pytest.mark.django_db
def test_username_falls_back_to_the_subject(client: Client, oidc: FakeProvider) -> None:
    del oidc.claims["preferred_username"]

    assert sign_in(client, oidc)["Location"] == "/admin/"
    assert User.objects.filter(username="0b6f3c1e-1", is_staff=True).exists()


@pytest.mark.django_db
def test_sign_in_never_makes_or_takes_over_a_superuser(client: Client, oidc: FakeProvider) -> None:
    admin = User.objects.create_superuser("alice", "root@example.com", "a-long-password")

    response = sign_in(client, oidc)

    assert response["Location"] == "/admin/login/"
    assert session_user_id(client) is None
    admin.refresh_from_db()
    assert admin.email == "root@example.com" and admin.check_password("a-long-password")


@pytest.mark.django_db
def test_account_added_without_a_password_is_adopted_by_sign_in(client: Client, oidc: FakeProvider) -> None:
    """An admin may create the account first (password-based authentication disabled) to pre-provision it."""
    User.objects.create_user("alice", "old@example.com")

    assert sign_in(client, oidc)["Location"] == "/admin/"
    assert User.objects.get(username="alice").email == "alice@example.com"
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_wrong_state_is_refused(client: Client, oidc: FakeProvider) -> None:
    start_sign_in(client, oidc)

    response = client.get("/oidc/callback/", {"code": "abc", "state": "forged"})

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert oidc.token_requests == []
    assert session_user_id(client) is None


@pytest.mark.django_db
def test_callback_without_a_started_sign_in_is_refused(client: Client, oidc: FakeProvider) -> None:
    response = client.get("/oidc/callback/", {"code": "abc", "state": "anything"})

    assert response["Location"] == "/admin/login/"
    assert oidc.token_requests == []


@pytest.mark.django_db
def test_id_token_with_another_nonce_is_refused(client: Client, oidc: FakeProvider) -> None:
    query = start_sign_in(client, oidc)
    oidc.nonce = "replayed-nonce"

    response = client.get("/oidc/callback/", {"code": "abc", "state": query["state"]})

    assert response.status_code == 400
    assert session_user_id(client) is None
    assert not User.objects.exists()


@pytest.mark.django_db
def test_id_token_for_another_client_is_refused(client: Client, oidc: FakeProvider) -> None:
    oidc.id_token_claims["aud"] = "another-application"

    response = sign_in(client, oidc)

    assert response.status_code == 400
    assert not User.objects.exists()


@pytest.mark.django_db
def test_userinfo_for_another_subject_is_refused(client: Client, oidc: FakeProvider) -> None:
    oidc.id_token_claims["sub"] = "someone-else"

    response = sign_in(client, oidc)

    assert response["Location"] == "/admin/login/"
    assert not User.objects.exists()


@pytest.mark.django_db
def test_provider_refusing_the_code_is_a_failed_sign_in(client: Client, oidc: FakeProvider) -> None:
    oidc.token_status = 400

    response = sign_in(client, oidc)

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert session_user_id(client) is None


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.django_db
@pytest.mark.parametrize("unusable", ["nested without end", "not an object"])
def test_unusable_userinfo_is_a_failed_sign_in(client: Client, oidc: FakeProvider, unusable) -> None:
    claims = json.dumps(oidc.claims).encode()
    if unusable == "nested without end":
        oidc.userinfo_body = claims[:-1] + b', "deep": ' + DEEP + b"}"
    else:
        oidc.userinfo_body = b"[" + claims + b"]"

    response = sign_in(client, oidc)

    assert (response.status_code, response["Location"]) == (302, "/admin/login/")
    assert session_user_id(client) is None
    assert not User.objects.exists()


@pytest.mark.django_db
def test_an_id_token_nested_without_end_is_refused(client: Client, oidc: FakeProvider) -> None:
    oidc.id_token_deep_claim = DEEP

    response = sign_in(client, oidc)

    # As every id_token that fails verification (another nonce, another audience).
    assert response.status_code == 400
    assert session_user_id(client) is None
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("claim", ["preferred_username", "sub"])
def test_a_user_name_too_long_for_django_is_refused_never_cut(client: Client, oidc: FakeProvider, claim) -> None:
    if claim == "sub":
        del oidc.claims["preferred_username"]
    oidc.claims[claim] = "a" * 151

    response = sign_in(client, oidc)

    assert (response.status_code, response["Location"]) == (302, "/admin/login/")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_user_name_of_150_characters_signs_in(client: Client, oidc: FakeProvider) -> None:
    oidc.claims["preferred_username"] = "a" * 150

    assert sign_in(client, oidc)["Location"] == "/admin/"
    assert User.objects.get().username == "a" * 150


@pytest.mark.django_db
def test_admin_login_page_offers_single_sign_on_when_enabled(client: Client, oidc: FakeProvider) -> None:
    response = client.get("/admin/login/", {"next": "/admin/"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/oidc/authenticate/?next=/admin/"' in page
    assert "Sign in with single sign-on" in page
    assert page.index("sso-login-link") < page.index('id="login-form"')


@pytest.mark.django_db
def test_admin_login_page_has_no_single_sign_on_when_disabled(client: Client, settings) -> None:
    settings.OIDC_ENABLED = False

    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert "single sign-on" not in response.content.decode()
    assert 'id="login-form"' in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/oidc/authenticate/", "/oidc/callback/?code=abc&state=x", "/oidc/logout/"])
def test_oidc_urls_are_json_404_when_disabled(client: Client, settings, path: str) -> None:
    settings.OIDC_ENABLED = False

    response = client.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_superuser_password_login_still_works_with_oidc_enabled(client: Client, oidc: FakeProvider) -> None:
    User.objects.create_superuser("root", "root@example.com", "a-long-password")

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "a-long-password", "next": "/admin/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert oidc.token_requests == []


@pytest.mark.django_db
def test_password_form_does_not_exchange_a_code_from_the_query_string(client: Client, oidc: FakeProvider) -> None:
    response = client.post("/admin/login/?code=abc&state=x", {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert oidc.token_requests == []
    assert session_user_id(client) is None


@pytest.mark.django_db
def test_sign_out_ends_the_session(client: Client, oidc: FakeProvider) -> None:
    sign_in(client, oidc)

    response = client.post("/oidc/logout/")

    assert response.status_code == 302
    assert session_user_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["idp:bob", "idph:" + "0" * 64])
def test_sso_never_signs_in_as_a_token_caller(client: Client, oidc: FakeProvider, name: str) -> None:
    """A token caller's user has no password, so without this check an SSO name spelling it out would
    become that user, with its keys and pool."""
    token_user = User.objects.create_user(username=name)  # as token authentication makes it: no password
    oidc.claims["preferred_username"] = name

    response = sign_in(client, oidc)

    assert (response.status_code, response["Location"]) == (302, "/admin/login/")
    assert session_user_id(client) is None
    token_user.refresh_from_db()
    assert not token_user.is_staff
