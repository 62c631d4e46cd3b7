"""Prometheus metrics of Keeper, and the one-line helpers the apps call to count.

Labels are bounded by construction: routes are URL patterns (`/server/{vendor}/{server}`, or
`unmatched`), methods a fixed set, reasons and outcomes fixed words. Nothing is labelled per
key, user or IP: those are unbounded, and who called is in the request log instead.

Several processes: gunicorn sets PROMETHEUS_MULTIPROC_DIR (keeper/gunicorn.conf.py) before any
process imports prometheus_client, which then keeps each process's values in files there; a
scrape of any worker sums them (MultiProcessCollector). Without it (tests, runserver) the values
live in this process's default registry. Either way the gauges the apps register with
`gauge_at_scrape` (the catalog's age) are read at scrape time from the database, so they are the same
whichever worker answers.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

HTTP_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
UNMATCHED_ROUTE = "unmatched"

REQUESTS = Counter(
    "keeper_http_requests",
    "Answers, by route (URL pattern; unmatched: unknown URLs, and answers Django never saw), method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "keeper_http_request_duration_seconds",
    "Time from the request reaching Django to the last byte of its answer, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
THROTTLE_REFUSALS = Counter(
    "keeper_throttle_refusals",
    "Requests refused by a limit: pool (credits per minute), quota (a key's daily quota), "
    "global_bucket (the API-wide token bucket), login (password sign-ins past the failure limits).",
    ["reason"],
)
UNAUTHORIZED_PENALTIES = Counter(
    "keeper_unauthorized_penalties",
    "401 answers charged RATE_LIMIT_UNAUTHORIZED_PENALTY extra credits.",
)
TOKEN_CACHE = Counter(
    "keeper_token_cache_lookups",
    "Bearer token verdicts by where they came from: l1 (this process), l2 (Redis), miss (asked the provider).",
    ["level"],
)
IDP_CALLS = Counter(
    "keeper_identity_provider_calls",
    "Token introspection calls to the identity provider, by outcome (ok, failure).",
    ["outcome"],
)
IDP_SECONDS = Histogram(
    "keeper_identity_provider_call_duration_seconds",
    "Duration of token introspection calls.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
KEY_VERIFICATIONS = Counter(
    "keeper_api_key_verifications",
    "API keys presented to authenticate, by outcome: valid, invalid (401: unknown, revoked, suspended, "
    "expired, malformed), forbidden (403: endpoint or IP not allowed).",
    ["outcome"],
)
SYNC_RUNS = Counter(
    "keeper_catalog_sync_runs",
    "Catalog sync runs by status (SUCCEEDED, SKIPPED, FAILED).",
    ["status"],
)
SYNC_SECONDS = Histogram(
    "keeper_catalog_sync_duration_seconds",
    "Duration of catalog sync runs, by status.",
    ["status"],
    buckets=(1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
)
DATABASE_LOCK_TIMEOUTS = Counter(
    "keeper_database_lock_timeouts",
    "Requests that waited KEEPER_DATABASE_LOCK_WAIT_SECONDS for a database lock (a sync holding SQLite's), "
    "by outcome: deferred (a quota's count, written once the lock is free), unavailable (answered 503).",
    ["outcome"],
)
DEFERRED_WRITES_DROPPED = Counter(
    "keeper_deferred_writes_dropped",
    "Bookkeeping writes dropped because the write-behind buffer was full while the database stayed locked, "
    "by kind (audit: a refused use of a revoked key).",
    ["kind"],
)


# --- What the apps call ----------------------------------------------------------


# The labelled series of each (route, method, status), found once: labels() checks and locks on every call.
# As bounded as the labels themselves (routes are URL patterns, methods a fixed set).
_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def request_observed(*, route: str | None, method: str, status: int, seconds: float) -> None:
    label = route or UNMATCHED_ROUTE
    method = method if method in HTTP_METHODS else "other"
    series = _request_series.get((label, method, status))
    if series is None:
        series = (REQUESTS.labels(label, method, str(status)), REQUEST_SECONDS.labels(label))
        _request_series[(label, method, status)] = series
    series[0].inc()
    series[1].observe(seconds)


def throttle_refused(reason: str) -> None:
    """`reason`: pool, quota, global_bucket or login."""
    THROTTLE_REFUSALS.labels(reason).inc()


def unauthorized_penalty_charged() -> None:
    UNAUTHORIZED_PENALTIES.inc()


def token_cache_lookup(level: str) -> None:
    """`level`: l1, l2 or miss."""
    TOKEN_CACHE.labels(level).inc()


@contextmanager
def identity_provider_call() -> Iterator[None]:
    """Times and counts the block; an exception leaving it is a failure (and goes on)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        IDP_CALLS.labels("failure").inc()
        raise
    else:
        IDP_CALLS.labels("ok").inc()
    finally:
        IDP_SECONDS.observe(time.perf_counter() - started)


def key_verified(outcome: str) -> None:
    """`outcome`: valid, invalid or forbidden."""
    KEY_VERIFICATIONS.labels(outcome).inc()


def database_lock_timeout(outcome: str) -> None:
    """`outcome`: deferred or unavailable."""
    DATABASE_LOCK_TIMEOUTS.labels(outcome).inc()


def deferred_write_dropped(kind: str, count: int = 1) -> None:
    DEFERRED_WRITES_DROPPED.labels(kind).inc(count)


def catalog_sync_finished(*, status: str, seconds: float | None) -> None:
    SYNC_RUNS.labels(status).inc()
    if seconds is not None:
        SYNC_SECONDS.labels(status).observe(seconds)


# --- Scrapes ---------------------------------------------------------------------


class ScrapeGauge:
    """A gauge without labels whose value is read at each scrape (from the database, say).

    No sample while `read` has no value (None), or while the database does not answer (alert on
    `absent(...)` too): the other metrics matter most exactly then.
    """

    def __init__(self, name: str, documentation: str, read: Callable[[], float | None]):
        self.name, self.documentation, self.read = name, documentation, read

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(self.name, self.documentation)
        try:
            value = self.read()
        except DatabaseError:
            value = None
        if value is not None:
            gauge.add_metric([], value)
        yield gauge


# Filled by the apps that own the values (their AppConfig.ready), so this module imports none of them.
_scrape_gauges: dict[str, ScrapeGauge] = {}


def gauge_at_scrape(name: str, documentation: str, read: Callable[[], float | None]) -> None:
    """Have every scrape report `name`, the value `read()` returns then (see ScrapeGauge)."""
    _scrape_gauges[name] = ScrapeGauge(name, documentation, read)


class _Scrape:
    """The collectors of one scrape, in order (what generate_latest needs: a `collect()`)."""

    def __init__(self, sources: Iterable):
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def multiprocess_dir() -> str | None:
    return settings.PROMETHEUS_MULTIPROC_DIR


def exposition(accept: str | None) -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the text format the Accept header prefers."""
    path = multiprocess_dir()
    # Multiprocess: each scrape reads every process's files afresh. Single: this process's registry.
    values = MultiProcessCollector(None, path=path) if path else REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Scrape([values, *_scrape_gauges.values()])), content_type
