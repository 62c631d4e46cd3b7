"""The scaled-out stack end to end (bin/keeper-stack): PostgreSQL, Redis, gunicorn with several workers,
a Celery worker that does the first catalog sync, and beat. bin/ci-stack starts it with a small
generated catalog and KEEPER_CATALOG_SYNC_INTERVAL_MINUTES=1; without a stack these tests skip.
"""

import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from celery import Celery

from tests.stack.conftest import skip_unless_required
from tests.stack.stack import ROOT, Answer, Stack

pytestmark = pytest.mark.usefixtures("roomy_global_bucket")


def sync_runs(stack: Stack) -> list[dict]:
    with psycopg.connect(stack.config["database_url"]) as conn:
        cursor = conn.execute(
            "SELECT id, status, source, data_hash, started_at, finished_at FROM catalog_syncrun ORDER BY id"
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_first_catalog_arrives_through_the_worker_after_the_api_said_there_was_none(stack: Stack) -> None:
    first = sync_runs(stack)[0]
    assert first["status"] == "SUCCEEDED"
    assert first["source"] == stack.config["catalog_source"]

    # The worker's main process logged that run as its own first sync, before taking tasks.
    made = re.findall(r"First catalog sync \(worker pid (\d+)\): sync #(\d+) (\w+)", stack.log("worker"))
    assert (first["id"], "SUCCEEDED") in [(int(run), status) for _, run, status in made]
    worker_pid = next(int(pid) for pid, run, _ in made if int(run) == first["id"])
    # ...and only then took tasks.
    log = stack.log("worker")
    assert log.index(f"sync #{first['id']} SUCCEEDED") < log.index(f"{stack.config['nodes']['worker']} ready.")
    assert worker_pid in [event["pid"] for event in stack.events("started") if event["service"] == "worker"]
    for service in ("web", "beat", "migrate"):
        assert f"Catalog sync #{first['id']} " not in stack.log(service)

    # Before the worker started, the API answered that no catalog was loaded.
    events = stack.events()
    worker_started = next(e for e in events if e["event"] == "started" and e["pid"] == worker_pid)
    before = [e for e in events if e["event"] == "healthcheck" and e["at"] < worker_started["at"]]
    assert before and before[-1]["status"] == 503
    assert before[-1]["body"]["status"] == "no catalog loaded"
    assert before[-1]["at"] < first["started_at"]

    health = stack.request("GET", "/healthcheck")
    assert health.status == 200
    assert health.body["database_hash"] == first["data_hash"]


def test_search_is_served_by_gunicorn_with_api_keys_and_redis_credit_limits(stack: Stack) -> None:
    issued = stack.create_key(name="e2e search", credits_per_minute=1000)

    search = stack.request("GET", "/servers?vcpus_min=2&limit=5", key=issued["key"])

    assert search.status == 200, search
    assert search.body and all(row["vcpus"] >= 2 for row in search.body)
    # /servers costs 3 credits (seeded route cost), taken from the key's own pool of 1000.
    assert (search.header("X-RateLimit-Limit"), search.header("X-RateLimit-Cost")) == ("1000", "3")
    assert search.header("X-RateLimit-Remaining") == "997"
    # The pool lives in Redis (RATE_LIMIT_BACKEND=redis), not in the process that answered.
    import redis

    pool = redis.Redis.from_url(stack.config["redis_url"]).get(f"keeper:credits:key:{issued['id']}:total")
    assert pool == b"3"

    refused = stack.request("GET", "/servers?vcpus_min=2&limit=5", key=issued["key"][:-1] + "x")
    assert refused.status == 401
    assert refused.body["detail"]


def _served(stack: Stack, path: str, key: str) -> Answer:
    return stack.request("GET", path, key=key, identify_worker=True)


def test_a_key_created_through_one_worker_works_at_once_through_every_other(stack: Stack) -> None:
    workers = stack.web_workers()
    assert len(workers) == stack.config["web_workers"]
    created = stack.request(
        "POST",
        "/keys",
        key=stack.admin_key,
        body={"name": f"e2e everywhere {uuid.uuid4().hex[:8]}", "scope": "read", "credits_per_minute": 100_000},
        identify_worker=True,
    )
    assert created.status == 201 and created.served_by in workers
    key = created.body["key"]

    # Many clients at once over new connections: a worker busy with one request leaves the next
    # connection to another, so every worker gets some. No pause between creating and using.
    answers: list[Answer] = []
    with ThreadPoolExecutor(max_workers=8) as clients:
        while {a.served_by for a in answers} != workers and len(answers) < 800:
            answers += clients.map(lambda _: _served(stack, "/regions", key), range(16))

    assert {a.served_by for a in answers} == workers
    assert [a.status for a in answers] == [200] * len(answers)
    assert any(a.served_by != created.served_by for a in answers)


def test_the_redis_credit_pool_is_shared_by_every_worker(stack: Stack) -> None:
    """A pool of 40 credits admits exactly 40 one-credit requests, however many workers serve them
    (the memory backend would admit up to 40 in each)."""
    key = stack.create_key(name="e2e shared pool", credits_per_minute=40)["key"]

    with ThreadPoolExecutor(max_workers=8) as clients:
        answers = list(clients.map(lambda _: _served(stack, "/regions", key), range(100)))

    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * 40 + [429] * 60
    assert len({a.served_by for a in answers if a.status == 200}) > 1
    for refusal in (a for a in answers if a.status == 429):
        assert refusal.body["detail"] and int(refusal.header("Retry-After")) >= 1
        assert refusal.header("X-RateLimit-Limit") == "40"


def test_beat_schedules_the_catalog_sync_and_the_worker_runs_it(stack: Stack) -> None:
    """Beat's first sync is one interval after it starts; the worker then finds the catalog unchanged."""
    interval = stack.config["catalog_sync_interval_minutes"] * 60
    beat_started = [e for e in stack.events("started") if e["service"] == "beat"][-1]["at"]
    waited = time.time() - beat_started.timestamp()
    if interval - waited > 120:
        skip_unless_required(f"beat's first sync is {interval - waited:.0f} s away: start the stack with a shorter "
                    "KEEPER_CATALOG_SYNC_INTERVAL_MINUTES (bin/ci-stack uses 1)")  # fmt: skip
    deadline = beat_started.timestamp() + interval + 90
    pattern = re.compile(r"Task apps\.catalog\.tasks\.sync_catalog\[[\w-]+\] succeeded in [\d.]+s: \{'id': (\d+)")
    while not pattern.search(stack.log("worker")) and time.time() < deadline:
        time.sleep(1)

    assert "Sending due task sync-catalog (apps.catalog.tasks.sync_catalog)" in stack.log("beat")
    run_id = int(pattern.search(stack.log("worker")).group(1))
    run = next(run for run in sync_runs(stack) if run["id"] == run_id)
    assert run["status"] == "SKIPPED"  # the same source: hashed, not loaded again


def test_the_worker_runs_the_daily_key_expiry_check(stack: Stack) -> None:
    """What beat sends once a day (warn-expiring-keys), sent now through the same broker."""
    app = Celery("stack-test", broker=stack.config["redis_url"])
    task_id = app.send_task("apps.keys.tasks.warn_expiring_keys").id
    app.close()
    done = re.compile(rf"Task apps\.keys\.tasks\.warn_expiring_keys\[{task_id}\] succeeded")
    deadline = time.time() + 60
    while not done.search(stack.log("worker")) and time.time() < deadline:
        time.sleep(0.5)
    assert done.search(stack.log("worker"))


def test_a_worker_whose_first_sync_fails_exits_with_status_1(stack: Stack, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-catalog.db"
    env = {**stack.keeper_env(), "KEEPER_CATALOG_SOURCE": str(missing)}
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "keeper", "worker", "--pool", "solo", "-n", "failing@keeper-stack"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert worker.returncode == 1
    assert (
        f"First catalog sync failed, stopping the worker: CatalogSourceError: Catalog file {missing}" in worker.stderr
    )
    assert "ready." not in worker.stderr
    # The catalog the stack serves is untouched.
    assert stack.request("GET", "/healthcheck").status == 200
