"""GET /ai/assist_*_filters against a fake OpenAI-compatible provider: a real HTTP server on 127.0.0.1."""

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import django_filters
import pytest
from django import forms

from apps.catalog import ai, choices
from apps.catalog.filters import ServerFilterSet
from apps.catalog.models import Vendor
from tests.fakes import closed_port, run_django

API_KEY = "sk-test-0123456789abcdefSECRET"
MODEL = "test-model-mini"
SERVERS = "/ai/assist_server_filters"
PRICE_ENDPOINTS = [
    "/ai/assist_server_price_filters",
    "/ai/assist_storage_price_filters",
    "/ai/assist_traffic_price_filters",
]
NO_STORE = "private, no-store"


@dataclass(frozen=True)
class Call:
    """One request the provider received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """An OpenAI-compatible chat completions endpoint answering what the test says."""

    def __init__(self):
        self.calls: list[Call] = []
        self.status = 200
        self.body: bytes = completion({})
        # "answer", "hang" (accept, never answer until stopped), "hold" (accept, answer once released)
        # or "trickle" (headers, then a byte now and then).
        self.mode = "answer"
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.provider = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda request, address: None  # a client that gave up is expected
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openai", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def answer(self, status: int = 200, body: bytes | dict | None = None) -> None:
        self.mode, self.status = "answer", status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def call_tool(self, arguments: dict[str, Any] | str, name: str = "search_servers") -> None:
        self.answer(200, completion(arguments, name))

    def release(self) -> None:
        """Answer the calls held in "hold" mode (and later ones at once) with what is set."""
        self._released.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


def completion(arguments: dict[str, Any] | str, name: str = "search_servers") -> bytes:
    """A chat completion whose message calls tool `name` with `arguments` (JSON-encoded, as OpenAI does)."""
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": encoded}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return json.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    @property
    def provider(self) -> FakeOpenAI:
        return self.server.provider  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.provider.calls.append(Call(self.path, dict(self.headers.items()), body))
        if self.provider.mode == "hang":
            self.provider._stopping.wait(timeout=10)
            return
        if self.provider.mode == "hold":
            self.provider._released.wait(timeout=60)
        if self.provider.mode == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100):
                if self.provider._stopping.wait(timeout=0.1):
                    return
                self.wfile.write(b" ")
                self.wfile.flush()
            return
        self.send_response(self.provider.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.provider.body)))
        self.end_headers()
        self.wfile.write(self.provider.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider(settings) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    settings.OPENAI_API_KEY = API_KEY
    settings.OPENAI_BASE_URL = fake.base_url
    settings.OPENAI_MODEL = MODEL
    settings.OPENAI_TIMEOUT_SECONDS = 5.0
    yield fake
    fake.stop()


@pytest.fixture
def vendor_ids(loaded_catalog) -> list[str]:
    return sorted(Vendor.objects.values_list("vendor_id", flat=True))


# --- The tool's schema is the FilterSet's ---------------------------------------------


def test_the_tool_offers_every_filter_of_the_filterset_but_paging_and_ordering(loaded_catalog):
    schema = ai.filters_json_schema(ServerFilterSet)

    paging = {"limit", "page", "add_total_count_header"}  # validated by ServerFilterSet too (PagingFilterSet)
    assert set(schema["properties"]) == set(ServerFilterSet.base_filters) - {"order_by", "order_dir"} - paging
    assert schema["additionalProperties"] is False
    for name, filter_ in ServerFilterSet.base_filters.items():
        if name in schema["properties"]:
            assert schema["properties"][name]["description"] == str(filter_.label)


def test_the_tool_schema_carries_the_filtersets_types_enums_and_bounds(vendor_ids):
    properties = ai.filters_json_schema(ServerFilterSet)["properties"]

    assert properties["vcpus_min"] == {**properties["vcpus_min"], "type": "integer", "minimum": 1, "maximum": 256}
    assert properties["memory_min"]["type"] == "number"
    assert properties["hw_virt"]["type"] == "boolean"
    assert properties["partial_name_or_id"] == {**properties["partial_name_or_id"], "type": "string", "maxLength": 200}
    # Enums as the Spare Cores API spells them (the FilterSet also accepts upstream's member names).
    assert properties["architecture"]["type"] == "array"
    assert properties["architecture"]["items"]["enum"] == list(choices.CpuArchitecture.values)
    assert properties["storage_type"]["items"]["enum"] == list(choices.StorageType.values)
    # Values from the loaded catalog.
    assert properties["vendor"]["items"]["enum"] == vendor_ids
    assert properties["best_price_allocation"]["enum"] == list(choices.BestPriceAllocation.values)
    assert "USD" in properties["currency"]["enum"]
    assert properties["cpu_family"]["items"] == {"type": "string", "maxLength": 200}


class GadgetFilterSet(django_filters.FilterSet):
    """Any FilterSet will do: plain django-filter filters, not Keeper's own."""

    name = django_filters.CharFilter(max_length=30, label="Name.")
    size_min = django_filters.NumberFilter(field_name="id", lookup_expr="gte", min_value=2, max_value=9, label="Size.")
    count = django_filters.NumberFilter(field_name="id", label="Count.")
    shiny = django_filters.BooleanFilter(field_name="name", label="Shiny?")
    colour = django_filters.ChoiceFilter(choices=[("r", "red"), ("g", "green")], label="Colour.")
    tags = django_filters.MultipleChoiceFilter(choices=[("a", "A"), ("b", "B")], label="Tags.")
    vendors = django_filters.ModelMultipleChoiceFilter(
        field_name="vendor_id", queryset=Vendor.objects.all(), to_field_name="vendor_id", label="Vendors."
    )
    order_by = django_filters.OrderingFilter(fields=["name"])

    class Meta:
        model = Vendor
        fields: list[str] = []


def test_the_schema_generator_works_on_any_filterset(vendor_ids):
    properties = ai.filters_json_schema(GadgetFilterSet)["properties"]

    assert properties == {
        "name": {"type": "string", "maxLength": 30, "description": "Name."},
        "size_min": {"type": "number", "minimum": 2, "maximum": 9, "description": "Size."},
        "count": {"type": "number", "maximum": 1e50, "description": "Count."},
        "shiny": {"type": "boolean", "description": "Shiny?"},
        "colour": {"type": "string", "enum": ["r", "g"], "description": "Colour."},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "description": "Tags."},
        "vendors": {"type": "array", "items": {"type": "string", "enum": vendor_ids}, "description": "Vendors."},
    }


def test_a_filter_without_any_possible_value_takes_none(db):
    properties = ai.filters_json_schema(ServerFilterSet)["properties"]

    assert Vendor.objects.count() == 0
    # A list takes no item; a single choice (e.g. a benchmark id of an empty catalog) is left out.
    assert properties["vendor"]["maxItems"] == 0
    fields = ServerFilterSet(queryset=None).form.fields
    for name in set(ai.offered_filters(ServerFilterSet)) - set(properties):
        assert isinstance(fields[name], forms.ChoiceField), name
        assert not [value for value, _ in fields[name].choices if str(value)], name


# --- What is sent --------------------------------------------------------------------


def test_the_request_carries_the_model_the_key_and_the_generated_tool(api, provider, vendor_ids):
    api.get(SERVERS, {"text": "a cheap arm box with 16 GB"})

    [call] = provider.calls
    assert call.path == "/v1/chat/completions"
    assert call.headers["Authorization"] == f"Bearer {API_KEY}"
    assert call.body["model"] == MODEL
    [tool] = call.body["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "search_servers"
    assert tool["function"]["parameters"] == ai.filters_json_schema(ServerFilterSet)
    assert call.body["tool_choice"] == {"type": "function", "function": {"name": "search_servers"}}
    assert call.body["messages"][-1] == {"role": "user", "content": "a cheap arm box with 16 GB"}


# --- What is returned ----------------------------------------------------------------


def test_a_good_tool_call_returns_the_validated_filters(api, provider, vendor_ids):
    filters = {
        "vcpus_min": 4,
        "memory_min": 16,
        "architecture": ["arm64"],
        "vendor": vendor_ids[:1],
        "only_active": True,
        "best_price_allocation": "SPOT_ONLY",
        "currency": "EUR",
    }
    provider.call_tool(filters)

    response = api.get(SERVERS, {"text": "4 arm cores and 16 GB, spot, prices in euro"})

    assert response.status_code == 200
    assert response.json() == filters
    assert response["Cache-Control"] == NO_STORE
    assert "X-Dropped-Filters" not in response
    # The answer is a query the endpoint takes.
    assert api.get("/servers", filters).status_code == 200


def test_values_are_returned_in_the_json_types_and_spelling_of_the_schema(api, provider, vendor_ids):
    provider.call_tool({"vcpus_min": "8", "hw_virt": "yes", "architecture": "X86_64", "storage_type": ["NVME_SSD"]})

    response = api.get(SERVERS, {"text": "eight x86 cores, nvme"})

    assert response.json() == {
        "vcpus_min": 8,
        "hw_virt": True,
        "architecture": ["x86_64"],
        "storage_type": ["nvme ssd"],
    }


def test_arguments_the_filterset_refuses_are_dropped_and_named(api, provider, vendor_ids):
    provider.call_tool(
        {
            "vcpus_min": 0,  # below the minimum
            "memory_min": "lots",  # not a number
            "vendor": [vendor_ids[0], "no-such-vendor"],  # one good item is kept
            "architecture": ["sparc"],
            "hw_virt": {"yes": True},  # not a query value at all
            "cpu_family": [["Xeon"]],
            "gpu_min": None,  # not given
            "order_by": "price",  # not a filter
            "no_such_parameter": 1,
            "bad\r\nheader": 1,
        }
    )

    response = api.get(SERVERS, {"text": "whatever"})

    assert response.status_code == 200
    assert response.json() == {"vendor": [vendor_ids[0]]}
    assert response["X-Dropped-Filters"] == "architecture, cpu_family, hw_virt, memory_min, vcpus_min, vendor"


def test_no_usable_argument_is_an_empty_filter(api, provider, db):
    provider.call_tool({})

    response = api.get(SERVERS, {"text": "anything"})

    assert response.status_code == 200
    assert response.json() == {}


# --- When it cannot work ----------------------------------------------------------------


def test_without_a_key_the_answer_is_503_and_nothing_is_sent(api, provider, settings, db):
    settings.OPENAI_API_KEY = None

    response = api.get(SERVERS, {"text": "a big GPU box"})

    assert response.status_code == 503
    assert response.json() == {
        "detail": "AI assist is not configured on this server (no OPENAI_API_KEY).",
        "code": "ai_not_configured",
    }
    assert response["Cache-Control"] == NO_STORE
    assert provider.calls == []


def test_a_provider_that_is_down_is_503(api, settings, db):
    settings.OPENAI_API_KEY = API_KEY
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"

    response = api.get(SERVERS, {"text": "a big GPU box"})

    assert response.status_code == 503
    assert response.json()["code"] == "ai_unavailable"
    assert response["Cache-Control"] == NO_STORE


def test_a_provider_that_does_not_answer_is_504_within_the_timeout(api, provider, settings, db):
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    provider.mode = "hang"

    started = time.monotonic()
    response = api.get(SERVERS, {"text": "a big GPU box"})

    # The provider would hold the call for 10 s: half of that is a bound any machine meets.
    assert time.monotonic() - started < 5
    assert response.status_code == 504
    assert response.json()["code"] == "ai_timeout"
    assert response["Cache-Control"] == NO_STORE


def test_a_provider_trickling_its_answer_is_504_within_the_timeout(api, provider, settings, db):
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    provider.mode = "trickle"

    started = time.monotonic()
    response = api.get(SERVERS, {"text": "a big GPU box"})

    # A byte every 0.1 s for 10 s: only a deadline on the whole call ends it this soon, on any machine.
    assert time.monotonic() - started < 5
    assert response.status_code == 504


@pytest.mark.parametrize("failure", ["timeout", "http-500", "garbage"])
def test_a_call_that_fails_frees_its_place(api, provider, settings, db, failure):
    # One place: the second call is sent only if the first gave its place back.
    settings.KEEPER_AI_CALLS_PER_PROCESS = 1
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    if failure == "timeout":
        provider.mode = "hang"
    else:
        provider.answer(500 if failure == "http-500" else 200, b"[" * 5_000)

    first = api.get(SERVERS, {"text": "a big GPU box"})
    provider.call_tool({"gpu_min": 1})
    settings.OPENAI_TIMEOUT_SECONDS = 5.0  # the second call is answered: in time on any machine
    second = api.get(SERVERS, {"text": "a big GPU box"})

    assert first.status_code == (504 if failure == "timeout" else 503)
    assert second.status_code == 200
    assert second.json() == {"gpu_min": 1}
    assert len(provider.calls) == 2


@pytest.mark.parametrize(
    "status, body",
    [
        (500, {"error": {"message": "boom", "type": "server_error"}}),
        (429, {"error": {"message": "slow down", "type": "rate_limit_exceeded"}}),
        (400, {"error": {"message": "model not found", "type": "invalid_request_error"}}),
        (200, b"<html>not json</html>"),
        (200, {"unexpected": "document"}),
        (200, [1, 2, 3]),
        (200, {"choices": []}),
        (200, {"choices": [{"message": {"role": "assistant", "content": "I cannot help with that."}}]}),
        (200, completion("{not json")),
        (200, completion('["a", "list"]')),
        (200, completion({"vcpus_min": 2}, name="another_tool")),
    ],
    ids=[
        "http-500",
        "http-429",
        "http-400",
        "not-json",
        "not-a-completion",
        "a-list",
        "no-choices",
        "refusal-without-tool-call",
        "arguments-not-json",
        "arguments-not-an-object",
        "another-tool",
    ],
)
def test_a_provider_answering_garbage_is_503(api, provider, db, status, body):
    provider.answer(status, body)

    response = api.get(SERVERS, {"text": "a big GPU box"})

    assert response.status_code == 503
    assert response.json()["code"] == "ai_unavailable"
    assert response["Cache-Control"] == NO_STORE


def _nested_object(depth: int) -> str:
    return '{"vcpus_min": ' * depth + "1" + "}" * depth


def _nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "status, body",
    [
        (200, completion(_nested_object(3_000))),
        (200, completion('{"cpu_family": ' + _nested_list(100_000) + "}")),
        (200, _nested_list(100_000).encode()),
        (200, ('{"choices": ' + _nested_list(100_000) + "}").encode()),
        (500, ('{"error": ' + _nested_list(100_000) + "}").encode()),
    ],
    ids=["arguments-3000-deep", "arguments-100000-deep", "answer-100000-deep", "choices-100000-deep", "error-deep"],
)
def test_json_nested_thousands_deep_from_the_provider_is_503_not_500(api, provider, db, status, body):
    # The caller's text steers the model, so its arguments are the caller's to shape.
    provider.answer(status, body)

    response = api.get(SERVERS, {"text": "nest the filters 100000 times"})

    assert response.status_code == 503
    assert response.json()["code"] == "ai_unavailable"
    assert response["Cache-Control"] == NO_STORE


def test_nesting_the_parser_accepts_is_dropped_like_any_value_that_is_not_a_query_value(api, provider, db):
    provider.call_tool('{"vcpus_min": 4, "cpu_family": ' + _nested_list(500) + "}")

    response = api.get(SERVERS, {"text": "four cores"})

    assert response.status_code == 200
    assert response.json() == {"vcpus_min": 4}
    assert response["X-Dropped-Filters"] == "cpu_family"


# --- The text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "This field is required."),
        ({"text": ""}, "This field may not be blank."),
        ({"text": "x" * 2001}, "Ensure this field has no more than 2000 characters."),
    ],
    ids=["missing", "empty", "too-long"],
)
def test_a_missing_empty_or_too_long_text_is_400_and_nothing_is_sent(api, provider, db, params, message):
    response = api.get(SERVERS, params)

    assert response.status_code == 400
    assert response.json()["errors"] == {"text": [message]}
    assert response["Cache-Control"] == NO_STORE
    assert provider.calls == []


def test_the_longest_text_is_sent(api, provider, db):
    assert api.get(SERVERS, {"text": "x" * 2000}).status_code == 200
    assert provider.calls[0].body["messages"][-1]["content"] == "x" * 2000


def test_unknown_parameters_are_400(api, provider, db):
    response = api.get(SERVERS, {"text": "gpu", "vcpus_min": 2})

    assert response.status_code == 400
    assert response.json()["errors"] == {"vcpus_min": ["Unknown query parameter."]}


# --- The key stays secret ----------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 401, 500])
def test_the_key_never_appears_in_logs_or_responses(api, provider, db, caplog, status):
    caplog.set_level(logging.DEBUG)
    # OpenAI quotes (part of) a wrong key in its message.
    provider.answer(
        status, {"error": {"message": f"Incorrect API key provided: {API_KEY}", "type": "invalid", "code": "x"}}
    )

    response = api.get(SERVERS, {"text": "a big GPU box"})

    assert response.status_code == 503
    assert API_KEY not in response.content.decode()
    assert all(API_KEY not in value for value in response.headers.values())
    assert caplog.records, "the failure is logged"
    assert API_KEY not in caplog.text
    assert all(API_KEY not in str(record.args) for record in caplog.records)


# --- The other endpoints --------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", PRICE_ENDPOINTS)
def test_each_price_endpoint_uses_its_filterset_or_says_it_is_not_available(api, provider, db, endpoint):
    target = ai.ASSIST_TARGETS[endpoint.removeprefix("/ai/assist_").removesuffix("_filters")]
    provider.call_tool({}, name=target.tool_name)

    response = api.get(endpoint, {"text": "cheap"})

    filterset_class = target.filterset_class()
    if filterset_class is None:
        assert response.status_code == 503
        assert response.json()["code"] == "ai_not_available"
        assert provider.calls == []
    else:
        assert response.status_code == 200
        [tool] = provider.calls[0].body["tools"]
        assert tool["function"]["parameters"] == ai.filters_json_schema(filterset_class)


def test_a_target_whose_filterset_does_not_exist_is_not_available(provider, db):
    target = replace(ai.ASSIST_TARGETS["server"], filterset_path="apps.catalog.filters.no_such_module.NoSuchFilterSet")

    with pytest.raises(ai.AssistNotAvailable):
        ai.assist_filters(target=target, text="anything")
    assert provider.calls == []


def test_the_validator_keeps_list_items_on_their_own(vendor_ids):
    result = ai.validated_filters(GadgetFilterSet, {"tags": ["a", "z", "b", "a"], "colour": "x", "name": "n" * 31})

    assert result.filters == {"tags": ["a", "b"]}
    assert result.dropped == ["colour", "name", "tags"]
    assert isinstance(GadgetFilterSet().form.fields["tags"], forms.MultipleChoiceField)


# --- Configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, message",
    [
        ({"OPENAI_TIMEOUT_SECONDS": "30"}, "OPENAI_TIMEOUT_SECONDS must be <= 25"),
        ({"OPENAI_TIMEOUT_SECONDS": "soon"}, "OPENAI_TIMEOUT_SECONDS must be a number"),
        ({"OPENAI_BASE_URL": "api.openai.com/v1"}, "OPENAI_BASE_URL must be an http(s) URL"),
    ],
    ids=["timeout-too-long", "timeout-not-a-number", "base-url-not-http"],
)
def test_a_bad_openai_setting_stops_start_up(env, message):
    result = run_django("", env)

    assert result.returncode != 0
    assert message in result.stderr


def test_the_openai_defaults():
    result = run_django(
        "from django.conf import settings as s; print(s.OPENAI_BASE_URL, s.OPENAI_MODEL, s.OPENAI_TIMEOUT_SECONDS)",
        # Empty is unset: this process's own OPENAI_* must not leak in.
        {"OPENAI_BASE_URL": "http://llm.internal:8080/v1/", "OPENAI_MODEL": "", "OPENAI_TIMEOUT_SECONDS": ""},
    )

    assert result.stdout.split() == ["http://llm.internal:8080/v1", "gpt-4o-mini", "15.0"]
