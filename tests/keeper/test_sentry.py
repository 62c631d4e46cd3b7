"""Sentry reports never carry a secret: a real sentry_sdk client sends real envelopes over HTTP to a
fake Sentry on 127.0.0.1, and the test searches every byte it received.
"""

import gzip
import json
import logging
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from apps.keys.choices import Scope
from apps.keys.policy import Actor
from apps.keys.services import key_create
from keeper.observability.sentry import FILTERED, scrub_event, scrub_text
from tests.fakes import bearer, run_django

KEEPER_KEY = "keeper_AbCdEf012345_0123456789abcdefghijABCDEFGHIJklmnZz9Y8x"
TOKEN = "opaque-oauth-token-4f1c2d9e8b7a"
IMPORTED = "imported-secret-value-7Hq2Lm9Xw3"
SESSION = "session-cookie-value-f00dcafe"


class FakeSentry:
    """A Sentry ingestion endpoint over real HTTP: keeps the decoded body of every envelope."""

    def __init__(self):
        self.envelopes: list[bytes] = []
        self.received = threading.Condition()
        sentry = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding:
                    raise AssertionError(f"unexpected Content-Encoding {encoding}")
                with sentry.received:
                    sentry.envelopes.append(body)
                    sentry.received.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict]:
        """The event items of every envelope received (envelope header, item header, payload lines)."""
        found = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def everything(self) -> bytes:
        return b"\n".join(self.envelopes)


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    sentry = FakeSentry()
    sentry.thread.start()
    yield sentry
    sentry.server.shutdown()
    sentry.server.server_close()


@pytest.fixture
def sentry(fake_sentry: FakeSentry) -> Iterator[FakeSentry]:
    """Keeper's Sentry set-up (init_sentry, as settings.py calls it), reporting to the fake server."""
    from keeper.observability.sentry import init_sentry

    init_sentry(fake_sentry.dsn)
    yield fake_sentry
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def served(request) -> int:
    """Run a request through Django's WSGI handler, as gunicorn does (the test client skips the
    WSGI layer, where Sentry reads the URL, headers and query string). Returns the status."""
    statuses = []
    # As the test client does: the test's database transaction must survive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = WSGIHandler()(request.environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(statuses[0][:3])


def flushed(sentry: FakeSentry, events: int) -> list[dict]:
    sentry_sdk.flush(timeout=10)
    assert len(sentry.events()) >= events, sentry.envelopes
    return sentry.events()


def assert_no_secret(sentry: FakeSentry, *secrets: str) -> None:
    sent = sentry.everything()
    leaked = [secret for secret in secrets if secret.encode() in sent]
    assert leaked == [], "secrets sent to Sentry"


def test_a_request_error_reports_no_header_cookie_or_query_secret(db, introspection, fresh_state, sentry):
    introspection.stop()  # the identity provider is down: Keeper logs an error, Sentry gets an event
    request = RequestFactory().get(
        f"/me?key={KEEPER_KEY}&token={TOKEN}&api_key={IMPORTED}&vendor=aws",
        HTTP_X_API_KEY=IMPORTED,
        HTTP_COOKIE=f"sessionid={SESSION}",
        **bearer(TOKEN),
    )

    assert served(request) == 503
    [event] = [e for e in flushed(sentry, 1) if "Token verification by %s failed" in json.dumps(e)]
    request = event["request"]
    assert request["url"].endswith("/me")
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == headers["x-api-key"] == FILTERED
    assert "vendor=aws" in request["query_string"]  # ordinary parameters stay, to help debugging
    assert_no_secret(sentry, KEEPER_KEY, TOKEN, IMPORTED, SESSION)


@pytest.mark.parametrize("through", ["wsgi", "test client"])
def test_the_body_of_a_keys_request_is_never_reported(api, db, introspection, fresh_state, sentry, through):
    introspection.stop()
    body = {"name": "imported", "key": IMPORTED, "description": IMPORTED[::-1]}

    if through == "wsgi":
        request = RequestFactory().post("/keys", json.dumps(body), content_type="application/json", **bearer(TOKEN))
        assert served(request) == 503
    else:  # no URL in the event: the route (transaction) tells the path
        assert api.post("/keys", body, format="json", **bearer(TOKEN)).status_code == 503

    events = [e for e in flushed(sentry, 1) if e.get("transaction") == "/keys"]
    assert events
    assert all(event["request"]["data"] == FILTERED for event in events)
    assert_no_secret(sentry, IMPORTED, IMPORTED[::-1], TOKEN)


def test_keys_and_tokens_in_messages_exceptions_and_breadcrumbs_are_scrubbed(sentry):
    logging.getLogger("apps.demo").info("calling with Authorization: Bearer %s", TOKEN)  # a breadcrumb
    try:
        raise ValueError(f"rejected {KEEPER_KEY} at https://example.test/x?api_key={IMPORTED}&page=2")
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.capture_message(f"Basic {IMPORTED} then keeper_{KEEPER_KEY[7:19]}_truncated")

    events = flushed(sentry, 2)

    text = json.dumps(events)
    assert "rejected keeper_[Filtered]" in text
    assert f"api_key={FILTERED}&page=2" in text
    assert any("Bearer [Filtered]" in json.dumps(e.get("breadcrumbs")) for e in events)
    assert_no_secret(sentry, KEEPER_KEY, KEEPER_KEY[7:19], TOKEN, IMPORTED)


def test_stack_frames_carry_no_local_variables(sentry, db, django_user_model):
    owner = django_user_model.objects.create_user(username="alice")
    issued = key_create(owner=owner, name="k", actor=Actor("test-setup"), scope=Scope.READ)

    def check(value: str) -> None:
        raise RuntimeError("refused")

    try:
        check(issued.value.replace("keeper_", "kpr-"))  # not the Keeper shape: only the lack of locals hides it
    except RuntimeError:
        sentry_sdk.capture_exception()

    [event] = flushed(sentry, 1)
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames and all("vars" not in frame for frame in frames)
    assert_no_secret(sentry, issued.value, issued.value[7:])


def test_the_scrubbers_own_rules():
    event = {
        "request": {
            "url": "http://keeper/keys/abc/rotate",
            "headers": {"Cookie": "a=b", "X-Api-Key": "x", "Accept": "application/json"},
            "cookies": {"sessionid": "s"},
            "query_string": "token=t&limit=5",
            "data": {"name": "n"},
        },
        "extra": {"note": "see Bearer abc.def-ghi"},
    }

    scrubbed = scrub_event(event)

    request = scrubbed["request"]
    assert request["headers"] == {"Cookie": FILTERED, "X-Api-Key": FILTERED, "Accept": "application/json"}
    assert (request["cookies"], request["data"]) == (FILTERED, FILTERED)
    assert request["query_string"] == f"token={FILTERED}&limit=5"
    assert scrubbed["extra"]["note"] == f"see Bearer {FILTERED}"
    assert scrub_text("Token has expired.") == "Token has expired."
    assert scrub_text("/servers?vendor=aws&limit=5") == "/servers?vendor=aws&limit=5"


def test_settings_report_to_sentry_when_sentry_dsn_is_set(fake_sentry):
    code = (
        "import logging, sentry_sdk\n"
        f"logging.getLogger('apps.demo').error('failed for %s', {KEEPER_KEY!r})\n"
        "sentry_sdk.flush(timeout=10)\n"
    )

    result = run_django(code, {"SENTRY_DSN": fake_sentry.dsn, "KEEPER_LOG_FORMAT": "json"})

    assert result.returncode == 0, result.stderr
    [event] = fake_sentry.events()
    assert event["logentry"]["formatted"] == "failed for keeper_[Filtered]"
    assert_no_secret(fake_sentry, KEEPER_KEY)
