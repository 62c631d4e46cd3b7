"""Workers of test_redis_concurrency, importable by spawned processes (no Django set-up needed)."""

from threading import Barrier

import redis

from apps.throttling.limiters import RedisCreditLimiter, RedisTokenBucket


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
