"""One JSON line per request (logger keeper.requests) and an X-Request-ID on every answer.

The lines are the records Django's logging receives, rendered by Keeper's JSON formatter; the
live gunicorn run (one line per request there too, gunicorn's own lines in JSON) is in
tests/keeper/test_metrics.py, which starts the server once for both.
"""

import json
import logging
import os
import pty
import re
from datetime import datetime

import pytest
from django.http import StreamingHttpResponse
from django.test import RequestFactory

from apps.keys.choices import Scope
from apps.keys.policy import Actor
from apps.keys.services import key_create
from apps.throttling.models import GlobalRateLimit
from keeper.observability.logging import JsonFormatter, RequestIdFilter, TextFormatter, default_log_format
from keeper.observability.middleware import RequestObservabilityMiddleware
from tests.fakes import bearer, run_django

FIELDS = {
    "time", "level", "logger", "message", "request_id", "method", "route", "path", "status", "duration_ms",
    "response_bytes", "caller_kind", "caller_id", "credits_charged", "credits_remaining", "credits_limit", "client_ip",
}  # fmt: skip
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def request_log(caplog):
    """The request lines logged so far, as the JSON objects Keeper writes."""
    caplog.set_level(logging.INFO, logger="keeper.requests")
    formatter = JsonFormatter()

    def lines() -> list[dict]:
        return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "keeper.requests"]

    return lines


@pytest.fixture
def limits(db, settings, fresh_state, no_redis):
    """Credit limits on: 60 credits a minute, a global bucket too big to matter."""
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    settings.RATE_LIMIT_UNAUTHORIZED_PENALTY = 10
    settings.RATE_LIMIT_TRUSTED_PROXIES = []
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    return settings


def test_each_request_is_one_json_line_with_the_route_pattern_and_the_request_id(api, loaded_catalog, request_log):
    response = api.get("/server/aws/t3.micro")

    [line] = request_log()
    assert response.status_code == 200
    assert set(line) == FIELDS
    assert line["logger"] == "keeper.requests"
    assert line["request_id"] == response["X-Request-ID"]
    assert HEX_ID.fullmatch(line["request_id"])
    assert line["method"] == "GET"
    assert line["route"] == "/server/{vendor}/{server}"
    assert line["path"] == "/server/aws/t3.micro"
    assert line["status"] == 200
    assert line["response_bytes"] == len(response.content) > 0
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert (line["caller_kind"], line["caller_id"]) == ("anonymous", None)
    assert line["client_ip"] == "127.0.0.1"
    # ISO 8601 in UTC.
    assert line["time"].endswith("Z")
    assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0


def test_a_sane_incoming_request_id_is_kept(api, db, request_log):
    response = api.get("/me", HTTP_X_REQUEST_ID="edge-7f3a.b_9")

    assert response["X-Request-ID"] == "edge-7f3a.b_9"
    assert request_log()[0]["request_id"] == "edge-7f3a.b_9"


@pytest.mark.parametrize(
    "incoming", ["a" * 129, "has space", "semi;colon", "ünïcode", "new\nline"], ids=["long", "space", ";", "utf", "lf"]
)
def test_an_insane_incoming_request_id_is_replaced(api, db, request_log, incoming):
    response = api.get("/me", HTTP_X_REQUEST_ID=incoming)

    assert HEX_ID.fullmatch(response["X-Request-ID"])
    assert request_log()[0]["request_id"] == response["X-Request-ID"]


def test_every_request_gets_its_own_id(api, db):
    ids = {api.get("/me")["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3


def test_an_unknown_url_is_logged_without_a_route_and_carries_the_header(api, db, request_log):
    response = api.get("/no/such/thing")

    [line] = request_log()
    assert response.status_code == 404
    assert response["X-Request-ID"] == line["request_id"]
    assert (line["route"], line["path"], line["status"]) == (None, "/no/such/thing", 404)


def test_credits_charged_and_remaining_come_from_the_limits(api, limits, loaded_catalog, request_log):
    response = api.get("/servers")

    [line] = request_log()
    assert response.status_code == 200
    assert (line["credits_charged"], line["credits_remaining"], line["credits_limit"]) == (3, 57, 60)
    assert line["credits_charged"] == int(response["X-RateLimit-Cost"])


def test_a_429_is_logged_as_charging_nothing_and_carries_the_header(api, limits, loaded_catalog, request_log):
    limits.RATE_LIMIT_CREDITS_PER_MINUTE = 4

    answers = [api.get("/servers") for _ in range(2)]

    assert [r.status_code for r in answers] == [200, 429]
    first, refused = request_log()
    assert refused["status"] == 429
    assert refused["request_id"] == answers[1]["X-Request-ID"]
    assert (first["credits_charged"], first["credits_remaining"]) == (3, 1)
    assert (refused["credits_charged"], refused["credits_remaining"]) == (0, 1)


def test_an_unknown_url_refused_by_the_limits_is_logged(api, limits, request_log):
    limits.RATE_LIMIT_CREDITS_PER_MINUTE = 1

    answers = [api.get("/nothing-here") for _ in range(2)]

    assert [r.status_code for r in answers] == [404, 429]
    assert [line["status"] for line in request_log()] == [404, 429]
    assert answers[1]["X-Request-ID"] == request_log()[1]["request_id"]


def test_a_401_is_logged_with_its_penalty(api, limits, request_log):
    response = api.get("/me")

    [line] = request_log()
    assert response.status_code == 401
    assert response["X-Request-ID"] == line["request_id"]
    assert (line["route"], line["credits_charged"], line["credits_remaining"]) == ("/me", 1 + 10, 60 - 11)


def test_an_api_key_caller_is_logged_by_key_id_never_by_key(api, db, request_log, django_user_model):
    owner = django_user_model.objects.create_user(username="alice")
    issued = key_create(owner=owner, name="ci", actor=Actor("test-setup"), scope=Scope.READ)

    api.get("/me", HTTP_X_API_KEY=issued.value)

    [line] = request_log()
    assert (line["caller_kind"], line["caller_id"]) == ("api_key", issued.api_key.key_id)
    assert line["status"] == 200
    assert issued.value not in json.dumps(line)


def test_a_token_caller_is_logged_by_subject_never_by_token(api, db, introspection, request_log, fresh_state):
    token = introspection.issue("opaque-token-value-123", sub="subject-42")

    api.get("/me", **bearer(token))

    [line] = request_log()
    assert (line["caller_kind"], line["caller_id"], line["status"]) == ("token", "subject-42", 200)
    assert token not in json.dumps(line)


def test_the_client_ip_is_the_forwarded_one_only_behind_a_trusted_proxy(api, db, settings, request_log):
    settings.RATE_LIMIT_TRUSTED_PROXIES = ["10.0.0.0/8"]

    api.get("/me", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.7")
    api.get("/me", REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert [line["client_ip"] for line in request_log()] == ["203.0.113.7", "192.0.2.66"]


def test_answers_from_the_response_cache_are_logged(api, loaded_catalog, settings, request_log):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 3600

    computed = api.get("/servers?limit=2")
    cached = api.get("/servers?limit=2")
    not_modified = api.get("/servers?limit=2", HTTP_IF_NONE_MATCH=cached["ETag"])

    lines = request_log()
    assert [line["status"] for line in lines] == [200, 200, 304]
    assert [line["route"] for line in lines] == ["/servers"] * 3
    assert lines[1]["response_bytes"] == len(cached.content) == len(computed.content)
    assert lines[2]["request_id"] == not_modified["X-Request-ID"]


def test_a_streamed_answer_is_logged_once_when_it_ends_with_its_size(db, request_log):
    middleware = RequestObservabilityMiddleware(lambda request: StreamingHttpResponse(iter([b"ab", b"cde"])))
    response = middleware(RequestFactory().get("/keys/watch"))

    assert request_log() == []
    assert b"".join(response.streaming_content) == b"abcde"
    response.close()
    response.close()

    [line] = request_log()
    assert (line["response_bytes"], line["status"], line["route"]) == (5, 200, "/keys/watch")
    assert line["request_id"] == response["X-Request-ID"]


def test_the_text_format_is_one_readable_line_with_the_fields():
    record = logging.LogRecord("keeper.requests", logging.INFO, __file__, 1, "%s %s %s", ("GET", "/me", 401), None)
    record.fields = {"route": "/me", "status": 401, "caller_id": None, "duration_ms": 1.5}

    text = TextFormatter().format(record)

    assert "\n" not in text
    assert text.endswith("INFO keeper.requests GET /me 401 route=/me status=401 duration_ms=1.5")


class _Recorder(logging.Handler):
    """A handler with the console handler's filter (settings.LOGGING), remembering what it saw."""

    def __init__(self):
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.seen: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, record.request_id))


def test_other_lines_logged_during_a_request_carry_its_id(api, db, introspection, fresh_state):
    introspection.stop()  # the provider is down: Keeper logs an error while answering 503
    recorder = _Recorder()
    logging.getLogger().addHandler(recorder)
    try:
        response = api.get("/me", **bearer("some-token"))
    finally:
        logging.getLogger().removeHandler(recorder)

    assert response.status_code == 503
    assert ("apps.accounts.bearer", response["X-Request-ID"]) in recorder.seen


def test_the_format_defaults_to_json_off_a_terminal_and_text_on_one():
    reader, writer = pty.openpty()
    try:
        with os.fdopen(writer, "w", closefd=False) as terminal:
            assert default_log_format(terminal) == "text"
    finally:
        os.close(reader)
        os.close(writer)
    with open(os.devnull, "w") as not_a_terminal:
        assert default_log_format(not_a_terminal) == "json"


def test_settings_read_the_format_and_refuse_an_unknown_one(monkeypatch):
    monkeypatch.delenv("KEEPER_LOG_FORMAT", raising=False)
    code = "from django.conf import settings; print(settings.KEEPER_LOG_FORMAT)"

    assert run_django(code, {}).stdout.strip() == "json"  # stderr is a pipe here
    assert run_django(code, {"KEEPER_LOG_FORMAT": "TEXT"}).stdout.strip() == "text"
    refused = run_django(code, {"KEEPER_LOG_FORMAT": "xml"})
    assert refused.returncode != 0
    assert "KEEPER_LOG_FORMAT must be json or text, got 'xml'" in refused.stderr


def test_json_lines_of_a_real_process_are_json(tmp_path):
    code = (
        "import logging\n"
        "logging.getLogger('apps.demo').warning('hello %s', 'world', extra={'fields': {'n': 1}})\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    logging.getLogger('apps.demo').exception('failed')\n"
    )

    result = run_django(code, {"KEEPER_LOG_FORMAT": "json"})

    first, second = (json.loads(line) for line in result.stderr.strip().splitlines())
    assert (first["level"], first["logger"], first["message"], first["n"]) == ("WARNING", "apps.demo", "hello world", 1)
    assert "ZeroDivisionError" in second["exception"]
    assert "request_id" not in first  # logged outside any request
