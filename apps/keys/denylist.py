"""Capability tokens refused before they expire: one entry per key, "its tokens issued before T".

Revoking, suspending, rotating, changing or deleting a key (apps.keys.services) refuses every
capability token the key was given until then, in every process at once: Keeper reads the entry
on each request made with a token. One entry per key stands for the deny list of all its `jti`s:
no record of issued tokens is needed, and it also covers a token issued by a concurrent request
that read the key just before the change (a token's issue time, in its `jti`, is taken before the
key is read; see apps.keys.capability).

Where entries live: in the database (TokenDenial) only. A request with a token reads its key's
row anew with the key's entry, in one query (ApiKeyQuerySet.for_verification with `denials_at`):
an entry costs no round trip of its own, and no second copy can disagree with it. (A copy in
Redis, read instead, lacked every entry Redis refused to write while it still answered reads,
out of memory for instance, and its tokens kept working: issue 15, item 2.)

Entries are kept as long as the longest-lived token (plus a margin); none of the tokens one
refuses outlives it. Clocks: the entry's time and a token's issue time come from the clocks of the
processes that wrote them, so hosts' clocks must agree (NTP) to the millisecond that matters only
for a token issued in the same instant as the change.
"""

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.keys.models import TokenDenial
from apps.keys.signing import SUPERSEDED_KEY_PUBLISHED_SECONDS

KEPT_SECONDS = SUPERSEDED_KEY_PUBLISHED_SECONDS


@dataclass(frozen=True)
class Denial:
    """Tokens of the key issued at or before `not_before_ms` (Unix ms) are refused, for `reason`."""

    not_before_ms: int
    reason: str

    def refuses(self, issued_ms: int) -> bool:
        return issued_ms <= self.not_before_ms


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
    return denial


def key_tokens_denial(key_id: str) -> Denial | None:
    """The entry refusing the key's earlier tokens, if there is one."""
    # A bare indexed SELECT costs a fraction of the ORM's query building (bench/bench_tokens.py).
    table, now = TokenDenial._meta.db_table, timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT "not_before_ms", "reason" FROM "{table}" WHERE "key_id" = %s AND "expires_at" > %s', [key_id, now]
        )
        row = cursor.fetchone()
    return Denial(*row) if row else None


def loaded_denial(key: Any) -> Denial | None:
    """The entry read with a key by `ApiKey.objects.for_verification(denials_at=...)`, if there is one."""
    not_before_ms = getattr(key, "denial_not_before_ms", None)
    return None if not_before_ms is None else Denial(not_before_ms, key.denial_reason)
