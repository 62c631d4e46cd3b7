"""Key usage with Redis survives SIGKILLed workers: each request is counted in Redis at once, and any
process later moves the counts to the database (apps.keys.usage; the workers here flush only hourly)."""

import json
from collections import Counter
from datetime import UTC, datetime

import redis

from apps.keys.usage import REDIS_PREFIX
from tests.faults.conftest import Stack

FLUSH = "from apps.keys.usage import usage_buffer\nusage_buffer.flush()\n"


def usage_in_database(stack: Stack, key_id: str) -> tuple[int, int, dict[str, int]]:
    row = stack.postgres.query(
        "SELECT json_build_array(requests, errors, endpoints) FROM keys_keyusageday"
        f" WHERE key_id = {key_id} AND day = (now() AT TIME ZONE 'UTC')::date"
    )
    return tuple(json.loads(row)) if row else (0, 0, {})


def usage_in_redis(client: redis.Redis, key_id: str) -> tuple[int, int, dict[str, int]]:
    stored = client.hgetall(f"{REDIS_PREFIX}{datetime.now(UTC).date().isoformat()}:{key_id}")
    fields = {name.decode(): int(value) for name, value in stored.items()}
    routes = {name.removeprefix("route:"): n for name, n in fields.items() if name.startswith("route:")}
    return fields.get("requests", 0), fields.get("errors", 0), routes


def test_usage_counted_before_every_worker_is_killed_reaches_the_database(keeper: Stack):
    server, key = keeper.keeper, {"X-API-Key": keeper.read_key}
    key_id = keeper.postgres.query("SELECT id FROM keys_apikey WHERE name = 'faults-read'")
    client = redis.Redis.from_url(keeper.redis.url)
    try:
        # What earlier tests counted, in the database or still waiting in Redis.
        before = [usage_in_database(keeper, key_id), usage_in_redis(client, key_id)]
        paths = ["/regions"] * 5 + ["/me"] * 3 + ["/regions?colour=red"]
        assert [server.get(path, headers=key).status for path in paths] == [200] * 8 + [400]
        # Not (only) in a worker's memory: Redis has all nine at once.
        in_redis = usage_in_redis(client, key_id)
        assert in_redis[:2] == (before[1][0] + 9, before[1][1] + 1)
    finally:
        client.close()

    killed = server.kill_workers()
    server.wait_for_workers()
    assert not set(killed) & set(server.workers())
    # Any process flushes everyone's counts: here one that served no request.
    flushed = server.python(FLUSH)
    assert flushed.returncode == 0, flushed.stderr[-3000:]

    requests, errors, endpoints = usage_in_database(keeper, key_id)
    expected = Counter(before[0][2]) + Counter(before[1][2]) + Counter({"/regions": 6, "/me": 3})
    assert (requests, errors) == (before[0][0] + before[1][0] + 9, before[0][1] + before[1][1] + 1)
    assert Counter(endpoints) == expected
