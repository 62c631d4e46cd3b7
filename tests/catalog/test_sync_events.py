"""Sync events for staff (issue 18): sync.completed with the run's figures, in the sync's transaction;
sync.failed with the error as recorded, even though the sync's transaction rolled back."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.catalog import services
from apps.catalog.models import Server, SyncRun
from apps.catalog.services import catalog_sync
from keeper.events.models import Event
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import sample_catalog


def sync_events() -> list[Event]:
    return list(Event.objects.filter(type__startswith="sync.").order_by("id"))


def broken_catalog():
    """A catalog the importer fails on half-way, inside the sync's transaction (a price's tiers not JSON)."""
    upstream = sample_catalog()
    upstream.db.execute("UPDATE server_price SET price_tiered = '[{not json' WHERE allocation = 'ONDEMAND'")
    return upstream


def test_a_loaded_sync_records_sync_completed_for_staff_with_its_figures(sync_upstream):
    first = sync_upstream(sample_catalog())
    second = sync_upstream(changed_catalog())

    events = sync_events()
    assert [(event.type, event.owner, event.subject) for event in events] == [
        ("sync.completed", "", f"sync:{first.pk}"),
        ("sync.completed", "", f"sync:{second.pk}"),
    ]
    for event, run in zip(events, (first, second)):
        assert event.data == {
            "sync_id": run.pk,
            "source": run.source,
            "data_hash": run.data_hash,
            "schema_version": run.schema_version,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat(),
            "duration_seconds": round(run.duration, 3),
            "rows": run.rows,
            "changes": run.changes,
        }
    assert events[0].data["changes"] is None  # a first sync compares nothing
    assert events[1].data["changes"]["server"] == second.changes["server"]
    assert sum(events[1].data["changes"]["server"].values()) > 0
    assert events[1].data["rows"]["server"] == changed_catalog().count("server")


def test_an_unchanged_catalog_skipped_records_no_event(sync_upstream):
    sync_upstream(sample_catalog())

    skipped = sync_upstream(sample_catalog(), force=False)

    assert skipped.status == "SKIPPED"
    assert [event.type for event in sync_events()] == ["sync.completed"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_sync_records_sync_failed_after_its_transaction_rolled_back(tmp_path):
    assert not connection.in_atomic_block  # the sync's own transaction, really rolled back
    catalog_sync(source=str(sample_catalog().save(tmp_path / "first.db")))
    servers = Server.objects.count()

    with pytest.raises(ValueError, match="Expecting property name"):
        catalog_sync(source=str(broken_catalog().save(tmp_path / "broken.db")))

    failed = SyncRun.objects.latest()
    assert failed.status == "FAILED"
    assert Server.objects.count() == servers
    events = sync_events()
    assert [event.type for event in events] == ["sync.completed", "sync.failed"]
    assert (events[1].owner, events[1].subject) == ("", f"sync:{failed.pk}")
    assert events[1].data == {
        "sync_id": failed.pk,
        "source": failed.source,
        "error": failed.error,
        "started_at": failed.started_at.isoformat(),
        "finished_at": failed.finished_at.isoformat(),
    }
    assert failed.error.startswith("JSONDecodeError: Expecting property name")


def test_a_run_whose_process_died_records_sync_failed_once(db, tmp_path):
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        stale = SyncRun.objects.create(source="killed")
    path = sample_catalog().save(tmp_path / "catalog.db")

    catalog_sync(source=str(path))
    catalog_sync(source=str(path), force=True)

    stale.refresh_from_db()
    assert (stale.status, stale.error) == ("FAILED", services.INTERRUPTED)
    failed = [event for event in sync_events() if event.type == "sync.failed"]
    assert [(event.subject, event.data["error"], event.data["source"]) for event in failed] == [
        (f"sync:{stale.pk}", services.INTERRUPTED, "killed")
    ]
