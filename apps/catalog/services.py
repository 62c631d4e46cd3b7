"""Catalog writes: the sync that replaces the catalog with a new version of the upstream data."""

import logging
import sqlite3
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.catalog import choices
from apps.catalog.history import CatalogHistory
from apps.catalog.importer import OPTIONAL_TABLES, CatalogImporter, TableProgress, check_schema
from apps.catalog.models import (
    DatabasePrice,
    DatabaseRegionPrice,
    ServerCountryPrice,
    ServerPrice,
    ServerRegionPrice,
    SyncRun,
)
from apps.catalog.sources import CatalogSource, open_catalog_source
from apps.catalog.version import forget_catalog_state
from keeper.events.services import record_event
from keeper.events.types import EventType
from keeper.observability import metrics

logger = logging.getLogger(__name__)

# A run still RUNNING after this long was killed (a sync takes about a minute).
STALE_RUN_AFTER = timedelta(hours=1)
# Any fixed number: it only has to be the same in every process.
SYNC_LOCK_ID = 0x6B656570


def catalog_sync(
    *,
    source: str | None = None,
    force: bool = False,
    on_stage: Callable[[str, int, int], None] | None = None,
    on_table: TableProgress | None = None,
) -> SyncRun:
    """Load the catalog from `source` (path, URL or None for sparecores-data) unless unchanged.

    All-or-nothing: the tables are replaced in one transaction, so readers see
    the old catalog until the new one is committed, and a failure (or a kill)
    leaves the old one in place. The run is recorded either way.
    """
    _abandon_stale_runs()
    run = _start_run(source or "sparecores-data")
    try:
        download = (lambda done, total: on_stage("download", done, total)) if on_stage else None
        with open_catalog_source(source, progress=download) as catalog:
            run.source = catalog.label
            run.data_hash = catalog.data_hash
            last = SyncRun.objects.last_loaded()
            if (
                not force
                and last is not None
                and last.data_hash == catalog.data_hash
                and not _derived_missing()
                and not _tables_missing(last)
            ):
                run.status = choices.SyncStatus.SKIPPED
                run.schema_version = last.schema_version
            else:
                _load(run, catalog, on_stage, on_table)
                run.status = choices.SyncStatus.SUCCEEDED
        # A loaded catalog finished when it committed (the time its sync.completed event and /changes tell).
        run.finished_at = run.finished_at or timezone.now()
        run.save()
    except BaseException as exc:
        # Broad on purpose: record the failure (even a Ctrl-C), then re-raise.
        run.status = choices.SyncStatus.FAILED
        run.error = f"{exc.__class__.__name__}: {exc}"[:4000]
        run.finished_at = timezone.now()
        # After the load's transaction rolled back: the failure and its event commit together.
        with transaction.atomic():
            run.save()
            _sync_failed_event(run)
        _end_run(run)
        logger.error("Catalog sync #%s failed: %s", run.pk, run.error)
        metrics.catalog_sync_finished(status=run.status, seconds=run.duration)
        forget_catalog_state()
        raise
    _end_run(run)
    metrics.catalog_sync_finished(status=run.status, seconds=run.duration)
    forget_catalog_state()
    logger.info("Catalog sync #%s %s (%s, hash %s)", run.pk, run.status, run.source, run.data_hash[:12])
    if run.status == choices.SyncStatus.SUCCEEDED and connection.vendor == "postgresql":
        _vacuum_catalog()
    return run


def _sync_failed_event(run: SyncRun) -> None:
    """sync.failed for staff (owner ""): the run and the error as recorded on it."""
    data = {
        "sync_id": run.pk,
        "source": run.source,
        "error": run.error,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    record_event("", EventType.SYNC_FAILED, data, subject=f"sync:{run.pk}")


def _derived_missing() -> bool:
    """A catalog loaded before Keeper derived its per-region prices or the prices' countries (an
    upgrade), or the databases' per-region prices: load it again."""
    servers = ServerPrice.objects.exists() and not (
        ServerRegionPrice.objects.exists()
        and ServerCountryPrice.objects.exists()
        and ServerPrice.objects.filter(country_id__isnull=False).exists()
    )
    live = DatabasePrice.objects.filter(
        status=choices.Status.ACTIVE, unit=choices.PriceUnit.HOUR, allocation=choices.Allocation.ONDEMAND
    )
    return servers or (live.exists() and not DatabaseRegionPrice.objects.exists())


def _tables_missing(last: SyncRun) -> bool:
    """The last catalog was loaded by a Keeper that did not read some tables (managed databases, before
    issue 17): its run recorded no rows for them, not even none. Load it again, or they stay empty."""
    return any(table not in last.rows for table in OPTIONAL_TABLES)


def _vacuum_catalog() -> None:
    """Reclaim the replaced rows now: without it each sync leaves a whole catalog of dead rows
    behind (248 -> 409 MB for the sample, bench/README.md) and the next import is slower.
    VACUUM cannot run in a transaction, hence after the commit."""
    from apps.catalog.importer import TABLES

    if not connection.get_autocommit():
        return  # inside an outer transaction (tests): nothing was committed yet
    with connection.cursor() as cursor:
        for _table, model in TABLES:
            cursor.execute(f'VACUUM (ANALYZE) "{model._meta.db_table}"')


def _load(run: SyncRun, catalog: CatalogSource, on_stage, on_table) -> None:
    restore = (lambda done, total: on_stage("restore", done, total)) if on_stage else None
    database = catalog.sqlite_path(progress=restore)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        run.schema_version = check_schema(source)
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SYNC_LOCK_ID])
            # Copies what the history compares before the importer deletes it (None: a first sync).
            history = CatalogHistory.begin(run)
            result = CatalogImporter(source, progress=on_table).run()
            run.rows, run.seconds = result.rows, result.seconds
            if history is not None:
                run.changes = history.record()
                run.seconds.update(history.seconds)
            run.status = choices.SyncStatus.SUCCEEDED
            run.finished_at = timezone.now()
            # Saved inside the transaction: the catalog, the record of it and its event commit together.
            run.save()
            record_event(
                "",
                EventType.SYNC_COMPLETED,
                {
                    "sync_id": run.pk,
                    "source": run.source,
                    "data_hash": run.data_hash,
                    "schema_version": run.schema_version,
                    "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat(),
                    "duration_seconds": round(run.duration, 3),
                    "rows": run.rows,
                    "changes": run.changes,
                },
                subject=f"sync:{run.pk}",
            )
    finally:
        source.close()


# --- Runs whose process died ------------------------------------------------------
# A killed sync never records its end. On PostgreSQL each run holds a session advisory lock
# (RUN_LOCK_CLASS, run id) while its process lives, and the server drops it when that process's
# connection ends: the next sync marks a RUNNING run nobody holds the lock of as interrupted at
# once. SQLite has no such thing: there a run still RUNNING after STALE_RUN_AFTER is taken for dead.
RUN_LOCK_CLASS = 0x6B657275
INTERRUPTED = "Interrupted: the process ended before the run finished."


def _run_lock_key(pk: int) -> int:
    return pk % 2**31  # the two-key form takes 32-bit keys


def _start_run(source: str) -> SyncRun:
    if connection.vendor != "postgresql":
        return SyncRun.objects.create(source=source)
    # One transaction: no other process sees the run before its lock is held.
    with transaction.atomic():
        run = SyncRun.objects.create(source=source)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [RUN_LOCK_CLASS, _run_lock_key(run.pk)])
    return run


def _end_run(run: SyncRun) -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK_CLASS, _run_lock_key(run.pk)])
    except DatabaseError:
        pass  # the connection failed: its locks went with it


def _abandon_stale_runs() -> None:
    running = SyncRun.objects.filter(status=choices.SyncStatus.RUNNING)
    stale = Q(started_at__lt=timezone.now() - STALE_RUN_AFTER)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT objid::bigint FROM pg_locks"
                " WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint = %s",
                [RUN_LOCK_CLASS],
            )
            held = {key for (key,) in cursor.fetchall()}
        stale |= Q(pk__in=[pk for pk in running.values_list("pk", flat=True) if _run_lock_key(pk) not in held])
    for pk in running.filter(stale).values_list("pk", flat=True):
        with transaction.atomic():
            # Conditional: of two syncs starting at once, one marks the run (and records its sync.failed).
            marked = SyncRun.objects.filter(pk=pk, status=choices.SyncStatus.RUNNING).update(
                status=choices.SyncStatus.FAILED, error=INTERRUPTED
            )
            if marked:
                _sync_failed_event(SyncRun.objects.get(pk=pk))
