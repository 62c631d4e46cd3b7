"""Key usage counted in Redis at once and moved to the database in batches (apps.keys.usage), on the test Redis.

Skipped, with the reason, when no Redis answers at KEEPER_TEST_REDIS_URL.
"""

import logging
import threading
from collections import Counter
from datetime import date

import pytest
import redis
from django.db import OperationalError
from django.utils import timezone

from apps.keys import middleware, usage
from apps.keys.models import KeyUsageDay
from apps.keys.services import Actor, key_delete
from apps.keys.usage import PENDING_SET, REDIS_PREFIX, RedisUsageStore, UsageBuffer, _Tally
from tests.fakes import closed_port
from tests.keys.helpers import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

DAY = date(2031, 3, 4)


@pytest.fixture
def buffer(monkeypatch) -> UsageBuffer:
    """The buffer the middleware records into, fresh for the test (no Redis client or outage carried over)."""
    fresh = UsageBuffer()
    monkeypatch.setattr(middleware, "usage_buffer", fresh)
    return fresh


@pytest.fixture
def with_redis(settings, no_redis, redis_url: str) -> str:
    settings.REDIS_URL = redis_url
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 3600
    return redis_url


def one_request(route: str = "/regions", credits: int = 1, status: int = 200) -> _Tally:
    return _Tally(1, int(status >= 400), int(status == 429), credits, Counter({route: 1}))


def test_each_request_is_in_redis_at_once_and_not_in_the_process(api, make_key, buffer, with_redis, redis_client):
    issued = make_key()
    for path in ("/regions", "/regions", "/regions?colour=red"):
        api.get(path, **bearer(issued))

    stored = redis_client.hgetall(f"{REDIS_PREFIX}{timezone.now().date().isoformat()}:{issued.api_key.pk}")
    assert {name.decode(): int(value) for name, value in stored.items()} == {
        "requests": 3,
        "errors": 1,
        "credits": 3,
        "route:/regions": 3,
    }
    assert not buffer._tallies
    assert not KeyUsageDay.objects.exists()


def test_any_process_moves_the_counts_to_the_database_and_leaves_none_in_redis(
    api, make_key, buffer, with_redis, redis_client
):
    issued = make_key()
    api.get("/regions", **bearer(issued))
    api.get("/me", **bearer(issued))

    # Another process: a buffer that recorded nothing itself.
    UsageBuffer().flush()

    row = KeyUsageDay.objects.get(key=issued.api_key)
    assert (row.requests, row.errors, row.endpoints) == (2, 0, {"/regions": 1, "/me": 1})
    assert redis_client.keys(REDIS_PREFIX + "*") == []


def test_flushes_add_to_the_days_row(api, make_key, buffer, with_redis):
    issued = make_key()
    api.get("/regions", **bearer(issued))
    buffer.flush()
    api.get("/regions", **bearer(issued))
    buffer.flush()

    row = KeyUsageDay.objects.get(key=issued.api_key)
    assert (row.requests, row.endpoints) == (2, {"/regions": 2})


def test_many_keys_are_flushed_in_several_batches(make_key, with_redis):
    keys = [make_key().api_key for _ in range(130)]
    store = RedisUsageStore(redis.Redis.from_url(with_redis))
    store.add({(key.pk, DAY): one_request() for key in keys})

    UsageBuffer().flush()

    assert KeyUsageDay.objects.filter(day=DAY, requests=1).count() == 130


def test_two_flushers_taking_batches_while_requests_arrive_count_each_request_once(with_redis):
    client = redis.Redis.from_url(with_redis)
    writer, taker = RedisUsageStore(client), RedisUsageStore(redis.Redis.from_url(with_redis))
    taken: list[dict] = []
    done = threading.Event()

    def take() -> None:
        store = RedisUsageStore(redis.Redis.from_url(with_redis))
        while not done.is_set():
            taken.append(store.take_batch(size=7))

    flushers = [threading.Thread(target=take) for _ in range(2)]
    for thread in flushers:
        thread.start()
    for number in range(600):
        writer.add({(number % 40, DAY): one_request(route=f"/r{number % 3}", credits=2)})
    done.set()
    for thread in flushers:
        thread.join()
    taken.append(taker.take_batch(size=1000))

    totals: Counter = Counter()
    routes: Counter = Counter()
    for batch in taken:
        for (key_pk, _day), tally in batch.items():
            totals[key_pk] += tally.requests
            routes.update(tally.endpoints)
            assert tally.credits == 2 * tally.requests
    assert totals == Counter({key_pk: 15 for key_pk in range(40)})
    assert routes == Counter({"/r0": 200, "/r1": 200, "/r2": 200})
    assert client.scard(PENDING_SET) == 0


def test_a_crash_after_taking_a_batch_loses_that_batch_only(make_key, with_redis):
    first, second = make_key().api_key, make_key().api_key
    store = RedisUsageStore(redis.Redis.from_url(with_redis))
    store.add({(first.pk, DAY): one_request(), (second.pk, DAY): one_request()})
    store.add({(second.pk, DAY): one_request()})

    # A flusher killed after taking one key-day from Redis, before writing it.
    lost = store.take_batch(size=1)
    UsageBuffer().flush()

    written = {row.key_id: row.requests for row in KeyUsageDay.objects.filter(day=DAY)}
    assert len(lost) == 1
    ((lost_pk, _), lost_tally) = next(iter(lost.items()))
    assert sum(written.values()) + lost_tally.requests == 3
    assert lost_pk not in written


def test_counts_taken_from_redis_go_back_when_the_database_fails(make_key, with_redis, monkeypatch, redis_client):
    key = make_key().api_key
    store = RedisUsageStore(redis.Redis.from_url(with_redis))
    store.add({(key.pk, DAY): one_request()})
    flusher = UsageBuffer()

    def database_down(*args, **kwargs):
        # What every query raises while PostgreSQL restarts (tests/faults/test_database_restart.py does it for real).
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(usage, "_add_to_day", database_down)
    flusher.flush()
    assert redis_client.hget(f"{REDIS_PREFIX}{DAY.isoformat()}:{key.pk}", "requests") == b"1"
    assert not KeyUsageDay.objects.exists()

    monkeypatch.undo()
    flusher.flush()
    assert KeyUsageDay.objects.get(key=key, day=DAY).requests == 1


def test_a_deleted_keys_counts_are_dropped_and_the_others_written(make_key, with_redis):
    kept, deleted = make_key().api_key, make_key().api_key
    store = RedisUsageStore(redis.Redis.from_url(with_redis))
    store.add({(kept.pk, DAY): one_request(), (deleted.pk, DAY): one_request()})
    key_delete(deleted, actor=Actor("test"))

    UsageBuffer().flush()

    assert list(KeyUsageDay.objects.values_list("key_id", "requests")) == [(kept.pk, 1)]


def test_while_redis_is_down_requests_are_served_and_counted_in_the_process(
    api, make_key, buffer, settings, no_redis, caplog
):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 3600
    issued = make_key()

    with caplog.at_level(logging.WARNING, logger="apps.keys.usage"):
        statuses = [api.get("/regions", **bearer(issued)).status_code for _ in range(2)]
    buffer.flush()

    assert statuses == [200, 200]
    assert KeyUsageDay.objects.get(key=issued.api_key).requests == 2
    assert [r.getMessage() for r in caplog.records if r.name == "apps.keys.usage"] == [
        "Key usage: Redis unavailable (ConnectionError); counting in this process's memory until it is back."
    ]
