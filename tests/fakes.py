"""Test doubles that are real servers, and the fixtures that configure Keeper to use them.

- FakeIdentityProvider: an RFC 7662 introspection endpoint over real HTTP on 127.0.0.1,
  answering what the test says per token, recording every call, checking HTTP Basic
  client authentication, and able to go down or hang.
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
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis
from django.core.cache import caches

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


class FakeIdentityProvider:
    """A real HTTP server answering RFC 7662 token introspection as the test tells it to."""

    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET):
        self.client_id = client_id
        self.client_secret = client_secret
        self.responses: dict[str, dict[str, Any]] = {}
        # Bodies sent byte for byte, for answers json.dumps cannot or would not write (not JSON, too deep).
        self.raw_responses: dict[str, bytes] = {}
        self.calls: list[Introspection] = []
        # Any other status than 200 is answered to every introspection (an unhealthy provider).
        self.status = 200
        self._answering = threading.Event()
        self._answering.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _IntrospectionHandler)
        self._server.daemon_threads = True
        self._server.provider = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda request, address: None  # a client that timed out is expected
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

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

    def start(self) -> None:
        self._thread = threading.Thread(
            # A short poll interval makes stop() quick.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-idp",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the port: connections are refused from now on (the provider is down)."""
        self._answering.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def hang(self) -> None:
        """Accept requests but answer none of them until release() (a provider timing out)."""
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()


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
    """No verifier (L1 cache) or limiter state carried from one test to the next."""
    reset_verifier()
    reset_limiters()
    yield
    reset_verifier()
    reset_limiters()


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider()
    provider.start()
    yield provider
    provider.stop()


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
