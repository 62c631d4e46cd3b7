"""Workers of test_redis_concurrency, importable by spawned processes (no Django set-up needed)."""

from threading import Barrier

import redis

from apps.throttling.limiters import RedisChainLimiter, RedisCreditLimiter, RedisTokenBucket


def spend_credits(url: str, key: str, calls: int, pool: int, start: Barrier) -> int:
    """Try `calls` 1-credit requests against a pool of `pool`; the number admitted."""
    client = redis.Redis.from_url(url)
    limiter = RedisCreditLimiter(client)
    start.wait(timeout=30)  # every process is ready: the bursts overlap
    admitted = sum(limiter.consume(key, 1, pool).allowed for _ in range(calls))
    client.close()
    return admitted


def take_tokens(url: str, calls: int, rate: float, burst: int, start: Barrier) -> int:
    """Try `calls` requests against the global bucket; the number admitted."""
    client = redis.Redis.from_url(url)
    bucket = RedisTokenBucket(client)
    start.wait(timeout=30)  # every process is ready: the bursts overlap
    admitted = sum(bucket.take(lambda: (rate, burst)).allowed for _ in range(calls))
    client.close()
    return admitted


def spend_as_child(url: str, child: int, calls: int, parent_pool: int, parent_quota: int, start: Barrier) -> int:
    """Try `calls` 1-credit requests as the child key `child` (own pool and quota: 50); how many passed."""
    client = redis.Redis.from_url(url)
    limiter = RedisChainLimiter(client)
    pools = [(f"key:child-{child}", 50), ("key:parent", parent_pool)]
    quotas = [(f"quota:child-{child}", 50), ("quota:parent", parent_quota)]
    start.wait(timeout=30)  # every process is ready: the bursts overlap
    admitted = 0
    for _ in range(calls):
        decision = limiter.consume(pools, 1, quotas, 3600)
        admitted += decision.credit.allowed and decision.quota.allowed
    client.close()
    return admitted
