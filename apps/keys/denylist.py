"""Capability tokens refused before they expire: one entry per key, "its tokens issued before T".

Revoking, suspending, rotating, changing or deleting a key (apps.keys.services) refuses every
capability token the key was given until then, in every process at once: Keeper reads the entry
on each request made with a token. One entry per key stands for the deny list of all its `jti`s:
no record of issued tokens is needed, and it also covers a token issued by a concurrent request
that read the key just before the change (a token's issue time, in its `jti`, is taken before the
key is read; see apps.keys.capability).

Where entries live, so that every process sees them:
- in the database (TokenDenial), always: the record, which survives restarts;
- with REDIS_URL, also in the Django cache (Redis then), which requests read instead. A marker
  says the cache holds every entry; when it is missing (Redis restarted empty, or flushed) the
  entries are copied from the database again before the answer. While Redis fails, requests read
  the database.

Entries are kept as long as the longest-lived token (plus a margin); none of the tokens one
refuses outlives it. Clocks: the entry's time and a token's issue time come from the clocks of the
processes that wrote them, so hosts' clocks must agree (NTP) to the millisecond that matters only
for a token issued in the same instant as the change.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils import timezone

from apps.keys.models import TokenDenial
from apps.keys.signing import SUPERSEDED_KEY_PUBLISHED_SECONDS

logger = logging.getLogger(__name__)

KEPT_SECONDS = SUPERSEDED_KEY_PUBLISHED_SECONDS
CACHE_PREFIX = "capability-denial:"
CACHE_MARKER = CACHE_PREFIX + "complete"
LOG_EVERY_SECONDS = 60.0
_warned_at = float("-inf")


@dataclass(frozen=True)
class Denial:
    """Tokens of the key issued at or before `not_before_ms` (Unix ms) are refused, for `reason`."""

    not_before_ms: int
    reason: str

    def refuses(self, issued_ms: int) -> bool:
        return issued_ms <= self.not_before_ms


def _shared_cache():
    # Only Redis is shared between processes; the local-memory cache is not, so it is never used here.
    return caches["default"] if settings.REDIS_URL else None


def _warn(exc: Exception) -> None:
    global _warned_at
    if time.monotonic() - _warned_at >= LOG_EVERY_SECONDS:
        _warned_at = time.monotonic()
        logger.warning("Capability token deny list: Redis failed (%s), using the database", exc.__class__.__name__)


def key_tokens_refuse(key_id: str, reason: str) -> Denial:
    """Refuse, from now on, every capability token issued to the key `key_id` until now."""
    now = timezone.now()
    denial = Denial(int(time.time() * 1000), reason)
    TokenDenial.objects.filter(expires_at__lte=now).delete()
    TokenDenial.objects.update_or_create(
        key_id=key_id,
        defaults={
            "not_before_ms": denial.not_before_ms,
            "reason": reason,
            "expires_at": now + timedelta(seconds=KEPT_SECONDS),
        },
    )
    cache = _shared_cache()
    if cache is not None:
        try:
            cache.set(CACHE_PREFIX + key_id, (denial.not_before_ms, reason), KEPT_SECONDS)
        except redis.RedisError as exc:
            # The database has it; readers use the database while Redis fails.
            _warn(exc)
    return denial


def key_tokens_denial(key_id: str) -> Denial | None:
    """The entry refusing the key's earlier tokens, if there is one."""
    cache = _shared_cache()
    if cache is not None:
        try:
            found = cache.get_many([CACHE_MARKER, CACHE_PREFIX + key_id])
            if CACHE_MARKER in found:
                value = found.get(CACHE_PREFIX + key_id)
                return Denial(*value) if value else None
            _copy_to_cache(cache)
        except redis.RedisError as exc:
            _warn(exc)
    return _database_denial(key_id)


def _database_denial(key_id: str) -> Denial | None:
    # Every request with a token asks this: a bare indexed SELECT costs a fraction of the ORM's
    # query building (bench/bench_tokens.py).
    table, now = TokenDenial._meta.db_table, timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT "not_before_ms", "reason" FROM "{table}" WHERE "key_id" = %s AND "expires_at" > %s', [key_id, now]
        )
        row = cursor.fetchone()
    return Denial(*row) if row else None


def _copy_to_cache(cache) -> None:
    # `add`, not `set`: an entry written meanwhile by a revocation is newer than the row read here.
    for key_id, not_before_ms, reason in TokenDenial.objects.filter(expires_at__gt=timezone.now()).values_list(
        "key_id", "not_before_ms", "reason"
    ):
        cache.add(CACHE_PREFIX + key_id, (not_before_ms, reason), KEPT_SECONDS)
    cache.set(CACHE_MARKER, True, None)
