"""AI assist: free text to the query parameters of a catalog search, by an OpenAI-compatible model.

The model is offered one tool (function calling) whose JSON schema is generated from the endpoint's
FilterSet: the parameter names, their types, enumerations and bounds, and the filters' labels as
descriptions. So the tool never drifts from what the endpoint accepts. The arguments the model calls
the tool with are then validated by that same FilterSet:

- a parameter the FilterSet does not know, or a value of the wrong JSON shape (an object, a nested
  list), is dropped;
- a value the FilterSet refuses is dropped; of a list, only the items it refuses are dropped;
- null, "" and [] mean "not given".

Dropping rather than refusing: one bad guess of the model should not waste the caller's request.
The names of the known parameters whose values were dropped are returned with the filters (the
view sends them in a response header); what remains is always a valid query string for the endpoint.

The HTTP call is bounded by OPENAI_TIMEOUT_SECONDS as a whole (connect, wait, download). Under gunicorn
the views run in a thread of the worker's pool for slow upstream calls (keeper/server.py), so a slow
provider holds that thread, not the worker; at most KEEPER_AI_CALLS_PER_PROCESS calls are under way per
process, and one beyond is a 503 with Retry-After, decided before anything is sent.
"""

import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import import_module
from typing import Any

import django_filters
import orjson
import requests
import urllib3
from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import DatabaseError
from django.http import QueryDict
from django_filters import FilterSet
from rest_framework import exceptions, status
from rest_framework.request import Request

from keeper.api.exceptions import ServiceUnavailable
from keeper.api.filters import MAX_VALUE_LENGTH, FreeMultipleChoiceField

logger = logging.getLogger(__name__)

# Parameters that shape the answer (paging, ordering), not which rows match: not offered to the model.
NOT_FILTERS = frozenset({"limit", "page", "order_by", "order_dir", "add_total_count_header"})
# More items than this in one list parameter is not a search anyone asked for.
MAX_LIST_ITEMS = 100
# The provider's answer is one small JSON document; anything larger is not one.
MAX_ANSWER_BYTES = 1_048_576
_CHUNK_BYTES = 65_536
_JSON_SCALARS = (str, int, float, bool)

_INSTRUCTIONS = (
    "The user describes in plain English (or another language) what they need. Work out what that "
    "requires and call the tool once, with only the filters the request implies; leave out anything "
    "it does not ask for. Use the units given in each parameter's description."
)


# --- Errors -----------------------------------------------------------------------


class AssistNotConfigured(ServiceUnavailable):
    default_detail = "AI assist is not configured on this server (no OPENAI_API_KEY)."
    default_code = "ai_not_configured"


class AssistNotAvailable(ServiceUnavailable):
    default_detail = "AI assist is not available for this endpoint yet."
    default_code = "ai_not_available"


class AIProviderUnavailable(ServiceUnavailable):
    """The provider could not be reached, refused the request, or answered something unusable."""

    default_detail = "The AI provider is unavailable, try again later."
    default_code = "ai_unavailable"


class AIProviderBusy(ServiceUnavailable):
    """KEEPER_AI_CALLS_PER_PROCESS calls are under way in this process: this one is not sent."""

    default_code = "ai_busy"

    def __init__(self, *, limit: int, retry_after: int):
        super().__init__(f"{limit} AI assist calls are under way on this server already; try again later.")
        self.retry_after = retry_after


class AIProviderTimeout(exceptions.APIException):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "The AI provider did not answer in time, try again later."
    default_code = "ai_timeout"


# --- Which endpoints, with which FilterSet ------------------------------------------


@dataclass(frozen=True)
class AssistTarget:
    """One `/ai/assist_<slug>_filters` endpoint: the search it fills in and the FilterSet that search uses."""

    slug: str
    endpoint: str
    # Imported when first used, so an endpoint whose FilterSet is still missing answers 503, not an import error.
    filterset_path: str
    tool_name: str
    tool_description: str
    task: str
    exclude: frozenset[str] = NOT_FILTERS

    @property
    def path(self) -> str:
        return f"ai/assist_{self.slug}_filters"

    def filterset_class(self) -> type[FilterSet] | None:
        """The FilterSet, or None while its module or class does not exist (an error inside it is raised)."""
        module_name, _, class_name = self.filterset_path.rpartition(".")
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        return getattr(module, class_name, None)


ASSIST_TARGETS: dict[str, AssistTarget] = {
    target.slug: target
    for target in [
        AssistTarget(
            slug="server",
            endpoint="/servers",
            filterset_path="apps.catalog.filters.servers.ServerFilterSet",
            tool_name="search_servers",
            tool_description="Search server types across cloud vendors with these filters.",
            task="You help users find the best cloud server types across cloud vendors.",
        ),
        # The price searches' FilterSets (apps/catalog/filters/prices.py), by name: if one is renamed or
        # moved, its endpoint answers 503 ai_not_available (and its test says so) until this is updated.
        AssistTarget(
            slug="server_price",
            endpoint="/server_prices",
            filterset_path="apps.catalog.filters.prices.ServerPriceFilterSet",
            tool_name="search_server_prices",
            tool_description="Search the prices of server types in the regions and zones of cloud vendors.",
            task="You help users find the cheapest places (vendors, regions, zones) to run a cloud server.",
        ),
        AssistTarget(
            slug="storage_price",
            endpoint="/storage_prices",
            filterset_path="apps.catalog.filters.prices.StoragePriceFilterSet",
            tool_name="search_storage_prices",
            tool_description="Search the prices of block storage in the regions of cloud vendors.",
            task="You help users find cloud block storage that fits their needs at the best price.",
        ),
        AssistTarget(
            slug="traffic_price",
            endpoint="/traffic_prices",
            filterset_path="apps.catalog.filters.prices.TrafficPriceFilterSet",
            tool_name="search_traffic_prices",
            tool_description="Search the prices of network traffic (data transfer) in the regions of cloud vendors.",
            task="You help users find the cheapest inbound or outbound network traffic of cloud vendors.",
        ),
        AssistTarget(
            slug="database",
            endpoint="/databases",
            filterset_path="apps.catalog.filters.databases.DatabaseFilterSet",
            tool_name="search_databases",
            tool_description="Search managed database offerings (PostgreSQL) across cloud vendors with these filters.",
            task="You help users find the best managed database offering across cloud vendors.",
        ),
    ]
}


# --- The tool's JSON schema, generated from the FilterSet ---------------------------


def offered_filters(filterset_class: type[FilterSet], exclude: frozenset[str] = NOT_FILTERS) -> list[str]:
    """The parameters offered to the model: every filter of the FilterSet but the excluded ones, in order."""
    return [name for name in filterset_class.base_filters if name not in exclude]


def filters_json_schema(filterset_class: type[FilterSet], exclude: frozenset[str] = NOT_FILTERS) -> dict[str, Any]:
    """A JSON schema (object) of the FilterSet's parameters, for a tool's `parameters` and the OpenAPI answer.

    Types, enumerations and bounds are read from the form fields the FilterSet validates with, so the
    schema says exactly what the FilterSet accepts. Values read from the database (vendor ids) are read
    now; a list parameter with no possible value gets `maxItems: 0`, a single one with none is left out.
    """
    filterset = filterset_class(queryset=None)
    fields = filterset.form.fields
    properties: dict[str, Any] = {}
    for name in offered_filters(filterset_class, exclude):
        schema = _parameter_schema(filterset.filters[name], fields[name])
        if schema is not None:
            properties[name] = schema
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _parameter_schema(filter_: django_filters.Filter, field: forms.Field) -> dict[str, Any] | None:
    description = {"description": str(filter_.label or field.label or "")}
    if _is_list(field):
        values = _accepted_values(field)
        items = {"type": "string", "enum": values} if values else _text_schema(field)
        schema: dict[str, Any] = {"type": "array", "items": items}
        if values == []:
            schema["maxItems"] = 0
        return {**schema, **description}
    if isinstance(filter_, django_filters.BooleanFilter) or isinstance(
        field, forms.BooleanField | forms.NullBooleanField
    ):
        return {"type": "boolean", **description}
    if isinstance(field, forms.FloatField | forms.DecimalField):
        return {"type": "number", **_bounds(field), **description}
    if isinstance(field, forms.IntegerField):
        return {"type": "integer", **_bounds(field), **description}
    values = _accepted_values(field)
    if values == []:
        return None
    if values:
        return {"type": "string", "enum": values, **description}
    return {**_text_schema(field), **description}


def _is_list(field: forms.Field) -> bool:
    return isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField)


def _accepted_values(field: forms.Field) -> list[str] | None:
    """The values a choice field accepts (the canonical spelling: its choices' values), or None for any value."""
    if isinstance(field, FreeMultipleChoiceField) or not isinstance(field, forms.ChoiceField):
        return None
    try:
        values = [str(value) for value, _ in _flat_choices(field.choices)]
    except DatabaseError:
        # `manage.py spectacular` may run before `migrate`: the values are unknown then.
        return None
    return list(dict.fromkeys(value for value in values if value != ""))


def _flat_choices(choices: Any):
    for value, label in choices:
        if isinstance(label, list | tuple):
            yield from _flat_choices(label)
        else:
            yield value, label


def _text_schema(field: forms.Field) -> dict[str, Any]:
    limits = [v.limit_value for v in field.validators if isinstance(v, MaxLengthValidator)]
    if isinstance(field, FreeMultipleChoiceField):
        limits.append(MAX_VALUE_LENGTH)
    return {"type": "string", **({"maxLength": min(limits)} if limits else {})}


def _bounds(field: forms.Field) -> dict[str, Any]:
    minima = [v.limit_value for v in field.validators if isinstance(v, MinValueValidator)]
    maxima = [v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)]
    bounds: dict[str, Any] = {}
    if minima := [value for value in minima if not callable(value)]:
        bounds["minimum"] = max(minima)
    if maxima := [value for value in maxima if not callable(value)]:
        bounds["maximum"] = min(maxima)
    return bounds


def tool_definition(target: AssistTarget, filterset_class: type[FilterSet]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": target.tool_name,
            "description": target.tool_description,
            "parameters": filters_json_schema(filterset_class, target.exclude),
        },
    }


# --- The model's arguments, validated by the FilterSet -------------------------------


@dataclass(frozen=True)
class AssistedFilters:
    """The filters to search with, and the known parameters whose values (or some of them) were dropped."""

    filters: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    unknown: int = 0


def validated_filters(
    filterset_class: type[FilterSet],
    arguments: dict[str, Any],
    exclude: frozenset[str] = NOT_FILTERS,
    *,
    request: Request | None = None,
) -> AssistedFilters:
    """The arguments the FilterSet accepts, in query-string form and JSON types (see the module docstring).

    `request` is the caller's, for FilterSets whose rules depend on who asks (anonymous callers may
    name fewer regions): what is returned is a search this caller may run.
    """
    offered = set(offered_filters(filterset_class, exclude))
    unknown = [name for name in arguments if name not in offered]
    dropped: set[str] = set()
    data: dict[str, list[str]] = {}
    for name, value in arguments.items():
        if name not in offered:
            continue
        values = _query_values(value)
        if values is None:
            dropped.add(name)
        elif values:
            data[name] = values

    # Each round removes a parameter or some of its items, so this ends.
    while True:
        filterset = filterset_class(data=_query_dict(data), queryset=None, request=request)
        form = filterset.form
        refused = [name for name in form.errors if name in data] if not filterset.is_valid() else []
        if not refused:
            break
        for name in refused:
            dropped.add(name)
            kept = (
                [item for item in data[name] if _accepts(form.fields[name], [item])]
                if _is_list(form.fields[name])
                else []
            )
            if kept and kept != data[name]:
                data[name] = kept
            else:
                del data[name]

    filters = {
        name: _json_value(form.fields[name], data[name], form.cleaned_data.get(name))
        for name in arguments
        if name in data
    }
    return AssistedFilters(filters=filters, dropped=sorted(dropped), unknown=len(unknown))


def _query_values(value: Any) -> list[str] | None:
    """A JSON value as query-string values; None when it cannot be one (an object, a list in a list)."""
    if value is None:
        return []
    if isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS or not all(item is None or isinstance(item, _JSON_SCALARS) for item in value):
            return None
        return [text for item in value if item is not None for text in [_query_text(item)] if text != ""]
    if isinstance(value, _JSON_SCALARS):
        text = _query_text(value)
        return [text] if text != "" else []
    return None


def _query_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_dict(data: dict[str, list[str]]) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, values in data.items():
        query.setlist(name, values)
    return query


def _accepts(field: forms.Field, value: Any) -> bool:
    try:
        field.clean(value)
    except forms.ValidationError:
        return False
    return True


def _json_value(field: forms.Field, values: list[str], cleaned: Any) -> Any:
    """The value in the JSON type of the schema; enum values as the field cleans them (`X86_64` -> `x86_64`)."""
    if _is_list(field):
        # A multiple choice field cleans to its canonical strings; a model one to rows: keep the ids given.
        items = cleaned if isinstance(cleaned, list) and all(isinstance(item, str) for item in cleaned) else values
        return list(dict.fromkeys(items))
    if isinstance(cleaned, Decimal):
        return float(cleaned)
    if isinstance(cleaned, _JSON_SCALARS):
        return cleaned
    # A model instance (a single ModelChoiceFilter): the id it was given by.
    return values[0]


# --- The provider -------------------------------------------------------------------


def assist_filters(*, target: AssistTarget, text: str, request: Request | None = None) -> AssistedFilters:
    """Ask the configured model for `target`'s filters that fit `text`, validated by its FilterSet for this caller.

    Raises AssistNotAvailable or AssistNotConfigured (503) before any call, and AIProviderBusy (503) when
    this process has KEEPER_AI_CALLS_PER_PROCESS calls under way; AIProviderUnavailable (503) when the
    provider is down, refuses, or answers without usable arguments; AIProviderTimeout (504).
    """
    filterset_class = target.filterset_class()
    if filterset_class is None:
        raise AssistNotAvailable(f"AI assist for {target.endpoint} is not available yet.")
    if not settings.OPENAI_API_KEY:
        raise AssistNotConfigured()
    payload = {
        "model": settings.OPENAI_MODEL,
        # No temperature: several models accept only their default, and the tool's schema does the steering.
        "messages": [
            {"role": "system", "content": f"{target.task} {_INSTRUCTIONS}"},
            {"role": "user", "content": text},
        ],
        "tools": [tool_definition(target, filterset_class)],
        "tool_choice": {"type": "function", "function": {"name": target.tool_name}},
    }
    started = time.monotonic()
    with _calls_under_way.slot():
        answer = _chat_completion(payload)
    arguments = _tool_arguments(answer, target.tool_name)
    result = validated_filters(filterset_class, arguments, target.exclude, request=request)
    logger.info(
        "AI assist for %s: %d filter(s) %s, dropped %s, %d unknown, %.2f s",
        target.endpoint,
        len(result.filters),
        sorted(result.filters),
        result.dropped,
        result.unknown,
        time.monotonic() - started,
    )
    return result


class _CallsUnderWay:
    """The provider calls under way in this process; beyond KEEPER_AI_CALLS_PER_PROCESS, AIProviderBusy.

    Each call holds a thread of the worker's pool for slow upstream calls (keeper/server.py) for up to
    OPENAI_TIMEOUT_SECONDS; that pool has a few threads more than this cap, so a request beyond it is
    refused at once instead of queued. Per process, like the cap on streams: N workers, N times as many.
    """

    def __init__(self) -> None:
        self._started: list[float] = []
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        limit = settings.KEEPER_AI_CALLS_PER_PROCESS
        with self._lock:
            now = time.monotonic()
            if len(self._started) >= limit:
                # The oldest call ends by its deadline at the latest, and frees its place.
                wait = min(self._started) + settings.OPENAI_TIMEOUT_SECONDS - now
                raise AIProviderBusy(limit=limit, retry_after=max(math.ceil(wait), 1))
            self._started.append(now)
        try:
            yield
        finally:
            with self._lock:
                self._started.remove(now)


_calls_under_way = _CallsUnderWay()


class _Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0


def _chat_completion(payload: dict[str, Any]) -> dict[str, Any]:
    """POST {OPENAI_BASE_URL}/chat/completions; the JSON answer, or AIProviderUnavailable / AIProviderTimeout."""
    deadline = _Deadline(settings.OPENAI_TIMEOUT_SECONDS)
    url = f"{settings.OPENAI_BASE_URL}/chat/completions"
    headers = {"Authorization": f"Bearer {settings.OPENAI_API_KEY}", "Accept": "application/json"}
    try:
        with requests.post(
            url, json=payload, headers=headers, timeout=urllib3.Timeout(total=deadline.seconds), stream=True
        ) as response:
            if response.status_code != 200:
                _refused(response, deadline)
            body = _read_body(response, deadline)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        # The body is read from urllib3 (its errors, or the socket's): a read that ran out of time is told by the clock.
        if isinstance(exc, requests.Timeout) or deadline.passed:
            logger.warning("AI provider did not answer within %.1f s", deadline.seconds)
            raise AIProviderTimeout(
                f"The AI provider did not answer within {deadline.seconds:g} seconds, try again later."
            ) from None
        logger.warning("AI provider unreachable: %s", exc.__class__.__name__)
        raise AIProviderUnavailable("The AI provider could not be reached, try again later.") from None
    try:
        answer = _parse_json(body)
    except ValueError:
        logger.warning("AI provider answered with invalid JSON (%d bytes)", len(body))
        raise AIProviderUnavailable("The AI provider answered with something other than JSON.") from None
    if not isinstance(answer, dict):
        raise AIProviderUnavailable("The AI provider answered with something other than a completion.")
    return answer


def _parse_json(data: bytes | str) -> Any:
    """A JSON document from the provider; ValueError when it is not one or nests deeper than 1,024 levels.

    orjson bounds the nesting; the standard library's parser recurses until RecursionError (a 500),
    and the model's arguments are shaped by the caller's text, so they may nest as deep as asked.
    """
    return orjson.loads(data)


def _read_body(response: requests.Response, deadline: _Deadline) -> bytes:
    """The body, within the deadline and MAX_ANSWER_BYTES: each read waits at most for what time remains."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise requests.Timeout("deadline passed while reading the answer")
        _limit_socket_wait(response, remaining)
        # read1: what has arrived, in one wait; read() would wait for the whole chunk.
        chunk = response.raw.read1(_CHUNK_BYTES, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            logger.warning("AI provider answered more than %d bytes", MAX_ANSWER_BYTES)
            raise AIProviderUnavailable("The AI provider's answer is too large.")
        chunks.append(chunk)


def _limit_socket_wait(response: requests.Response, seconds: float) -> None:
    # requests' read timeout applies to each read, so a provider trickling bytes could outlast it many
    # times over; narrowing the socket's timeout to the time left makes OPENAI_TIMEOUT_SECONDS a total.
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _refused(response: requests.Response, deadline: _Deadline) -> None:
    """A non-200 answer. Only its status and the provider's error type are logged: messages may quote the key."""
    kind = ""
    try:
        error = _parse_json(_read_body(response, deadline) or b"{}").get("error")
        if isinstance(error, dict):
            kind = " ".join(str(error[key]) for key in ("type", "code") if isinstance(error.get(key), str))
    except (ValueError, AttributeError, AIProviderUnavailable, urllib3.exceptions.HTTPError, OSError):
        pass
    kind = re.sub(r"[^\w.-]+", " ", kind)[:80]
    code = response.status_code
    if code in (401, 403):
        logger.error("AI provider refused Keeper's credentials (HTTP %d %s): check OPENAI_API_KEY", code, kind)
        raise AIProviderUnavailable("The AI provider refused Keeper's credentials.")
    logger.warning("AI provider answered HTTP %d %s", code, kind)
    if code == 429:
        raise AIProviderUnavailable("The AI provider is busy, try again later.")
    raise AIProviderUnavailable(f"The AI provider answered HTTP {code}, try again later.")


def _tool_arguments(answer: dict[str, Any], tool_name: str) -> dict[str, Any]:
    """The arguments of the model's call of the tool; AIProviderUnavailable when there is no such call."""
    try:
        message = answer["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        call = next((c for c in calls if isinstance(c, dict) and c.get("function", {}).get("name") == tool_name), None)
        arguments = call["function"]["arguments"] if call is not None else None
    except (KeyError, IndexError, TypeError, AttributeError):
        logger.warning("AI provider answered a JSON document that is not a chat completion")
        raise AIProviderUnavailable("The AI provider answered something other than a chat completion.") from None
    if arguments is None:
        logger.warning("AI model answered without calling the tool %s", tool_name)
        raise AIProviderUnavailable("The AI model answered without filters; try rephrasing the request.")
    if isinstance(arguments, str):
        try:
            arguments = _parse_json(arguments)
        except ValueError:
            logger.warning("AI model called %s with arguments that are not JSON (or nested too deeply)", tool_name)
            raise AIProviderUnavailable(
                "The AI model answered filters that are not JSON, or nested too deeply."
            ) from None
    if not isinstance(arguments, dict):
        raise AIProviderUnavailable("The AI model answered filters that are not a JSON object.")
    return arguments
