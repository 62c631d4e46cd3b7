"""Error reports to Sentry (SENTRY_DSN), with every secret taken out before an event leaves.

Three layers, because a key can hide in many places of an event:
1. sentry_sdk's EventScrubber, extended with Keeper's names (`x_api_key`, `key`...): values
   under those names anywhere in the event (headers, bodies, extra) become "[Filtered]".
2. before_send (scrub_event): the request's Authorization, X-API-Key and Cookie headers and
   cookies, secret-looking query parameters (`key`, `token`, `api_key`...), and the whole body
   of /keys requests (keys are created and imported there).
3. Then every string of the event (messages, exception values, breadcrumbs, URLs): anything
   that looks like a Keeper key (`keeper_...`), a bearer or basic credential, or a secret
   query parameter is replaced.
Stack frames carry no local variables: a key or token read from a header sits in variables
with ordinary names (`value`, `header`) that no denylist can know.
"""

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import ignore_logger
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

FILTERED = "[Filtered]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"})
# Query parameter names holding these words are secrets (key, api_key, token, access_token, ...).
_SECRET_NAME = r"[\w.-]*(?:key|token|secret|passw|auth|signature|session)[\w.-]*"
_SECRET_PARAMETER = re.compile(rf"(?i)(^|[?&;])({_SECRET_NAME})=([^&;#\s\"']*)")
_KEEPER_KEY = re.compile(r"keeper_[0-9A-Za-z_]{8,}")
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[^\s,;\"']+")
# Paths whose request bodies may hold a key (POST /keys imports one, /keys/validate checks one; the admin's forms).
SECRET_BODY_PATHS = ("/keys", "/admin/keys")
EXTRA_DENYLIST = ["x_api_key", "api-key", "x-api-key", "key", "access_token", "refresh_token", "client_secret"]


def scrub_text(text: str) -> str:
    """`text` with Keeper keys, bearer/basic credentials and secret query parameters replaced."""
    text = _KEEPER_KEY.sub(f"keeper_{FILTERED}", text)
    text = _CREDENTIAL.sub(lambda match: f"{match.group(1)} {FILTERED}", text)
    return _SECRET_PARAMETER.sub(lambda match: f"{match.group(1)}{match.group(2)}={FILTERED}", text)


def _scrub_all_strings(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub_all_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_all_strings(item) for item in value]
    return value


def _scrub_headers(headers: Any) -> Any:
    if isinstance(headers, dict):
        return {name: FILTERED if str(name).lower() in SECRET_HEADERS else value for name, value in headers.items()}
    if isinstance(headers, list):  # [[name, value], ...]
        return [
            [pair[0], FILTERED] if isinstance(pair, list | tuple) and str(pair[0]).lower() in SECRET_HEADERS else pair
            for pair in headers
        ]
    return headers


def _secret_body(path: str | None) -> bool:
    # A body whose path is unknown might be anything: treated as secret.
    return path is None or any(path == prefix or path.startswith(prefix + "/") for prefix in SECRET_BODY_PATHS)


def _scrub_request(request: dict[str, Any], transaction: Any) -> None:
    if "headers" in request:
        request["headers"] = _scrub_headers(request["headers"])
    if "cookies" in request:
        request["cookies"] = FILTERED
    if isinstance(request.get("query_string"), str):
        request["query_string"] = scrub_text(request["query_string"])
    url = request.get("url")
    # The URL, else the transaction (its route, as the Django integration names it).
    path = re.sub(r"^[a-z]+://[^/]*", "", url) if isinstance(url, str) else None
    if path is None and isinstance(transaction, str) and transaction.startswith("/"):
        path = transaction
    if "data" in request and _secret_body(path):
        request["data"] = FILTERED


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """sentry_sdk's before_send: the event without secrets (see the module docstring)."""
    request = event.get("request")
    if isinstance(request, dict):
        _scrub_request(request, event.get("transaction"))
    return _scrub_all_strings(event)


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return _scrub_all_strings(crumb)


def init_sentry(dsn: str, **options: Any) -> None:
    """sentry_sdk.init for Keeper; `options` (a transport, for tests) are passed on."""
    sentry_sdk.init(
        dsn=dsn,
        traces_sample_rate=0.0,
        include_local_variables=False,
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *EXTRA_DENYLIST], recursive=True),
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        **options,
    )
    # One line per request, at info: neither an event nor a useful breadcrumb.
    ignore_logger("keeper.requests")
