"""The embedded setup runs Celery beat's schedule in-process (keeper/schedule.py)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.catalog.models import SyncRun
from apps.keys.models import ApiKey
from apps.keys.services import Actor, key_create
from keeper.schedule import beat_entries, run_due
from tests.catalog.upstream import sample_catalog


def test_the_schedule_holds_the_catalog_sync_and_the_key_expiry_warnings(settings):
    settings.CATALOG_SYNC_INTERVAL_MINUTES = 10

    entries = {entry.task: entry for entry in beat_entries(now=1000.0)}

    assert set(entries) == {
        "apps.catalog.tasks.sync_catalog",
        "apps.keys.tasks.warn_expiring_keys",
        "apps.catalog.tasks.prune_catalog_history",
        "apps.keys.tasks.prune_signing_keys",
        "apps.catalog.watches.tasks.evaluate_watches",
        "keeper.events.tasks.deliver_webhooks",
        "keeper.events.tasks.prune_events",
    }
    assert entries["apps.keys.tasks.warn_expiring_keys"].every == 24 * 3600
    # Nothing runs at start-up: the start-up command has just synced.
    assert all(entry.due > 1000.0 for entry in entries.values())


def test_due_tasks_run_in_process_and_are_rescheduled(db, settings, tmp_path, django_user_model):
    settings.KEEPER_CATALOG_SOURCE = str(sample_catalog().save(tmp_path / "catalog.db"))
    owner = django_user_model.objects.create(username="owner")
    soon = key_create(owner=owner, name="soon", actor=Actor("test"), expires_at=timezone.now() + timedelta(days=2))
    entries = beat_entries(now=0.0)
    not_yet = min(entry.due for entry in entries) - 1

    assert run_due(entries, not_yet) == []
    ran = run_due(entries, now=max(entry.due for entry in entries))

    assert sorted(ran) == [
        "deliver-webhooks",
        "evaluate-watches",
        "prune-catalog-history",
        "prune-events",
        "prune-signing-keys",
        "sync-catalog",
        "warn-expiring-keys",
    ]
    assert SyncRun.objects.get().status == "SUCCEEDED"
    assert ApiKey.objects.get(pk=soon.api_key.pk).expiry_warned_at is not None
    assert all(entry.due > entry.every for entry in entries)


def test_a_failing_task_is_logged_and_does_not_stop_the_others(db, settings, tmp_path, capsys):
    settings.KEEPER_CATALOG_SOURCE = str(tmp_path / "missing.sql.xz")
    entries = beat_entries(now=0.0)

    ran = run_due(entries, now=max(entry.due for entry in entries))

    assert sorted(ran) == [
        "deliver-webhooks",
        "evaluate-watches",
        "prune-catalog-history",
        "prune-events",
        "prune-signing-keys",
        "sync-catalog",
        "warn-expiring-keys",
    ]
    # Logged through the console handler (importing the tasks lets Celery take over pytest's log capture).
    assert "Scheduled task sync-catalog failed: CatalogSourceError" in capsys.readouterr().err


def test_with_redis_celery_beat_runs_the_schedule_and_the_command_exits(settings, capsys):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    call_command("run_schedule")

    assert "Celery beat runs the schedule" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    from keeper.celery import app

    app.conf.task_always_eager = True
    yield
