"""Per-key usage counters (requests, errors, 429s, credits, requests per route, per UTC day).

A database write per request would put a write lock on the hot path, so counters are gathered
and added to KeyUsageDay in batches. Where they wait in between decides what a crash loses:

- With REDIS_URL, each request adds to Redis at once (one MULTI/EXEC of HINCRBYs on the hash of
  the key and day, plus its name in a set of pending hashes), and any process moves them to the
  database every KEEPER_KEY_USAGE_FLUSH_SECONDS. A flush takes a batch of at most FLUSH_BATCH
  hashes out of Redis in one Lua script (SPOP the names, HGETALL and DEL each hash), so two
  flushers never take the same counts and nothing is counted twice; then it adds them to the
  database. A worker killed between requests loses nothing. A process killed after taking a batch
  and before committing it loses that batch: at most FLUSH_BATCH keys' counts since the previous
  flush. A database error puts the batch back into Redis. Redis itself keeps them only as well as
  it is configured to (without persistence, a Redis restart loses what was not yet flushed).
- Without Redis, and in a process while Redis fails, counters are kept in the process: a killed
  process loses at most KEEPER_KEY_USAGE_FLUSH_SECONDS of its counts.

These are analytics, not billing: quotas and credit pools are counted by the rate-limit backend.
In a gunicorn worker no request flushes: the worker's flusher thread does, so that no request waits
on the database's write lock (keeper/writes.py), and a worker's normal exit flushes what is left.
"""

import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from apps.keys.models import ApiKey, KeyUsageDay
from keeper import writes

logger = logging.getLogger(__name__)

REDIS_PREFIX = "keeper:key-usage:"
PENDING_SET = REDIS_PREFIX + "pending"
ROUTE_FIELD = "route:"
# Hashes nobody flushed (no process has served a key since) are dropped after this long.
REDIS_TTL_SECONDS = 35 * 24 * 3600
# Keys (of one day) per batch taken out of Redis: the most one crash mid-flush can lose.
FLUSH_BATCH = 100
# A flush runs in some request: beyond this many batches, the rest waits for the next flush.
MAX_BATCHES_PER_FLUSH = 20
# After a Redis failure, a process counts in memory for this long before trying Redis again.
RETRY_REDIS_AFTER_SECONDS = 5.0
LOG_EVERY_SECONDS = 60.0
# The counts of a _Tally kept in a Redis hash field each.
COUNTS = ("requests", "errors", "rate_limited", "credits", "quota_refused")

# KEYS[1] the pending set; ARGV[1] the hash prefix, ARGV[2] the batch size. Atomic, so a count is
# either in the batch returned (and gone from Redis) or still in Redis for a later flush.
TAKE_BATCH_SCRIPT = """
local names = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
local batch = {}
for _, name in ipairs(names) do
  local hash = ARGV[1] .. name
  local fields = redis.call('HGETALL', hash)
  if #fields > 0 then
    redis.call('DEL', hash)
    batch[#batch + 1] = name
    batch[#batch + 1] = fields
  end
end
return batch
"""


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    credits: int = 0
    endpoints: Counter = field(default_factory=Counter)
    # 429s of the key's own daily quota: not stored, read by the flush for key.quota_exhausted.
    quota_refused: int = 0

    def add(self, other: "_Tally") -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.rate_limited += other.rate_limited
        self.credits += other.credits
        self.endpoints.update(other.endpoints)
        self.quota_refused += other.quota_refused


Tallies = dict[tuple[int, date], _Tally]


class RedisUsageStore:
    """The counters in Redis: one hash per key and day, and the set of hashes waiting for a flush."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.take_script = client.register_script(TAKE_BATCH_SCRIPT)

    def add(self, tallies: Tallies) -> None:
        """Add `tallies` in one round trip, atomically (a flush takes all of a request's counts or none)."""
        pipe = self.client.pipeline(transaction=True)
        for (key_pk, day), tally in tallies.items():
            name = f"{day.isoformat()}:{key_pk}"
            hash_key = REDIS_PREFIX + name
            for column in COUNTS:
                if amount := getattr(tally, column):
                    pipe.hincrby(hash_key, column, amount)
            for route, amount in tally.endpoints.items():
                pipe.hincrby(hash_key, ROUTE_FIELD + route, amount)
            pipe.expire(hash_key, REDIS_TTL_SECONDS)
            pipe.sadd(PENDING_SET, name)
        pipe.execute()

    def take_batch(self, size: int = FLUSH_BATCH) -> Tallies:
        """Up to `size` key-days of counts, removed from Redis."""
        reply = self.take_script(keys=[PENDING_SET], args=[REDIS_PREFIX, size])
        tallies: Tallies = {}
        for name, fields in zip(reply[::2], reply[1::2]):
            day, key_pk = name.decode().split(":")
            tally = _Tally()
            for column, value in zip(fields[::2], fields[1::2]):
                column, amount = column.decode(), int(value)
                if column.startswith(ROUTE_FIELD):
                    tally.endpoints[column.removeprefix(ROUTE_FIELD)] += amount
                elif column in COUNTS:
                    setattr(tally, column, amount)
            tallies[(int(key_pk), date.fromisoformat(day))] = tally
        return tallies


class UsageBuffer:
    """Records each request's counts (in Redis when configured, else here) and flushes them to the database."""

    def __init__(self):
        self._tallies: Tallies = defaultdict(_Tally)
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()
        self._store: tuple[str, RedisUsageStore] | None = None
        self._redis_down_until = 0.0
        self._warned_at = float("-inf")

    def record(self, key_pk: int, *, status: int, route: str, credits: int, quota_refused: bool = False) -> None:
        tally = _Tally(1, int(status >= 400), int(status == 429), credits, Counter({route: 1}), int(quota_refused))
        tallies = {(key_pk, timezone.now().date()): tally}
        store = self._redis()
        if store is not None:
            try:
                store.add(tallies)
            except redis.RedisError as exc:
                self._redis_failed(exc)
                self._keep(tallies)
        else:
            self._keep(tallies)
        # In a gunicorn worker the flusher thread writes them (keeper/writes.py): no request waits on a lock.
        if not writes.deferring():
            self.flush_if_due()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= settings.KEEPER_KEY_USAGE_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Add this process's counters, then (with Redis) everyone's counters in Redis, to the database."""
        with self._lock:
            tallies, self._tallies = self._tallies, defaultdict(_Tally)
            self._flushed_at = time.monotonic()
        if not self._write(tallies, put_back=self._keep):
            return
        store = self._redis()
        for _ in range(MAX_BATCHES_PER_FLUSH):
            if store is None:
                return
            try:
                batch = store.take_batch()
            except redis.RedisError as exc:
                self._redis_failed(exc)
                return
            if not batch or not self._write(batch, put_back=self._put_back):
                return

    def _keep(self, tallies: Tallies) -> None:
        with self._lock:
            for day_key, tally in tallies.items():
                self._tallies[day_key].add(tally)

    def _put_back(self, tallies: Tallies) -> None:
        """Counts taken from Redis that could not be written: back to Redis, else into this process."""
        store = self._redis()
        try:
            if store is None:
                raise redis.ConnectionError("Redis is not in use")
            store.add(tallies)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            self._keep(tallies)

    def _write(self, tallies: Tallies, *, put_back) -> bool:
        """Add `tallies` to KeyUsageDay; on a database failure hand the unwritten ones to `put_back`."""
        if not tallies:
            return True
        pending = dict(tallies)
        today = timezone.now().date()
        written: dict[int, bool] = {}
        try:
            existing = set(ApiKey.objects.filter(pk__in={pk for pk, _ in pending}).values_list("pk", flat=True))
            for (key_pk, day), tally in list(pending.items()):
                if key_pk in existing:
                    try:
                        _add_to_day(key_pk, day, tally)
                    except IntegrityError:
                        pass  # the key was deleted meanwhile: its counts go with it
                    else:
                        if day == today:
                            written[key_pk] = written.get(key_pk, False) or tally.quota_refused > 0
                del pending[(key_pk, day)]
        except DatabaseError as exc:
            logger.warning("Key usage not written (%s): kept for the next flush.", exc.__class__.__name__)
            put_back(pending)
            return False
        _record_quota_events(written)
        return True

    def _redis(self) -> RedisUsageStore | None:
        url = settings.REDIS_URL
        if not url or time.monotonic() < self._redis_down_until:
            return None
        if self._store is None or self._store[0] != url:
            client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
            self._store = (url, RedisUsageStore(client))
        return self._store[1]

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._redis_down_until = now + RETRY_REDIS_AFTER_SECONDS
        if now - self._warned_at >= LOG_EVERY_SECONDS:
            self._warned_at = now
            logger.warning(
                "Key usage: Redis unavailable (%s); counting in this process's memory until it is back.",
                exc.__class__.__name__,
            )


def _record_quota_events(used: dict[int, bool]) -> None:
    """The quota events of the keys used today (key.quota_warning, key.quota_exhausted): here, behind the
    requests, rather than in them. The counts are written already: a failure here loses no count."""
    from apps.keys.services import keys_record_quota_events

    if not used:
        return
    try:
        keys_record_quota_events(used)
    except DatabaseError as exc:
        # The next flush of these keys asks again (the day's markers make it record each event once).
        logger.warning("Key quota events not recorded (%s): asked again at the next flush.", exc.__class__.__name__)


def _add_to_day(key_pk: int, day: date, tally: _Tally) -> None:
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
