"""What a gunicorn worker writes behind its requests (apps/keys/bookkeeping.py): `last_used_at` and the audit
of a revoked key's use, written by a flush (the worker's flusher thread calls it; here the test does).

tests/faults/test_sqlite_write_lock.py checks the same under gunicorn while a sync's lock is held.
"""

from datetime import timedelta

from django.utils import timezone
from prometheus_client import REGISTRY

from apps.keys.bookkeeping import KeyBookkeeping
from apps.keys.choices import AuditAction
from apps.keys.models import ApiKey, AuditEvent
from apps.keys.policy import Actor
from apps.keys.services import _audit_event


def _dropped() -> float:
    return REGISTRY.get_sample_value("keeper_deferred_writes_dropped_total", {"kind": "audit"}) or 0.0


def test_a_flush_stamps_each_key_once_with_its_latest_use(make_key):
    first, second = make_key().api_key, make_key().api_key
    book = KeyBookkeeping()
    start = timezone.now()
    for offset in (0, 1, 2):
        book.touch(first.pk, start + timedelta(seconds=offset), stale_before=start - timedelta(minutes=1))
    book.touch(second.pk, start, stale_before=start - timedelta(minutes=1))

    book.flush()

    stamps = dict(ApiKey.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "last_used_at"))
    assert stamps == {first.pk: start + timedelta(seconds=2), second.pk: start}


def test_a_flush_leaves_a_stamp_written_since_the_request_alone(make_key):
    key = make_key().api_key
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    book = KeyBookkeeping()
    # The request saw an old stamp; another worker wrote a fresh one before this flush.
    book.touch(key.pk, now + timedelta(seconds=5), stale_before=now - timedelta(seconds=60))

    book.flush()

    assert ApiKey.objects.get(pk=key.pk).last_used_at == now


def test_deferred_audit_events_keep_the_request_time_and_outlive_a_deleted_key(make_key):
    kept, deleted = make_key().api_key, make_key().api_key
    book = KeyBookkeeping()
    actor = Actor("key:somebody", "203.0.113.9")
    for key in (kept, deleted):
        book.audit(_audit_event(key, AuditAction.DENIED, actor, detail="use of a revoked key"))
    at = {event.key_ref: event.at for event in book._audits}
    deleted_ref = deleted.masked
    deleted.delete()

    book.flush()

    events = AuditEvent.objects.filter(action=AuditAction.DENIED).order_by("id")
    assert [(e.key_id, e.key_ref, e.ip, e.at) for e in events] == [
        (kept.pk, kept.masked, "203.0.113.9", at[kept.masked]),
        (None, deleted_ref, "203.0.113.9", at[deleted_ref]),
    ]


def test_audit_events_beyond_the_buffer_are_dropped_and_counted(make_key):
    key = make_key().api_key
    book = KeyBookkeeping(max_audits=2)
    before = _dropped()
    for _ in range(5):
        book.audit(_audit_event(key, AuditAction.DENIED, Actor("key:x", None), detail="use of a revoked key"))

    book.flush()

    assert AuditEvent.objects.filter(action=AuditAction.DENIED).count() == 2
    assert _dropped() - before == 3
