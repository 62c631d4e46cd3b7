"""Watches re-run after each sync (apps/catalog/watches): exactly the changes between two catalogs, once
per sync, as their owner (paused when the owner's key is revoked or its quota spent), whichever process
ran the sync."""

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.catalog import choices
from apps.catalog.models import Watch, WatchSweep
from apps.catalog.watches.services import evaluate_watches
from apps.keys.services import key_revoke
from keeper.events.models import Event
from keeper.schedule import beat_entries, run_due
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import UpstreamCatalog, sample_catalog
from tests.keys.helpers import owner_actor

pytest_plugins = ["tests.catalog.watch_helpers"]

QUERY = "/servers?vendor=aws&vcpus_min=2"


def upstream_value(catalog: UpstreamCatalog, sql: str, *params: Any) -> Any:
    row = catalog.db.execute(sql, params).fetchone()
    return row[0] if row else None


def server_ids(catalog: UpstreamCatalog, vendor: str, vcpus_min: int) -> set[str]:
    """The active servers of `vendor` with at least `vcpus_min` vCPUs, read from the upstream data itself."""
    rows = catalog.db.execute(
        "SELECT server_id FROM server WHERE vendor_id = ? AND vcpus >= ? AND status = 'ACTIVE'", [vendor, vcpus_min]
    )
    return {server for (server,) in rows}


def watch_events(watch: Watch, type: str = "watch.changed") -> list[Event]:
    return list(Event.objects.filter(subject=f"watch:{watch.pk}", type=type))


@pytest.fixture
def watcher(sync_upstream, alice, make_key, client_of):
    """Alice's key, a client sending it, and a function creating her watch of a query."""
    sync_upstream(sample_catalog())
    key = make_key(alice)
    api = client_of(key)

    def watch(query: str = QUERY) -> Watch:
        response = api.post("/watches", {"name": "aws", "query": query}, format="json")
        assert response.status_code == 201, response.content
        return Watch.objects.get(pk=response.json()["id"])

    watch.key, watch.api = key, api
    return watch


def test_a_watch_reports_exactly_the_changes_between_two_syncs(watcher, sync_upstream):
    before, after = sample_catalog(), changed_catalog()
    watch = watcher()

    sync_upstream(after)
    run = evaluate_watches()

    assert (run.evaluated, run.changed, run.finished) == (1, 1, True)
    [event] = watch_events(watch)
    data = event.data
    assert event.owner == "alice"
    assert data["watch"] == {"id": watch.pk, "name": "aws", "query": QUERY}
    assert data["sync"]["id"] == run.sync_id
    # Rows added and removed: the servers that entered or left the query's answer upstream.
    old_ids, new_ids = server_ids(before, "aws", 2), server_ids(after, "aws", 2)
    assert sorted(row["server_id"] for row in data["added"]) == sorted(new_ids - old_ids)
    assert sorted(row["server_id"] for row in data["removed"]) == sorted(old_ids - new_ids)
    assert data["removed"] and all(row["vendor_id"] == "aws" for row in data["removed"])
    # Changed rows: the on-demand price of m5.large, and the columns changed of p3.8xlarge.
    changed = {row["id"]["server_id"]: row["fields"] for row in data["changed"]}
    price_sql = (
        "SELECT MIN(price) FROM server_price WHERE server_id = ? AND allocation = 'ONDEMAND' AND region_id = 'r1'"
    )
    old_price, new_price = upstream_value(before, price_sql, "m5.large"), upstream_value(after, price_sql, "m5.large")
    assert old_price != new_price
    assert changed["m5.large"]["min_price_ondemand"] == {"old": old_price, "new": new_price}
    assert changed["m5.large"]["price_breakdown.compute_min_price_ondemand"] == {"old": old_price, "new": new_price}
    speed_sql = "SELECT network_speed_max FROM server WHERE server_id = ?"
    assert changed["p3.8xlarge"]["network_speed_max"] == {
        "old": upstream_value(before, speed_sql, "p3.8xlarge"),
        "new": upstream_value(after, speed_sql, "p3.8xlarge"),
    }
    assert changed["p3.8xlarge"]["hw_virt"] == {"old": None, "new": True}
    # Nothing else: the servers of the answer that changed neither price nor column are not listed, and a
    # re-crawl (every observed_at moved) is no change.
    assert set(changed) == {"m5.large", "p3.8xlarge"}
    assert not any("observed_at" in name for fields in changed.values() for name in fields)
    assert data["counts"] == {"added": len(data["added"]), "removed": len(data["removed"]), "changed": 2}
    # The watch's answer seen is now the new one: the same sync evaluated again adds nothing.
    watch.refresh_from_db()
    assert watch.evaluated_sync == run.sync_id


def test_the_event_carries_what_the_owner_would_be_answered(watcher, sync_upstream):
    """The comparison is of the route's own answers: the rows as the owner GETs them before and after."""
    watch = watcher()
    first = {row["server_id"]: row for row in watcher.api.get(QUERY).json()}
    sync_upstream(changed_catalog())
    second = {row["server_id"]: row for row in watcher.api.get(QUERY).json()}
    evaluate_watches()

    [event] = watch_events(watch)
    assert {row["server_id"] for row in event.data["removed"]} == set(first) - set(second)
    for row in event.data["changed"]:
        server = row["id"]["server_id"]
        for name, values in row["fields"].items():
            old, new = first[server], second[server]
            for part in name.split("."):
                old, new = old[part], new[part]
            assert values == {"old": old, "new": new}


def test_no_event_when_the_sync_changed_nothing_the_watch_sees(watcher, sync_upstream):
    watch = watcher("/servers?vendor=gcp")
    sync_upstream(sample_catalog())  # the same data again, forced: a new sync, the same answer

    run = evaluate_watches()

    assert (run.evaluated, run.changed) == (1, 0)
    assert not watch_events(watch)
    watch.refresh_from_db()
    assert watch.evaluated_sync == run.sync_id


def test_one_event_per_watch_per_sync_however_often_evaluated(watcher, sync_upstream):
    watch = watcher()
    sync_upstream(changed_catalog())

    first, second = evaluate_watches(), evaluate_watches()

    assert first.changed == 1 and second.evaluated == 0 and second.finished
    assert len(watch_events(watch)) == 1
    assert WatchSweep.objects.get(sync_id=first.sync_id).finished_at is not None


def test_a_watched_server_that_is_removed_is_one_row_removed(watcher, sync_upstream):
    gone = watcher("/server/hcloud/cax11")
    kept = watcher("/server/aws/m5.large")
    sync_upstream(changed_catalog())

    evaluate_watches()

    [removed] = watch_events(gone)
    assert removed.data["removed"] == [{"vendor_id": "hcloud", "server_id": "cax11"}]
    assert removed.data["added"] == [] and removed.data["changed"] == []
    [changed] = watch_events(kept)
    assert [row["id"] for row in changed.data["changed"]] == [{"vendor_id": "aws", "server_id": "m5.large"}]
    gone.refresh_from_db()
    assert gone.status == choices.WatchStatus.ACTIVE  # a 404 is an answer (the server may come back), not a refusal


def test_a_revoked_key_pauses_the_watch_saying_why_and_patch_resumes_it(
    watcher, sync_upstream, alice, make_key, client_of
):
    watch = watcher()
    key_revoke(watcher.key.api_key, actor=owner_actor(alice))
    sync_upstream(changed_catalog())

    run = evaluate_watches()

    assert run.paused == 1
    watch.refresh_from_db()
    assert watch.status == choices.WatchStatus.PAUSED
    assert "revoked" in watch.paused_reason
    [paused] = watch_events(watch, "watch.paused")
    assert paused.data["reason"] == watch.paused_reason and paused.data["watch"]["id"] == watch.pk
    assert not watch_events(watch)
    # The answer says so; resuming with a working key of the same owner runs as that key from now on.
    api = client_of(make_key(alice))
    shown = api.get(f"/watches/{watch.pk}").json()
    assert shown["status"] == "paused" and "revoked" in shown["paused_reason"]
    resumed = api.patch(f"/watches/{watch.pk}", {"status": "active"}, format="json")
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["status"] == "active" and resumed.json()["paused_reason"] == ""


def test_an_exhausted_daily_quota_pauses_the_watch(sync_upstream, alice, make_key, client_of):
    sync_upstream(sample_catalog())
    api = client_of(make_key(alice, daily_quota=20))
    created = api.post("/watches", {"name": "aws", "query": QUERY}, format="json")
    assert created.status_code == 201, created.content
    watch = Watch.objects.get(pk=created.json()["id"])
    answers = [api.get("/regions").status_code for _ in range(20)]  # spend the rest of today's quota
    assert answers[-1] == 429
    sync_upstream(changed_catalog())

    run = evaluate_watches()

    assert run.paused == 1
    watch.refresh_from_db()
    assert watch.status == choices.WatchStatus.PAUSED
    assert "Daily quota of 20 credits used up" in watch.paused_reason
    assert len(watch_events(watch, "watch.paused")) == 1 and not watch_events(watch)


def test_a_sync_run_by_hand_is_evaluated_by_the_schedule(watcher, tmp_path):
    watch = watcher()
    path = changed_catalog().save(tmp_path / "changed.db")
    call_command("sync_catalog", source=str(path), force=True, no_progress=True)
    assert not watch_events(watch)  # the sync's own process does not evaluate (it would hold the sync)

    [entry] = [entry for entry in beat_entries(0) if entry.name == "evaluate-watches"]
    assert run_due([entry], entry.due) == ["evaluate-watches"]

    assert len(watch_events(watch)) == 1
    assert run_due([entry], entry.due) == ["evaluate-watches"]
    assert len(watch_events(watch)) == 1


def test_a_signed_in_users_watch_pauses_once_the_user_is_deactivated(sync_upstream, make_user):
    """A caller without a key (an admin session here) is kept as a snapshot; its user must stay active."""
    sync_upstream(sample_catalog())
    carol = make_user("carol")
    api = APIClient()
    api.force_authenticate(carol)
    created = api.post("/watches", {"name": "gcp", "query": "/servers?vendor=gcp"}, format="json")
    assert created.status_code == 201, created.content
    watch = Watch.objects.get(pk=created.json()["id"])
    assert watch.caller["kind"] == "snapshot" and watch.caller["auth_method"] == "session"
    carol.is_active = False
    carol.save()
    sync_upstream(changed_catalog())

    assert evaluate_watches().paused == 1

    watch.refresh_from_db()
    assert (watch.status, watch.paused_reason) == (choices.WatchStatus.PAUSED, "The user carol is deactivated.")


def test_staff_resume_a_paused_watch_in_the_admin(watcher, sync_upstream, alice, make_user):
    watch = watcher()
    key_revoke(watcher.key.api_key, actor=owner_actor(alice))
    sync_upstream(changed_catalog())
    evaluate_watches()
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))

    listed = admin.get("/admin/catalog/watch/", {"owner": "alice"})
    resumed = admin.post("/admin/catalog/watch/", {"action": "resume", "_selected_action": [watch.pk]})

    assert listed.status_code == 200 and "has been revoked" in listed.content.decode()
    assert resumed.status_code == 302
    watch.refresh_from_db()
    assert (watch.status, watch.paused_reason) == (choices.WatchStatus.ACTIVE, "")


def test_with_a_broker_a_sync_enqueues_the_evaluation_when_it_commits(
    watcher, sync_upstream, settings, django_capture_on_commit_callbacks
):
    """With Celery's broker (here its in-memory transport) the sync asks a worker once it commits; the
    message is the evaluation of that sync, run here as a worker would."""
    from keeper.celery import app

    watch = watcher()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    eager, app.conf.task_always_eager = app.conf.task_always_eager, False
    try:
        with app.connection_for_write() as connection:
            queue = connection.SimpleQueue("celery")
            queue.clear()
            with django_capture_on_commit_callbacks(execute=True):
                run = sync_upstream(changed_catalog())
            assert not watch_events(watch)  # nothing ran in the sync's process
            messages = []
            while len(queue):
                message = queue.get(timeout=1)
                messages.append((message.headers["task"], message.payload[0]))
                message.ack()
            queue.close()
    finally:
        app.conf.task_always_eager = eager
    evaluations = [args for task, args in messages if task == "apps.catalog.watches.tasks.evaluate_watches"]
    assert evaluations == [[run.pk]]

    app.tasks["apps.catalog.watches.tasks.evaluate_watches"].apply(args=evaluations[0], throw=True)

    assert len(watch_events(watch)) == 1
