"""schemathesis hooks for bin/schemathesis-check (loaded through SCHEMATHESIS_HOOKS).

1. The admin key survives. The run fuzzes DELETE /keys/{id}, revoke, rotate and PATCH with
   the admin key it authenticates with; the key would not survive its own deletion or a scope
   change, and the rest of the run would be a series of 401s. Requests that name the bootstrap
   key (its id is in SCHEMATHESIS_PROTECTED_KEY_ID) go to an id that exists nowhere instead,
   so they still exercise the 404 path. Every other key, the ones the run creates included,
   is fair game.

2. Known failures: rules the schema cannot express (see KNOWN_FAILURES). Each entry says why.
   - SCHEMA_CORRECTIONS: where the document is wrong and the fix is to document the answer as
     it is, the loaded document is corrected that way, so everything else is still checked.
   - KNOWN_FAILURES: what a correction cannot express; one kind of failure on the operations
     named is dropped (schemathesis counts them: "dropped by filter_failure"), nothing else.
   - EXCLUDED_OPERATIONS in bin/schemathesis-check: operations not fuzzed at all.
"""

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import schemathesis

PROTECTED_KEY_ID = os.environ.get("SCHEMATHESIS_PROTECTED_KEY_ID", "")
# Key ids are 12 base62 characters; this one is never issued (ids are random, this is all zeros).
ABSENT_KEY_ID = "000000000000"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # before_call runs in every phase, stateful calls whose id came from a response included.
    parameters = case.path_parameters or {}
    if PROTECTED_KEY_ID and parameters.get("id") == PROTECTED_KEY_ID:
        case.path_parameters = {**parameters, "id": ABSENT_KEY_ID}


# --- SCHEMA_CORRECTIONS ------------------------------------------------------------


def _update(schema: dict, changes: dict) -> bool:
    """Apply `changes`; whether anything was still missing (else the owner fixed it: drop the entry)."""
    missing = any(schema.get(name) != value for name, value in changes.items())
    schema.update(changes)
    return missing


# Where the document cannot be corrected at its source. Empty: the document is checked as served.
SCHEMA_CORRECTIONS: list[tuple[str, Callable[[dict], bool]]] = []


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict) -> None:
    for why, correct in SCHEMA_CORRECTIONS:
        try:
            needed = correct(raw_schema)
        except (KeyError, StopIteration):
            needed = False  # the document changed shape there
        if not needed:
            print(f"SCHEMA_CORRECTIONS: no longer needed, delete it: {why}", file=sys.stderr)


# --- KNOWN_FAILURES ----------------------------------------------------------------


@dataclass(frozen=True)
class KnownFailure:
    name: str
    why: str
    operations: frozenset[str]
    code: str  # schemathesis failure code: ST202 schema-valid request rejected, ...
    matches: Callable[[Any, Any], bool]  # (failure, response) -> bool


def _error_message_contains(*texts: str) -> Callable[[Any, Any], bool]:
    def matches(failure: Any, response: Any) -> bool:
        try:
            errors = json.loads(response.content).get("errors", {})
        except (ValueError, AttributeError):
            return False
        return any(text in message for messages in errors.values() for message in messages for text in texts)

    return matches


def _error_code(response: Any) -> str | None:
    try:
        return json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return None


def _errors_only_in(*fields: str) -> Callable[[Any, Any], bool]:
    def matches(failure: Any, response: Any) -> bool:
        try:
            errors = json.loads(response.content).get("errors", {})
        except (ValueError, AttributeError):
            return False
        return bool(errors) and set(errors) <= set(fields)

    return matches


def _blank_query_parameter(name: str) -> Callable[[Any, Any], bool]:
    def matches(failure: Any, response: Any) -> bool:
        query = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
        return "" in query.get(name, [])

    return matches


def _any_of(*matchers: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda failure, response: any(matches(failure, response) for matches in matchers)


KEY_WRITES = frozenset({"POST /keys", "PATCH /keys/{id}", "POST /keys/{id}/rotate", "POST /keys/{id}/revoke"})

# Rules OpenAPI 3.0 cannot express, so a schema-valid request may still be refused with a 400
# naming the field. Each is checked narrowly (its message) on the operations it applies to.
KNOWN_FAILURES = [
    KnownFailure(
        name="ai-not-configured",
        why=(
            "without OPENAI_API_KEY the AI assist endpoints answer a documented 503 (ai_not_configured); "
            "schemathesis counts every 5xx as a server error"
        ),
        operations=frozenset(
            f"GET /ai/assist_{kind}_filters"
            for kind in ("server", "server_price", "storage_price", "traffic_price", "database")
        ),
        code="ST101",
        matches=lambda failure, response: _error_code(response) == "ai_not_configured",
    ),
    KnownFailure(
        name="expiry-rules",
        why=(
            "expires_at must be in the future (a JSON Schema has no notion of now), and at most one of "
            "expires_in, expires_in_days and expires_at is given (a `not` saying so makes schemathesis 4.32 "
            "crash in its coverage phase)"
        ),
        operations=frozenset({"POST /keys", "PATCH /keys/{id}"}),
        code="ST202",
        matches=_error_message_contains("Must be in the future", "Give only one of"),
    ),
    KnownFailure(
        name="ip-ranges",
        why=(
            "allowed_ips items are IPs or CIDR ranges without host bits (1.2.3.4/8 is refused, not widened): "
            "no schema format says so"
        ),
        operations=frozenset({"POST /keys", "PATCH /keys/{id}"}),
        code="ST202",
        matches=_error_message_contains("has host bits set", "is not an IP address or CIDR range"),
    ),
    KnownFailure(
        name="imported-keeper-keys",
        why="an imported key must not start with keeper_ (a Keeper key is generated, never imported)",
        operations=frozenset({"POST /keys"}),
        code="ST202",
        matches=_error_message_contains("Keeper-generated keys cannot be imported", "a wrong checksum"),
    ),
    KnownFailure(
        name="webhook-destinations",
        why=(
            "a webhook URL is https:// (http:// only where the operator allows it) and its host must resolve to "
            "public addresses or the operator's allowed networks (keeper/outbound.py), checked when saved: no "
            "schema says what a name resolves to"
        ),
        operations=frozenset({"POST /webhooks", "PATCH /webhooks/{id}"}),
        code="ST202",
        matches=_errors_only_in("url"),
    ),
    KnownFailure(
        name="watch-queries",
        why=(
            "a watch's query is run once as the caller when saved (apps/catalog/watches): a path that is no "
            "catalog route, or a query that route refuses for this caller, is a 400 naming why; no schema says "
            "which strings are catalog queries a given caller may run"
        ),
        operations=frozenset({"POST /watches", "PATCH /watches/{id}"}),
        code="ST202",
        matches=lambda failure, response: _error_code(response) == "watch_refused",
    ),
    KnownFailure(
        name="anonymous-place-limits",
        why=(
            "anonymous callers name at most 1 country and 3 regions per request, authenticated ones any number "
            "(upstream's rule): a limit that depends on the caller has no place in a parameter's schema"
        ),
        operations=frozenset(
            {
                "GET /servers",
                "GET /databases",
                "GET /server/{vendor}/{server}/prices",
                "GET /server/{vendor}/{server}/similar_servers/{by}/{num}",
                "GET /database/{vendor}/{database}/prices",
            }
        ),
        code="ST202",
        matches=_error_message_contains("can be queried at a time without authentication"),
    ),
    KnownFailure(
        name="benchmark-ranking-needs-benchmark-id",
        why="by=benchmark_score* needs benchmark_id: OpenAPI cannot make a query parameter depend on a path value",
        operations=frozenset({"GET /server/{vendor}/{server}/similar_servers/{by}/{num}"}),
        code="ST202",
        matches=_error_message_contains("requires a benchmark_id"),
    ),
    KnownFailure(
        name="servers-benchmark-filters-need-benchmark-id",
        why=(
            "/servers and /databases: the benchmark_score_* filters (on /servers also benchmark_score_max and "
            "benchmark_score_per_vcpu_min) and the selected_benchmark_score orderings need benchmark_id (as "
            "upstream); OpenAPI 3.0 has no dependency between query parameters"
        ),
        operations=frozenset({"GET /servers", "GET /databases"}),
        code="ST202",
        matches=_error_message_contains("benchmark_id is required"),
    ),
]


# bin/schemathesis-check tallies the dropped failures from this file, one entry name a line.
DROPPED_LOG = os.environ.get("SCHEMATHESIS_DROPPED_LOG")


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    label = f"{case.method.upper()} {case.operation.path}"
    code = getattr(failure, "code", "")
    for known in KNOWN_FAILURES:
        if label in known.operations and code == known.code and known.matches(failure, response):
            if DROPPED_LOG:
                with open(DROPPED_LOG, "a") as log:
                    log.write(f"{known.name} ({label})\n")
            return False
    return True
