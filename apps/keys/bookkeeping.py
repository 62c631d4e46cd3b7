"""A key's `last_used_at` and the audit of a revoked key's use, written behind the request (keeper/writes.py).

In a gunicorn worker, key_authenticate hands these here instead of writing them, and the worker's
flusher thread writes them about once a second, so that no request waits on the database's write
lock (a sync holds SQLite's for its whole transaction). Elsewhere (runserver, tests, Celery) they are
written during the request, as before.
"""

import threading
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from apps.keys.models import ApiKey, AuditEvent
from keeper.observability import metrics

# Audit events a worker holds for the flusher at most; beyond, they are dropped and counted.
AUDIT_BUFFER_MAX = 10_000


class KeyBookkeeping:
    def __init__(self, *, max_audits: int = AUDIT_BUFFER_MAX) -> None:
        self.max_audits = max_audits
        self._last_used: dict[int, tuple[datetime, datetime]] = {}
        self._audits: list[AuditEvent] = []
        self._lock = threading.Lock()

    def touch(self, key_pk: int, now: datetime, *, stale_before: datetime) -> None:
        """Stamp the key used at `now`, unless its stored stamp is later than `stale_before` by then."""
        with self._lock:
            kept = self._last_used.get(key_pk)
            # The earliest stale bound: the write must not be refused because later requests moved it on.
            self._last_used[key_pk] = (now, kept[1] if kept else stale_before)

    def audit(self, event: AuditEvent) -> None:
        """Keep an unsaved event (its `at`: the request's time) for the flusher; beyond the bound, drop and count."""
        with self._lock:
            if len(self._audits) < self.max_audits:
                self._audits.append(event)
                return
        metrics.deferred_write_dropped("audit")

    def flush(self) -> None:
        with self._lock:
            stamps, self._last_used = self._last_used, {}
            events, self._audits = self._audits, []
        try:
            for key_pk, (now, stale_before) in list(stamps.items()):
                # Conditional, as the inline write: concurrent workers write it once per interval.
                ApiKey.objects.filter(pk=key_pk).filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before)
                ).update(last_used_at=now)
                del stamps[key_pk]
            if events:
                existing = set(ApiKey.objects.filter(pk__in={e.key_id for e in events}).values_list("pk", flat=True))
                for event in events:
                    if event.key_id not in existing:
                        event.key = None  # deleted meanwhile: the event keeps its masked key_ref
                with transaction.atomic():
                    AuditEvent.objects.bulk_create(events)
                events = []
        finally:
            with self._lock:
                for key_pk, (now, stale_before) in stamps.items():
                    kept = self._last_used.get(key_pk)
                    self._last_used[key_pk] = (max(now, kept[0]) if kept else now, stale_before)
                room = max(self.max_audits - len(self._audits), 0)
                if len(events) > room:
                    metrics.deferred_write_dropped("audit", len(events) - room)
                self._audits[:0] = events[:room]


key_bookkeeping = KeyBookkeeping()
