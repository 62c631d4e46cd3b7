"""Every API request, counted per UTC day and credential, with its refusals by reason (the staff overview).

Counted in each process and added to TrafficDay in batches at most KEEPER_KEY_USAGE_FLUSH_SECONDS
apart (one UPDATE per credential and day: five rows a day at most), so no request waits on a write
(in a gunicorn worker, the flusher thread writes them: keeper/writes.py).
A process that is killed loses what it had not flushed yet: analytics, not billing (limits are
counted by the rate-limit backend).
"""

import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.accounts.authentication import API_KEY_PREFIX
from apps.keys.capability import looks_like_capability_token
from apps.keys.choices import Credential, Refusal
from apps.keys.models import TrafficDay
from apps.keys.throttles import DailyQuotaThrottle
from apps.throttling.throttles import CreditThrottle, GlobalTokenBucketThrottle
from keeper import writes

REFUSED_BY = {
    GlobalTokenBucketThrottle: Refusal.GLOBAL,
    CreditThrottle: Refusal.POOL,
    DailyQuotaThrottle: Refusal.QUOTA,
}


@dataclass
class _Counts:
    requests: int = 0
    errors: int = 0
    credits: int = 0
    unauthorized: int = 0
    forbidden: int = 0
    pool: int = 0
    quota: int = 0
    global_bucket: int = 0

    def add(self, other: "_Counts") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def presented_credential(request: HttpRequest) -> str:
    """What the request presented, valid or not (read from its headers: no lookup, no session load)."""
    if request.META.get("HTTP_X_API_KEY"):
        return Credential.API_KEY
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        if token.startswith(API_KEY_PREFIX):
            return Credential.API_KEY
        return Credential.CAPABILITY_TOKEN if looks_like_capability_token(token) else Credential.TOKEN
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return Credential.SESSION
    return Credential.ANONYMOUS


def refusal_of(request: HttpRequest, status: int) -> str | None:
    """Which of the overview's refusals an answer is, if any."""
    if status == 401:
        return Refusal.UNAUTHORIZED
    if status == 403:
        return Refusal.FORBIDDEN
    if status != 429:
        return None
    throttle = getattr(request, "throttled_by", None)
    if throttle is not None:
        return REFUSED_BY.get(throttle)
    # RateLimitMiddleware charges URLs without a view to the caller's pool; any other 429 (too many
    # open streams) is no limit's refusal.
    return Refusal.POOL if getattr(request, "resolver_match", None) is None else None


def is_counted(request: HttpRequest) -> bool:
    """API requests only: not the admin's pages or its sign-in (static files never get this far)."""
    match = getattr(request, "resolver_match", None)
    return match is None or not (match.namespace == "admin" or (match.url_name or "").startswith("oidc_"))


class TrafficBuffer:
    def __init__(self) -> None:
        self._counts: dict[tuple[date, str], _Counts] = defaultdict(_Counts)
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()
        # Tests turn this off and flush by hand: a flush in another test's request would add to its pinned queries.
        self.auto_flush = True

    def record(self, request: HttpRequest, response: HttpResponse) -> None:
        status = response.status_code
        refusal = refusal_of(request, status)
        state = getattr(request, "rate_limit", None)
        # What the limits charged: nothing for a request they refused, nor while they are off (then only a
        # key's own pool is charged). No route cost looked up here: that may read the database.
        credits = 0 if status == 429 or state is None else state.cost
        key = (timezone.now().date(), presented_credential(request))
        with self._lock:
            counts = self._counts[key]
            counts.requests += 1
            counts.errors += status >= 400
            counts.credits += credits
            if refusal is not None:
                setattr(counts, refusal, getattr(counts, refusal) + 1)
        # In a gunicorn worker the flusher thread writes them (keeper/writes.py): no request waits on a lock.
        if self.auto_flush and not writes.deferring():
            self.flush_if_due()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= settings.KEEPER_KEY_USAGE_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._counts = self._counts, defaultdict(_Counts)
            self._flushed_at = time.monotonic()
        try:
            while pending:
                (day, credential), counts = next(iter(pending.items()))
                _add(day, credential, counts)
                del pending[(day, credential)]
        except DatabaseError:
            # Kept for the next flush rather than lost with this one.
            with self._lock:
                for key, counts in pending.items():
                    self._counts[key].add(counts)
            raise

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


def _add(day: date, credential: str, counts: _Counts) -> None:
    values = asdict(counts)
    rows = TrafficDay.objects.filter(day=day, credential=credential)
    increments = {name: F(name) + value for name, value in values.items() if value}
    if rows.update(**increments):
        return
    try:
        with transaction.atomic():
            TrafficDay.objects.create(day=day, credential=credential, **values)
    except IntegrityError:
        # Another process created the row meanwhile.
        rows.update(**increments)


traffic_buffer = TrafficBuffer()
