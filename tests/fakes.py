"""Test doubles that are real servers, and the fixtures that configure Keeper to use them.

- FakeIdentityProvider: an RFC 7662 introspection endpoint over real HTTP on 127.0.0.1,
  answering what the test says per token, recording every call, checking HTTP Basic
  client authentication, and able to go down or hang.
- FakeJwks: an issuer's JWKS endpoint (RSA and P-256 keys) over real HTTP, and JWTs signed with its keys.
- FakeKeyService: an API key verification service (POST {"secret": key}) answering what the test says.
- Redis: the server named by KEEPER_TEST_REDIS_URL (else REDIS_URL); tests needing it are
  skipped, with the reason, when nothing answers there. Only that database is flushed.

Fixtures are imported by tests/accounts/conftest.py and tests/throttling/conftest.py.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.cache import caches

from apps.accounts.bearer import reset_bearer_verifiers
from apps.accounts.verification import reset_verifier
from apps.throttling.services import reset_limiters

PROJECT = Path(__file__).resolve().parent.parent
CLIENT_ID = "keeper-test-client"
CLIENT_SECRET = "keeper-test-secret"
INTROSPECTION_PATH = "/oauth2/introspect"
LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@dataclass(frozen=True)
class Introspection:
    """One call the identity provider received."""

    token: str
    client_authenticated: bool


class _FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a thread of its own, able to go down (stop) or hang."""

    name = "fake-server"

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        # Any other status than 200 is answered to every request (an unhealthy server).
        self.status = 200
        self._answering = threading.Event()
        self._answering.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda request, address: None  # a client that timed out is expected
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the port: connections are refused from now on."""
        self._answering.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def hang(self) -> None:
        """Accept requests but answer none until release() (a server timing out)."""
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()

    def wait_to_answer(self) -> None:
        # Bounded, so a forgotten release() cannot keep a handler thread forever.
        self._answering.wait(timeout=30)


class FakeIdentityProvider(_FakeServer):
    """A real HTTP server answering RFC 7662 token introspection as the test tells it to."""

    name = "fake-idp"

    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET):
        super().__init__(_IntrospectionHandler)
        self._server.provider = self  # type: ignore[attr-defined]
        self.client_id = client_id
        self.client_secret = client_secret
        self.responses: dict[str, dict[str, Any]] = {}
        # Bodies sent byte for byte, for answers json.dumps cannot or would not write (not JSON, too deep).
        self.raw_responses: dict[str, bytes] = {}
        self.calls: list[Introspection] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{INTROSPECTION_PATH}"

    def answer(self, token: str, response: dict[str, Any]) -> str:
        """Introspecting `token` returns `response` verbatim; returns the token."""
        self.responses[token] = response
        return token

    def answer_raw(self, token: str, body: bytes) -> str:
        """Introspecting `token` returns `body` as is (with a JSON content type); returns the token."""
        self.raw_responses[token] = body
        return token

    def issue(self, token: str, sub: str = "alice", **claims: Any) -> str:
        """An active token of `sub` with `claims`; returns the token."""
        return self.answer(token, {"active": True, "sub": sub, "client_id": "some-app", **claims})

    @property
    def introspected(self) -> list[str]:
        """The tokens introspected so far, in order."""
        return [call.token for call in self.calls]


class _IntrospectionHandler(BaseHTTPRequestHandler):
    server_version = "FakeIdP/1.0"

    @property
    def provider(self) -> FakeIdentityProvider:
        return self.server.provider  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        if self.path != INTROSPECTION_PATH:
            self._reply(404, {"error": "not_found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        token = form.get("token", [""])[0]
        expected = base64.b64encode(f"{self.provider.client_id}:{self.provider.client_secret}".encode()).decode()
        authenticated = self.headers.get("Authorization") == f"Basic {expected}"
        self.provider.calls.append(Introspection(token, authenticated))
        # Bounded, so a forgotten release() cannot keep a handler thread forever.
        self.provider._answering.wait(timeout=30)
        if not authenticated:
            self._reply(401, {"error": "invalid_client"})
        elif self.provider.status != 200:
            self._reply(self.provider.status, {"error": "temporarily_unavailable"})
        elif token in self.provider.raw_responses:
            self._reply(200, self.provider.raw_responses[token])
        else:
            self._reply(200, self.provider.responses.get(token, {"active": False}))

    def _reply(self, status: int, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _FakeHandler(BaseHTTPRequestHandler):
    @property
    def fake(self) -> Any:
        return self.server.fake  # type: ignore[attr-defined]

    def reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


JWKS_PATH = "/.well-known/jwks.json"
JWT_ISSUER = "https://issuer.test"
JWT_AUDIENCE = "keeper-api"
_SIGNING_KEYS: dict[str, Any] = {}


def signing_key(name: str) -> Any:
    """A private key by name, made once per test run ("rsa..." a 2048-bit RSA key, "ec..." a P-256 key)."""
    if name not in _SIGNING_KEYS:
        if name.startswith("rsa"):
            _SIGNING_KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            _SIGNING_KEYS[name] = ec.generate_private_key(ec.SECP256R1())
    return _SIGNING_KEYS[name]


def public_pem(name: str) -> str:
    return (
        signing_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jwk(name: str, kid: str) -> dict[str, Any]:
    """The JWK of `name`'s public key under `kid`."""
    public = signing_key(name).public_key()
    algorithm = jwt.algorithms.RSAAlgorithm if name.startswith("rsa") else jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, "use": "sig"}


def signed_jwt(key: str = "rsa", kid: str | None = "rsa-1", *, headers: dict | None = None, **claims: Any) -> str:
    """A JWT signed with key `key` (RS256 for RSA, ES256 for EC); default claims: alice, this issuer and audience,
    valid for five minutes. A claim given as None is left out."""
    now = int(time.time())
    payload = {"sub": "alice", "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "iat": now, "exp": now + 300, **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    algorithm = "RS256" if key.startswith("rsa") else "ES256"
    extra = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, signing_key(key), algorithm=algorithm, headers={**extra, **(headers or {})})


class FakeJwks(_FakeServer):
    """An issuer's JWKS endpoint: publishes `keys` (name -> kid), counts fetches, answers `raw` when set."""

    name = "fake-jwks"

    def __init__(self):
        super().__init__(_JwksHandler)
        self.keys: dict[str, str] = {"rsa": "rsa-1", "ec": "ec-1"}
        self.extra_jwks: list[Any] = []
        self.raw: bytes | None = None
        self.fetches = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    def document(self) -> dict[str, Any]:
        return {"keys": [public_jwk(name, kid) for name, kid in self.keys.items()] + self.extra_jwks}


class _JwksHandler(_FakeHandler):
    def do_GET(self) -> None:
        if self.path != JWKS_PATH:
            self.reply(404, {"error": "not_found"})
            return
        self.fake.fetches += 1
        self.fake.wait_to_answer()
        if self.fake.status != 200:
            self.reply(self.fake.status, {"error": "unavailable"})
        elif self.fake.raw is not None:
            self.reply(200, self.fake.raw)
        else:
            self.reply(200, self.fake.document())


KEY_SERVICE_PATH = "/keys/verify"
KEY_SERVICE_BEARER = "keeper-to-key-service"


@dataclass(frozen=True)
class KeyCheck:
    """One call the key service received."""

    body: Any
    authorization: str | None


class FakeKeyService(_FakeServer):
    """An API key verification service: POST JSON {field: key}; answers per key what the test says."""

    name = "fake-key-service"

    def __init__(self, field: str = "secret"):
        super().__init__(_KeyServiceHandler)
        self.field = field
        self.answers: dict[str, tuple[int, Any]] = {}
        self.calls: list[KeyCheck] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{KEY_SERVICE_PATH}"

    def grant(self, key: str, subject: str = "carol", **claims: Any) -> str:
        """`key` is a valid key of `subject` with `claims`; returns the key."""
        return self.answer(key, {"subject": subject, "claims": claims})

    def answer(self, key: str, body: Any, status: int = 200) -> str:
        """Checking `key` answers `body` (JSON, or bytes as they are) with `status`; returns the key."""
        self.answers[key] = (status, body)
        return key

    @property
    def checked(self) -> list[Any]:
        return [call.body.get(self.field) if isinstance(call.body, dict) else None for call in self.calls]


class _KeyServiceHandler(_FakeHandler):
    def do_POST(self) -> None:
        if self.path != KEY_SERVICE_PATH:
            self.reply(404, {"error": "not_found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            body = None
        self.fake.calls.append(KeyCheck(body, self.headers.get("Authorization")))
        self.fake.wait_to_answer()
        if self.fake.status != 200:
            self.reply(self.fake.status, {"error": "unavailable"})
            return
        key = body.get(self.fake.field) if isinstance(body, dict) else None
        status, answer = self.fake.answers.get(key, (404, {"error": "unknown key"}))
        self.reply(status, answer)


@dataclass(frozen=True)
class Received:
    """One request a receiver got: its path, headers (lower-case names) and body."""

    path: str
    headers: dict[str, str]
    body: bytes


class FakeReceiver(_FakeServer):
    """A webhook receiver: records every POST and answers as the test says.

    `status` answers every request; `failures` first answers that many requests with 500; `redirect_to`
    answers 307 to that URL; `answer_bytes` sends a body of that many bytes; `drip` sends its body one
    byte every `drip` seconds; hang()/release() hold the answer.
    """

    name = "fake-receiver"

    def __init__(self) -> None:
        super().__init__(_ReceiverHandler)
        self.received: list[Received] = []
        self.failures = 0
        self.redirect_to: str | None = None
        self.answer_bytes = 2
        self.drip: float | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class _ReceiverHandler(_FakeHandler):
    def do_POST(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        fake.received.append(
            Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
        )
        fake.wait_to_answer()
        if fake.redirect_to:
            self.send_response(307)
            self.send_header("Location", fake.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fake.failures > 0:
            fake.failures -= 1
            self.reply(500, {"error": "failing on purpose"})
            return
        body = b"o" * fake.answer_bytes
        self.send_response(fake.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fake.drip is None:
            self.wfile.write(body)
            return
        for byte in body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the client gave up
            time.sleep(fake.drip)


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    server = FakeReceiver()
    server.start()
    yield server
    server.release()
    server.stop()


def bearer(token: str) -> dict[str, str]:
    """Test-client keyword arguments sending `token` as a bearer token."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configured_redis_url() -> str | None:
    """The Redis of the tests: KEEPER_TEST_REDIS_URL (set by .ci/run), else REDIS_URL."""
    return os.environ.get("KEEPER_TEST_REDIS_URL") or os.environ.get("REDIS_URL")


def redis_cache_settings(url: str) -> dict[str, Any]:
    """CACHES as keeper/settings.py builds it from REDIS_URL."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "keeper",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }


def run_django(code: str, env: dict[str, str], *, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `code` in a new Python process after django.setup(), with only `env` as Keeper's configuration.

    AUTH_*, OIDC_*, RATE_LIMIT_* and REDIS_URL of this process are not inherited.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTH_", "OIDC_", "RATE_LIMIT_", "KEEPER_STAFF_")) and name != "REDIS_URL"
    }
    script = f"import django\ndjango.setup()\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**inherited, "DJANGO_SETTINGS_MODULE": "keeper.settings", **env},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- Fixtures -------------------------------------------------------------------


@pytest.fixture
def fresh_state() -> Iterator[None]:
    """No verifier (L1 cache, JWKS) or limiter state carried from one test to the next."""
    reset_verifier()
    reset_bearer_verifiers()
    reset_limiters()
    yield
    reset_verifier()
    reset_bearer_verifiers()
    reset_limiters()


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def jwks() -> Iterator[FakeJwks]:
    server = FakeJwks()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jwt_auth(jwks: FakeJwks, settings, no_redis) -> FakeJwks:
    """Keeper verifying JWTs with the fake JWKS, this issuer and audience; no other verifier, no CEL rules."""
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    settings.AUTH_JWT_JWKS_URL = jwks.url
    settings.AUTH_JWT_ISSUER = JWT_ISSUER
    settings.AUTH_JWT_AUDIENCE = [JWT_AUDIENCE]
    settings.AUTH_TOKEN_VALIDATION_CEL = None
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = None
    return jwks


@pytest.fixture
def key_service() -> Iterator[FakeKeyService]:
    server = FakeKeyService()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_service_auth(key_service: FakeKeyService, settings, no_redis) -> FakeKeyService:
    """Keeper checking opaque keys at the fake key service (with its bearer); no other verifier."""
    settings.AUTH_TOKEN_INTROSPECTION_URL = None
    settings.AUTH_API_KEY_VERIFY_URL = key_service.url
    settings.AUTH_API_KEY_VERIFY_BEARER = KEY_SERVICE_BEARER
    settings.AUTH_TOKEN_CACHE_SALT = "test-salt"
    return key_service


@pytest.fixture
def no_redis(settings) -> None:
    """Keeper without REDIS_URL, whatever this process's environment says.

    Fixtures that set REDIS_URL depend on this one, so they always run after it.
    """
    settings.REDIS_URL = None
    settings.CACHES = LOCAL_CACHE
    # Local-memory caches outlive their settings (module-level storage): start empty.
    caches["default"].clear()


@pytest.fixture
def introspection(idp: FakeIdentityProvider, settings, no_redis) -> FakeIdentityProvider:
    """Keeper introspecting bearer tokens at the fake provider: no CEL rules, L1 only unless Redis is asked for."""
    settings.AUTH_TOKEN_INTROSPECTION_URL = idp.url
    settings.AUTH_CLIENT_ID = idp.client_id
    settings.AUTH_CLIENT_SECRET = idp.client_secret
    settings.AUTH_TOKEN_VALIDATION_CEL = None
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = None
    settings.AUTH_TOKEN_CACHE_SALT = "test-salt"
    return idp


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis server's URL, its database flushed before and after the test."""
    url = configured_redis_url()
    if not url:
        pytest.skip("Redis test: no Redis at KEEPER_TEST_REDIS_URL or REDIS_URL (neither is set)")
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"Redis test: no Redis at {url} ({exc.__class__.__name__})")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_cache(redis_url: str, redis_client: redis.Redis, settings, no_redis) -> redis.Redis:
    """Keeper with REDIS_URL (the L2 token cache and the Django cache) at the test Redis."""
    settings.REDIS_URL = redis_url
    settings.CACHES = redis_cache_settings(redis_url)
    return redis_client
