"""Per-key usage counters: gathered in each process, added to the database in batches.

A database write per request would put a write lock on the hot path; batches
of KEEPER_KEY_USAGE_FLUSH_SECONDS cost one short transaction per key and day.
Counters still in memory when a process is killed are lost (analytics, not billing:
quotas are counted by the rate-limit backend).
"""

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.keys.models import KeyUsageDay


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    credits: int = 0
    endpoints: Counter = field(default_factory=Counter)


class UsageBuffer:
    def __init__(self):
        self._tallies: dict[tuple[int, date], _Tally] = defaultdict(_Tally)
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()

    def record(self, key_pk: int, *, status: int, route: str, credits: int) -> None:
        day = timezone.now().date()
        with self._lock:
            tally = self._tallies[(key_pk, day)]
            tally.requests += 1
            tally.errors += status >= 400
            tally.rate_limited += status == 429
            tally.credits += credits
            tally.endpoints[route] += 1
        if time.monotonic() - self._flushed_at >= settings.KEEPER_KEY_USAGE_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            tallies, self._tallies = self._tallies, defaultdict(_Tally)
            self._flushed_at = time.monotonic()
        for (key_pk, day), tally in tallies.items():
            with transaction.atomic():
                row, _ = KeyUsageDay.objects.select_for_update().get_or_create(key_id=key_pk, day=day)
                row.requests += tally.requests
                row.errors += tally.errors
                row.rate_limited += tally.rate_limited
                row.credits += tally.credits
                endpoints = Counter(row.endpoints)
                endpoints.update(tally.endpoints)
                row.endpoints = dict(endpoints)
                row.save()


usage_buffer = UsageBuffer()
