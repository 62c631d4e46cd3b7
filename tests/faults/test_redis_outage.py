"""Redis stopped mid-run: the API keeps answering, limits fall back to each process's memory as the README
says ("How much"), and are exact again, in Redis, once Redis is back on its port."""

import time

import redis

from apps.throttling.limiters import FallbackLimiters
from tests.faults.conftest import CREDITS_PER_MINUTE, Stack
from tests.live import Answer

# /regions costs the default credit. The caller is a token of this test alone: its pool holds only these
# requests (the IP's pool would also hold other tests' requests, leaving the rolling minute meanwhile).
COST = 1


def remaining(answer: Answer) -> int:
    assert answer.status == 200, answer.body
    return int(answer.headers["x-ratelimit-remaining"])


def assert_exact(answers: list[Answer]) -> None:
    """One pool for both workers, charged exactly once per request."""
    values = [remaining(answer) for answer in answers]
    assert values == [values[0] - COST * i for i in range(len(values))], values


def test_the_api_answers_through_a_redis_outage_and_limits_are_exact_again_after(keeper: Stack):
    server = keeper.keeper
    caller = {"Authorization": f"Bearer {keeper.idp.issue(f'tok-redis-outage-{time.time()}', sub='redis-outage')}"}
    assert_exact([server.get("/regions", headers=caller) for _ in range(6)])

    logged_from = server.log_size()
    keeper.redis.stop()
    try:
        during = [server.get("/regions", headers=caller) for _ in range(6)]
        others = [
            # The rendered-response cache is in Redis too, and key usage is counted there.
            server.get(f"/servers?limit={limit}")
            for limit in (2, 3)
        ] + [
            server.get("/me", headers=caller),
            server.get("/keys", headers={"X-API-Key": keeper.read_key}),
            server.get("/healthcheck"),
        ]
    finally:
        keeper.redis.start()
    restarted = time.monotonic()

    assert [answer.status for answer in during + others] == [200] * 11, [a.body[:200] for a in during + others]
    # Each process now counts in its own memory, from zero: the first charge leaves a full pool less one request.
    assert remaining(during[0]) == CREDITS_PER_MINUTE - COST
    assert all(remaining(answer) < CREDITS_PER_MINUTE for answer in during)
    # Everything logged since Redis stopped, however much a fast machine fitted in (not the log's tail).
    assert "Redis unavailable" in server.log_since(logged_from)

    # Each process tries Redis again this long after its last failure.
    time.sleep(max(0.0, restarted + FallbackLimiters.RETRY_REDIS_AFTER_SECONDS + 0.5 - time.monotonic()))
    after = [server.get("/regions", headers=caller) for _ in range(8)]

    assert_exact(after)
    # Counted in the restarted (empty) Redis: its total is exactly what the answers say was spent.
    client = redis.Redis.from_url(keeper.redis.url)
    try:
        (total,) = client.keys("keeper:credits:*redis-outage*:total")
        assert int(client.get(total)) == CREDITS_PER_MINUTE - remaining(after[-1]) == COST * len(after)
    finally:
        client.close()
