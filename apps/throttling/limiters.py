"""Credit pools over a rolling minute, and the global token bucket: in memory or in Redis.

The Redis versions run as one Lua script per check, using Redis's clock, so
they are exact across any number of processes. When Redis fails, each process
falls back to its own memory limiter (and logs it): limits then apply per
process, i.e. up to N times looser with N processes, until Redis is back.
"""

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float = 0.0


class MemoryCreditLimiter:
    """Sliding log per key of (time, cost) over the last minute, for one process."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._logs: dict[str, deque[tuple[float, int]]] = {}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def consume(self, key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
        with self._lock:
            now = self.clock()
            log = self._logs.setdefault(key, deque())
            used = self._used.get(key, 0)
            while log and log[0][0] <= now - WINDOW_SECONDS:
                used -= log.popleft()[1]
            if force or used + cost <= limit:
                if cost:
                    log.append((now, cost))
                used += cost
                self._used[key] = used
                return Decision(True, max(limit - used, 0))
            self._used[key] = used
            return Decision(False, max(limit - used, 0), _retry_after(log, used, cost, limit, now))

    def remaining(self, key: str, limit: int) -> int:
        return self.consume(key, 0, limit).remaining

    def reset(self) -> None:
        with self._lock:
            self._logs.clear()
            self._used.clear()


def _retry_after(log, used: int, cost: int, limit: int, now: float) -> float:
    """Seconds until enough old entries leave the window for `cost` to fit."""
    if cost > limit:
        return WINDOW_SECONDS
    need = used + cost - limit
    freed = 0
    for stamp, entry_cost in log:
        freed += entry_cost
        if freed >= need:
            return max(stamp + WINDOW_SECONDS - now, 0.0)
    return WINDOW_SECONDS


# KEYS[1] the pool; ARGV: cost, limit, window (µs), unique id, force (1/0)
# Members are "<µs>:<cost>:<id>" so the script can sum the window without a second key.
CREDIT_SCRIPT = """
local key = KEYS[1]
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do
  used = used + tonumber(string.match(entries[i], '^%d+:(%d+):'))
end
if ARGV[5] == '1' or used + cost <= limit then
  if cost > 0 then
    redis.call('ZADD', key, now, string.format('%d:%d:%s', now, cost, ARGV[4]))
    redis.call('PEXPIRE', key, math.floor(window / 1000) + 1000)
  end
  return {1, limit - used - cost, '0'}
end
local retry = window
if cost <= limit then
  local need = used + cost - limit
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(string.match(entries[i], '^%d+:(%d+):'))
    if freed >= need then
      retry = tonumber(entries[i + 1]) + window - now
      break
    end
  end
end
return {0, limit - used, tostring(retry / 1000000)}
"""


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)


class RedisCreditLimiter:
    prefix = "keeper:credits:"

    def __init__(self, client: redis.Redis | None = None):
        self.client = client or redis_client()
        self.script = self.client.register_script(CREDIT_SCRIPT)

    def consume(self, key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
        window_us = int(WINDOW_SECONDS * 1_000_000)
        allowed, remaining, retry = self.script(
            keys=[self.prefix + key], args=[cost, limit, window_us, uuid.uuid4().hex[:12], "1" if force else "0"]
        )
        return Decision(bool(allowed), max(int(remaining), 0), float(retry))

    def remaining(self, key: str, limit: int) -> int:
        return self.consume(key, 0, limit).remaining


class MemoryCounter:
    """Per-key counters that expire (daily quotas), for one process."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def add_within(self, key: str, amount: int, limit: int, ttl: int) -> Decision:
        with self._lock:
            now = self.clock()
            expires, used = self._counts.get(key, (0.0, 0))
            if expires <= now:
                expires, used = now + ttl, 0
            if used + amount > limit:
                self._counts[key] = (expires, used)
                return Decision(False, max(limit - used, 0), expires - now)
            self._counts[key] = (expires, used + amount)
            return Decision(True, limit - used - amount)


# KEYS[1] counter; ARGV: amount, limit, ttl seconds
COUNTER_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if used + amount > limit then
  return {0, limit - used, redis.call('TTL', KEYS[1])}
end
redis.call('INCRBY', KEYS[1], amount)
if used == 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return {1, limit - used - amount, 0}
"""


class RedisCounter:
    prefix = "keeper:count:"

    def __init__(self, client: redis.Redis | None = None):
        self.client = client or redis_client()
        self.script = self.client.register_script(COUNTER_SCRIPT)

    def add_within(self, key: str, amount: int, limit: int, ttl: int) -> Decision:
        allowed, remaining, wait = self.script(keys=[self.prefix + key], args=[amount, limit, ttl])
        return Decision(bool(allowed), max(int(remaining), 0), float(max(int(wait), 0)))


class MemoryTokenBucket:
    """The classic bucket: `rate` tokens a second up to `burst`; a request takes one."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.tokens: float | None = None
        self.stamp = 0.0
        self._lock = threading.Lock()

    def take(self, rate: float, burst: int) -> Decision:
        with self._lock:
            now = self.clock()
            tokens = burst if self.tokens is None else min(burst, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
            if tokens >= 1:
                self.tokens = tokens - 1
                return Decision(True, int(self.tokens))
            self.tokens = tokens
            return Decision(False, 0, (1 - tokens) / rate)

    def reset(self) -> None:
        with self._lock:
            self.tokens = None


# KEYS[1] bucket state; ARGV: rate, burst
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(now - stamp, 0) * rate)
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return {allowed, math.floor(tokens), tostring(wait)}
"""


class RedisTokenBucket:
    key = "keeper:global-bucket"

    def __init__(self, client: redis.Redis | None = None):
        self.client = client or redis_client()
        self.script = self.client.register_script(BUCKET_SCRIPT)

    def take(self, rate: float, burst: int) -> Decision:
        allowed, remaining, wait = self.script(keys=[self.key], args=[repr(float(rate)), int(burst)])
        return Decision(bool(allowed), int(remaining), float(wait))


class FallbackLimiters:
    """The configured backend, degrading to per-process memory limiters while Redis fails."""

    LOG_EVERY_SECONDS = 60.0

    def __init__(self, backend: str):
        self.backend = backend
        self.memory_credits = MemoryCreditLimiter()
        self.memory_bucket = MemoryTokenBucket()
        self.memory_counter = MemoryCounter()
        self.redis_credits: RedisCreditLimiter | None = None
        self.redis_bucket: RedisTokenBucket | None = None
        self.redis_counter: RedisCounter | None = None
        if backend == "redis":
            client = redis_client()
            self.redis_credits = RedisCreditLimiter(client)
            self.redis_bucket = RedisTokenBucket(client)
            self.redis_counter = RedisCounter(client)
        self._last_warning = 0.0

    def consume(self, key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
        if self.redis_credits is not None:
            try:
                return self.redis_credits.consume(key, cost, limit, force=force)
            except redis.RedisError as exc:
                self._warn(exc)
        return self.memory_credits.consume(key, cost, limit, force=force)

    def take(self, rate: float, burst: int) -> Decision:
        if self.redis_bucket is not None:
            try:
                return self.redis_bucket.take(rate, burst)
            except redis.RedisError as exc:
                self._warn(exc)
        return self.memory_bucket.take(rate, burst)

    def add_within(self, key: str, amount: int, limit: int, ttl: int) -> Decision:
        if self.redis_counter is not None:
            try:
                return self.redis_counter.add_within(key, amount, limit, ttl)
            except redis.RedisError as exc:
                self._warn(exc)
        return self.memory_counter.add_within(key, amount, limit, ttl)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= self.LOG_EVERY_SECONDS:
            self._last_warning = now
            logger.warning(
                "Rate limiting: Redis unavailable (%s); using this process's memory limiter until it is back.",
                exc.__class__.__name__,
            )
