"""Redis answering reads and refusing writes (full at `maxmemory`, noeviction): a key revoked meanwhile has
its capability token refused by every worker at once, and still once Redis is healthy again (issue 15, item 2).
"""

import time
from collections.abc import Iterator

import pytest
import redis

from tests.faults.conftest import Stack


@pytest.fixture
def redis_refusing_writes(keeper: Stack) -> Iterator[redis.Redis]:
    """The stack's Redis, for the test to fill; its memory settings are put back afterwards, whatever happens."""
    client = redis.Redis.from_url(keeper.redis.url)
    before = {name: client.config_get(name)[name] for name in ("maxmemory", "maxmemory-policy")}
    try:
        yield client
    finally:
        for name, value in before.items():
            client.config_set(name, value)
        client.close()


def test_a_revoked_keys_token_is_refused_while_redis_refuses_writes_and_after(
    keeper: Stack, redis_refusing_writes: redis.Redis
):
    server, admin = keeper.keeper, {"X-API-Key": keeper.admin_key}
    created = server.request("POST", "/keys", headers=admin, body={"name": f"refusing-writes-{time.time_ns()}"})
    assert created.status == 201, created.body
    key_id, value = created.json()["id"], created.json()["key"]
    validated = server.request("POST", "/keys/validate", headers=admin, body={"key": value})
    assert validated.status == 200 and validated.json()["valid"], validated.body
    token = {"Authorization": f"Bearer {validated.json()['capability_token']}"}
    # Each worker has verified it (and, before the fix, remembered its key): a new connection per request.
    assert [server.get("/regions", headers=token).status for _ in range(8)] == [200] * 8

    redis_refusing_writes.config_set("maxmemory-policy", "noeviction")
    redis_refusing_writes.config_set("maxmemory", 1)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        redis_refusing_writes.set("faults-probe", "refused")
    revoked = server.request("POST", f"/keys/{key_id}/revoke", headers=admin, body={})
    during = [server.get("/regions", headers=token) for _ in range(8)]
    by_key = server.get("/regions", headers={"X-API-Key": value})

    redis_refusing_writes.config_set("maxmemory", 0)
    redis_refusing_writes.set("faults-probe", "accepted")
    after = [server.get("/regions", headers=token) for _ in range(8)]

    assert revoked.status == 200, revoked.body
    assert (by_key.status, by_key.json()["detail"]) == (401, "This API key has been revoked.")
    assert [answer.status for answer in during + after] == [401] * 16, [a.body[:200] for a in during + after]
    assert {answer.json()["detail"] for answer in during + after} == {"This API key has been revoked."}
