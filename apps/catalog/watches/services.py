"""Watches: creating and changing them, and their evaluation after each sync.

Evaluation is durable and idempotent: a sync that loaded a new catalog is evaluated by a WatchSweep;
each watch is compared once per sync (Watch.evaluated_sync, advanced by a compare-and-set in the same
transaction as its event), so a sweep run twice, or by two workers at once, records each event once.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.catalog import choices
from apps.catalog.models import SyncRun, Watch, WatchSweep, feed_token_hash, new_feed_token
from apps.catalog.watches import rows
from apps.catalog.watches.dispatch import Answer, QueryRefused, Target, run_as, target_of
from keeper.api.callers import Caller, CallerUnavailable, caller_reference, load_caller
from keeper.events.services import record_event
from keeper.events.types import EventType

logger = logging.getLogger(__name__)

# Watches evaluated per transaction-free batch (each one's event and state commit on their own).
BATCH_SIZE = 200
# The throttles whose refusal pauses a watch: the daily quota lasts until midnight UTC; the per-minute
# pool and the global bucket refill within a minute, so the watch is tried again at the next sweep.
PAUSING_THROTTLES = frozenset({"DailyQuotaThrottle"})


class WatchRefused(Exception):
    """A watch the caller may not have; `detail` says why, `route_error` is the route's own answer."""

    def __init__(self, detail: str, *, route_error: dict[str, Any] | None = None, status: int = 400):
        super().__init__(detail)
        self.detail = detail
        self.route_error = route_error
        self.status = status


@dataclass(frozen=True)
class CreatedWatch:
    watch: Watch
    feed_token: str


def watches_of(caller: Caller) -> QuerySet[Watch]:
    """The watches a caller sees: its own; staff see all."""
    if caller.is_staff:
        return Watch.objects.all()
    return Watch.objects.filter(owner=caller.owner)


def _refusal(target: Target, answer: Answer) -> WatchRefused:
    detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
    why = f": {detail}" if detail else ""
    return WatchRefused(
        f"{target.query} answers {answer.status} to you{why}",
        route_error={"status": answer.status, "body": answer.body},
    )


def _first_answer(caller: Caller, target: Target) -> Answer:
    """The query run once as its re-runs will run it (the caller rebuilt from its reference)."""
    try:
        runner = load_caller(caller_reference(caller), target.path)
    except CallerUnavailable as exc:
        raise WatchRefused(str(exc)) from None
    answer = run_as(runner, target)
    if not answer.ok:
        raise _refusal(target, answer)
    return answer


def watch_create(caller: Caller, *, name: str, query: str) -> CreatedWatch:
    """A new watch of `query` for `caller`, its baseline the query's answer now; WatchRefused says why not."""
    try:
        target = target_of(query)
    except QueryRefused as exc:
        raise WatchRefused(str(exc)) from None
    limit = settings.KEEPER_WATCHES_PER_CALLER
    if Watch.objects.filter(owner=caller.owner).count() >= limit:
        raise WatchRefused(
            f"You have {limit} watches, the most one caller may have (KEEPER_WATCHES_PER_CALLER); delete one first.",
            status=409,
        )
    answer = _first_answer(caller, target)
    token = new_feed_token()
    watch = Watch.objects.create(
        owner=caller.owner,
        name=name,
        query=target.query,
        route=target.route,
        caller=caller_reference(caller),
        feed_token_hash=feed_token_hash(token),
        rows=rows.answer_rows(target.route, answer.body),
        evaluated_sync=_latest_sync_id(),
        evaluated_at=timezone.now(),
    )
    return CreatedWatch(watch, token)


def watch_update(
    watch: Watch,
    caller: Caller,
    *,
    name: str | None = None,
    query: str | None = None,
    resume: bool = False,
    rotate_feed_token: bool = False,
) -> str | None:
    """Rename, re-aim (a new baseline), resume (the query must run again as its owner) or give a new feed
    token (returned, shown once). A resumed or re-aimed watch runs as the caller who changed it."""
    fields = ["updated_at"]
    token = None
    if name is not None:
        watch.name = name
        fields.append("name")
    if query is not None or (resume and watch.status == choices.WatchStatus.PAUSED):
        try:
            target = target_of(query if query is not None else watch.query)
        except QueryRefused as exc:
            raise WatchRefused(str(exc)) from None
        # The owner resumes with their current credentials; staff resuming someone's watch keep its owner's.
        runner = caller if caller.owner == watch.owner else None
        answer = _first_answer(runner, target) if runner else _answer_as_owner(watch, target)
        watch.query, watch.route = target.query, target.route
        watch.rows = rows.answer_rows(target.route, answer.body)
        watch.evaluated_sync, watch.evaluated_at = _latest_sync_id(), timezone.now()
        watch.status, watch.paused_reason, watch.paused_at = choices.WatchStatus.ACTIVE, "", None
        if runner:
            watch.caller = caller_reference(runner)
        fields += ["query", "route", "rows", "evaluated_sync", "evaluated_at", "status", "paused_reason", "paused_at"]
        fields += ["caller"]
    if rotate_feed_token:
        token = new_feed_token()
        watch.feed_token_hash = feed_token_hash(token)
        fields.append("feed_token_hash")
    watch.save(update_fields=fields)
    return token


def _answer_as_owner(watch: Watch, target: Target) -> Answer:
    try:
        runner = load_caller(watch.caller, target.path)
    except CallerUnavailable as exc:
        raise WatchRefused(f"The watch cannot run as its owner: {exc}") from None
    answer = run_as(runner, target)
    if not answer.ok:
        raise _refusal(target, answer)
    return answer


def _latest_sync_id() -> int | None:
    return (
        SyncRun.objects.filter(status=choices.SyncStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .values_list("id", flat=True)
        .first()
    )


# --- Evaluation after a sync ----------------------------------------------------------


@dataclass
class SweepResult:
    sync_id: int | None
    evaluated: int = 0
    changed: int = 0
    paused: int = 0
    deferred: int = 0
    finished: bool = False


def pending_watches(sync_id: int) -> QuerySet[Watch]:
    return Watch.objects.filter(status=choices.WatchStatus.ACTIVE).filter(
        Q(evaluated_sync__isnull=True) | Q(evaluated_sync__lt=sync_id)
    )


def evaluate_watches(sync_id: int | None = None) -> SweepResult:
    """Compare every active watch after the latest sync that loaded a catalog (only the latest matters: a
    re-run sees the catalog as it is now). Each watch's event and new state commit together; a watch
    refused by a per-minute limit (or a server error) is left for the next sweep."""
    latest = _latest_sync_id()
    if latest is None or (sync_id is not None and sync_id < latest):
        return SweepResult(latest)
    sweep, _ = WatchSweep.objects.get_or_create(sync_id=latest)
    result = SweepResult(latest)
    if sweep.finished_at is not None:
        result.finished = True
        return result
    started = time.perf_counter()
    callers: dict[tuple[str, str], Caller | CallerUnavailable] = {}
    last_pk = 0
    while True:
        batch = list(pending_watches(latest).filter(pk__gt=last_pk).order_by("pk")[:BATCH_SIZE])
        if not batch:
            break
        last_pk = batch[-1].pk
        for watch in batch:
            outcome = _evaluate(watch, latest, callers)
            result.evaluated += outcome != "deferred"
            result.changed += outcome == "changed"
            result.paused += outcome == "paused"
            result.deferred += outcome == "deferred"
    result.finished = not pending_watches(latest).exists()
    WatchSweep.objects.filter(pk=sweep.pk).update(
        evaluated=sweep.evaluated + result.evaluated,
        changed=sweep.changed + result.changed,
        paused=sweep.paused + result.paused,
        seconds=sweep.seconds + (time.perf_counter() - started),
        finished_at=timezone.now() if result.finished else None,
    )
    return result


def _runner(watch: Watch, path: str, callers: dict) -> Caller | CallerUnavailable:
    """The watch's owner as a Caller (remembered per reference and path for the sweep), or why not."""
    cache_key = (repr(sorted(watch.caller.items())), path)
    if cache_key not in callers:
        try:
            callers[cache_key] = load_caller(watch.caller, path)
        except CallerUnavailable as exc:
            callers[cache_key] = exc
    return callers[cache_key]


def _evaluate(watch: Watch, sync_id: int, callers: dict) -> str:
    """Re-run one watch after sync `sync_id`: "unchanged", "changed", "paused" or "deferred"."""
    try:
        target = target_of(watch.query)
    except QueryRefused as exc:
        return _pause(watch, sync_id, f"The query is no longer watchable: {exc}")
    runner = _runner(watch, target.path, callers)
    if isinstance(runner, CallerUnavailable):
        return _pause(watch, sync_id, str(runner))
    try:
        answer = run_as(runner, target)
    except Exception:  # noqa: BLE001 - one watch's failure must not stop the others; tried again next sweep
        logger.exception("Watch %s failed to run; it is tried again at the next sweep.", watch.pk)
        return "deferred"
    if answer.status == 429:
        if answer.throttled_by in PAUSING_THROTTLES or _never_fits(answer):
            return _pause(watch, sync_id, _detail(answer, "Over quota."))
        return "deferred"
    if answer.status >= 500:
        return "deferred"
    if answer.status == 404:
        after: dict[str, Any] = {}  # the watched server or database is gone: its rows removed
    elif answer.ok:
        after = rows.answer_rows(target.route, answer.body)
    else:
        return _pause(watch, sync_id, f"The query now answers {answer.status}: {_detail(answer, '')}".rstrip(": "))
    difference = rows.compare(target.route, watch.rows, after)
    with transaction.atomic():
        claimed = _claim(watch, sync_id, rows=after)
        if claimed and difference:
            record_event(
                watch.owner,
                EventType.WATCH_CHANGED,
                {
                    "watch": {"id": watch.pk, "name": watch.name, "query": watch.query},
                    "sync": {"id": sync_id},
                    **difference.as_data(),
                },
                subject=watch.subject,
            )
    if not claimed:
        return "unchanged"
    return "changed" if difference else "unchanged"


def _detail(answer: Answer, default: str) -> str:
    if isinstance(answer.body, dict) and answer.body.get("detail"):
        return str(answer.body["detail"])
    return default


def _never_fits(answer: Answer) -> bool:
    """A request costing more than the owner's whole pool: no wait makes it fit (apps/throttling)."""
    return "higher than the credit limit" in _detail(answer, "")


def _claim(watch: Watch, sync_id: int, **changes: Any) -> bool:
    """Mark `watch` evaluated after `sync_id` unless another sweep did already (compare-and-set)."""
    stale = Q(evaluated_sync__isnull=True) | Q(evaluated_sync__lt=sync_id)
    return bool(
        Watch.objects.filter(stale, pk=watch.pk).update(evaluated_sync=sync_id, evaluated_at=timezone.now(), **changes)
    )


def _pause(watch: Watch, sync_id: int, reason: str) -> str:
    with transaction.atomic():
        if not _claim(
            watch, sync_id, status=choices.WatchStatus.PAUSED, paused_reason=reason, paused_at=timezone.now()
        ):
            return "unchanged"
        record_event(
            watch.owner,
            EventType.WATCH_PAUSED,
            {
                "watch": {"id": watch.pk, "name": watch.name, "query": watch.query},
                "sync": {"id": sync_id},
                "reason": reason,
            },
            subject=watch.subject,
        )
    return "paused"


def watch_pause(watch: Watch, reason: str) -> None:
    """Pause a watch by hand (the admin); its owner resumes it with PATCH {"status": "active"}."""
    Watch.objects.filter(pk=watch.pk).update(
        status=choices.WatchStatus.PAUSED, paused_reason=reason, paused_at=timezone.now()
    )
