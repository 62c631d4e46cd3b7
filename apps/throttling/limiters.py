"""Credit pools over a rolling minute, the global token bucket and daily quota counters.

Credit pools and the bucket run in memory or in Redis. The Redis versions run as one
Lua script per check, using Redis's clock, so they are exact across any number of
processes. When Redis fails, each process falls back to its own memory limiter (and
logs it): limits then apply per process, i.e. up to N times looser with N processes,
until Redis is back. Daily quotas are never kept in process memory: they are counted
in Redis with the redis backend, else (and while Redis is down) in the database.
"""

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice

import redis
from django.conf import settings
from django.db import OperationalError

from keeper import writes
from keeper.observability import metrics

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float = 0.0


@dataclass(frozen=True)
class ChainDecision:
    """One request charged to several pools and daily quotas at once (a key and the keys above it).

    `credit` is the decision of the pool that refused, else of the one with the least left (`pool`
    its index, -1 with no pools); `quota` and `quota_index` likewise for the quotas (allowed, and
    nothing counted, when a pool refused).
    """

    credit: Decision
    pool: int
    quota: Decision
    quota_index: int


class _Pool:
    """One caller's sliding log of (time, cost), oldest first, and its running total.

    The entries before `head` have left the window. A list with a moving head takes about a
    third of the memory of a deque (which allocates 64 slots at once), and compacting it once
    the dead part is half of it keeps expiry O(1) amortised.
    """

    __slots__ = ("log", "head", "used")

    def __init__(self) -> None:
        self.log: list[tuple[float, int]] = []
        self.head = 0
        self.used = 0

    def expire(self, before: float) -> None:
        log, head = self.log, self.head
        while head < len(log) and log[head][0] <= before:
            self.used -= log[head][1]
            head += 1
        if head and head * 2 >= len(log):
            del log[:head]
            head = 0
        self.head = head

    def entries(self) -> Iterable[tuple[float, int]]:
        return islice(self.log, self.head, None)


class MemoryCreditLimiter:
    """Sliding log per key of (time, cost) over the last minute, for one process.

    Memory is bounded. Pools are kept in the order of their latest charge (a charge moves its
    pool to the end), so the pools whose whole log has left the window, which hold nothing,
    are always at the front: each check first drops those, at O(1) amortised cost. At most
    `max_pools` are kept; past that the least recently charged pool is forgotten even though
    it is still in its window, so that caller starts the minute over with a full pool
    (limits get looser, only for callers beyond the bound, and only in this process).
    """

    LOG_EVERY_SECONDS = 60.0

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_pools: int = 50_000, window: float = WINDOW_SECONDS
    ):
        self.clock = clock
        self.max_pools = max_pools
        self.window = window
        self._logs: OrderedDict[str, _Pool] = OrderedDict()
        self._lock = threading.Lock()
        self._warned_at = float("-inf")

    def consume(self, key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
        with self._lock:
            now = self.clock()
            self._forget_idle(now)
            # Any pool still here was charged within the window, so it keeps at least that entry.
            pool = self._logs.get(key)
            used = 0
            if pool is not None:
                pool.expire(now - self.window)
                used = pool.used
            if force or used + cost <= limit:
                if cost:
                    if pool is None:
                        pool = self._new_pool(key, now)
                    pool.log.append((now, cost))
                    pool.used += cost
                    self._logs.move_to_end(key)
                return Decision(True, max(limit - used - cost, 0))
            log = pool.entries() if pool is not None else ()
            return Decision(False, max(limit - used, 0), _retry_after(log, used, cost, limit, now, self.window))

    def remaining(self, key: str, limit: int) -> int:
        return self.consume(key, 0, limit).remaining

    def consume_all(self, pools: list[tuple[str, int]], cost: int) -> tuple[Decision, int]:
        """`cost` charged to every pool of `pools` ([(key, limit)]) or, if one refuses, to none: under one lock,
        so concurrent requests sharing a pool cannot pass it together. The refusing pool's decision, else the
        one with the least left; and its index."""
        with self._lock:
            now = self.clock()
            self._forget_idle(now)
            used = []
            for key, _ in pools:
                pool = self._logs.get(key)
                if pool is not None:
                    pool.expire(now - self.window)
                used.append(pool.used if pool is not None else 0)
            for index, ((key, limit), spent) in enumerate(zip(pools, used, strict=True)):
                if spent + cost > limit:
                    pool = self._logs.get(key)
                    log = pool.entries() if pool is not None else ()
                    retry = _retry_after(log, spent, cost, limit, now, self.window)
                    return Decision(False, max(limit - spent, 0), retry), index
            if cost:
                for key, _ in pools:
                    pool = self._logs.get(key) or self._new_pool(key, now)
                    pool.log.append((now, cost))
                    pool.used += cost
                    self._logs.move_to_end(key)
            left = [limit - spent - cost for (_, limit), spent in zip(pools, used, strict=True)]
            index = left.index(min(left))
            return Decision(True, max(left[index], 0)), index

    def __len__(self) -> int:
        return len(self._logs)

    def reset(self) -> None:
        with self._lock:
            self._logs.clear()

    def _forget_idle(self, now: float) -> None:
        # The front pool's latest charge is the oldest of all: once it is inside the window, every later one is.
        while self._logs:
            pool = next(iter(self._logs.values()))
            if pool.log and pool.log[-1][0] > now - self.window:
                return
            self._logs.popitem(last=False)

    def _new_pool(self, key: str, now: float) -> _Pool:
        while len(self._logs) >= self.max_pools:
            self._logs.popitem(last=False)
            if now - self._warned_at >= self.LOG_EVERY_SECONDS:
                self._warned_at = now
                logger.warning(
                    "Rate limiting: more than %d callers charged within a minute in this process; "
                    "forgetting the least recently charged (RATE_LIMIT_MEMORY_MAX_POOLS).",
                    self.max_pools,
                )
        pool = self._logs[key] = _Pool()
        return pool


def _retry_after(
    log: Iterable[tuple[float, int]], used: int, cost: int, limit: int, now: float, window: float = WINDOW_SECONDS
) -> float:
    """Seconds until enough old entries leave the window for `cost` to fit."""
    if cost > limit:
        return window
    need = used + cost - limit
    freed = 0
    for stamp, entry_cost in log:
        freed += entry_cost
        if freed >= need:
            return max(stamp + window - now, 0.0)
    return window


# KEYS[1] the pool's log, KEYS[2] its running total; ARGV: cost, limit, window (µs), unique id, force (1/0).
# Members are "<µs>:<cost>:<id>". The total is kept beside the log, so a check only reads
# the entries that leave the window (and, when refusing, the oldest ones until the cost fits).
CREDIT_FUNCTION = """
local function credit(log, total, cost, limit, window, id, force)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
  local freed = 0
  for i = 1, #expired do
    freed = freed + tonumber(string.match(expired[i], '^%d+:(%d+):'))
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window) end
  local stored = redis.call('GET', total)
  local used = 0
  if stored then
    used = math.max(tonumber(stored) - freed, 0)
  else
    -- The total was lost (evicted): rebuild it from the log once.
    local entries = redis.call('ZRANGE', log, 0, -1)
    for i = 1, #entries do
      used = used + tonumber(string.match(entries[i], '^%d+:(%d+):'))
    end
  end
  local ttl = math.floor(window / 1000) + 1000
  if force == '1' or used + cost <= limit then
    if cost > 0 then
      redis.call('ZADD', log, now, string.format('%d:%d:%s', now, cost, id))
      used = used + cost
    end
    redis.call('SET', total, used, 'PX', ttl)
    redis.call('PEXPIRE', log, ttl)
    return {1, limit - used, '0'}
  end
  redis.call('SET', total, used, 'PX', ttl)
  redis.call('PEXPIRE', log, ttl)
  local retry = window
  if cost <= limit then
    local need = used + cost - limit
    local released = 0
    local offset = 0
    while released < need do
      local batch = redis.call('ZRANGE', log, offset, offset + 49, 'WITHSCORES')
      if #batch == 0 then break end
      for i = 1, #batch, 2 do
        released = released + tonumber(string.match(batch[i], '^%d+:(%d+):'))
        if released >= need then
          retry = tonumber(batch[i + 1]) + window - now
          break
        end
      end
      offset = offset + 50
    end
  end
  return {0, limit - used, tostring(retry / 1000000)}
end
"""
CREDIT_SCRIPT = (
    CREDIT_FUNCTION
    + """
return credit(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
"""
)


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)


class RedisCreditLimiter:
    prefix = "keeper:credits:"

    def __init__(self, client: redis.Redis | None = None, *, prefix: str | None = None, window: float = WINDOW_SECONDS):
        self.client = client or redis_client()
        self.prefix = prefix or self.prefix
        self.window = window
        self.script = self.client.register_script(CREDIT_SCRIPT)
        self.combined = self.client.register_script(CREDIT_AND_QUOTA_SCRIPT)

    def consume(self, key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
        window_us = int(self.window * 1_000_000)
        allowed, remaining, retry = self.script(
            keys=[self.prefix + key, self.prefix + key + ":total"],
            args=[cost, limit, window_us, uuid.uuid4().hex[:12], "1" if force else "0"],
        )
        return Decision(bool(allowed), max(int(remaining), 0), float(retry))

    def consume_with_quota(
        self, key: str, cost: int, limit: int, quota_key: str, quota: int, ttl: int
    ) -> tuple[Decision, Decision | None]:
        window_us = int(self.window * 1_000_000)
        allowed, remaining, retry, quota_allowed, quota_remaining, quota_wait = self.combined(
            keys=[self.prefix + key, self.prefix + key + ":total", RedisCounter.prefix + quota_key],
            args=[cost, limit, window_us, uuid.uuid4().hex[:12], "0", quota, ttl],
        )
        credit = Decision(bool(allowed), max(int(remaining), 0), float(retry))
        if not allowed:
            return credit, None
        return credit, Decision(bool(quota_allowed), max(int(quota_remaining), 0), float(max(int(quota_wait), 0)))

    def remaining(self, key: str, limit: int) -> int:
        return self.consume(key, 0, limit).remaining


# KEYS[1] counter; ARGV: amount, limit, ttl seconds
COUNTER_FUNCTION = """
local function count(key, amount, limit, ttl)
  local used = tonumber(redis.call('GET', key) or '0')
  if used + amount > limit then
    return {0, limit - used, redis.call('TTL', key)}
  end
  redis.call('INCRBY', key, amount)
  if used == 0 then redis.call('EXPIRE', key, ttl) end
  return {1, limit - used - amount, 0}
end
"""
COUNTER_SCRIPT = (
    COUNTER_FUNCTION
    + """
return count(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)
# One round trip for a key with a daily quota: the credit pool, then (only if it admits) the quota.
# KEYS: pool log, pool total, quota counter; ARGV: as CREDIT_SCRIPT, then quota limit and ttl.
CREDIT_AND_QUOTA_SCRIPT = (
    CREDIT_FUNCTION
    + COUNTER_FUNCTION
    + """
local c = credit(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
if c[1] == 0 then return {0, c[2], c[3], 1, -1, 0} end
local q = count(KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[6]), tonumber(ARGV[7]))
return {1, c[2], c[3], q[1], q[2], q[3]}
"""
)
# A key and the keys above it (apps/keys: ApiKey.parent): the request is charged to every pool and
# quota, or (if any refuses) to none, in one script, so concurrent children cannot pass a shared pool.
# KEYS: each pool's log and total (2 per pool), then each quota's counter.
# ARGV: cost, window (µs), unique id, number of pools, each pool's limit, each quota's limit, the quotas' ttl (s).
# Returns: pool allowed, its remaining, its retry (s), its index (1-based); quota allowed, remaining, wait, index.
CHAIN_SCRIPT = """
local cost, window, id, n = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local m = #KEYS - 2 * n
local ttl = tonumber(ARGV[5 + n + m])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local keep = math.floor(window / 1000) + 1000
local function cost_of(member) return tonumber(string.match(member, '^%d+:(%d+):')) end
local used, refused, least, least_at = {}, 0, nil, 0
for i = 1, n do
  local log, total, limit = KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[4 + i])
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
  local freed = 0
  for j = 1, #expired do freed = freed + cost_of(expired[j]) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window) end
  local stored = redis.call('GET', total)
  local u = 0
  if stored then
    u = math.max(tonumber(stored) - freed, 0)
  else
    local entries = redis.call('ZRANGE', log, 0, -1)
    for j = 1, #entries do u = u + cost_of(entries[j]) end
  end
  used[i] = u
  if refused == 0 and u + cost > limit then refused = i end
  if least == nil or limit - u - cost < least then least, least_at = limit - u - cost, i end
end
local function keep_totals()
  for i = 1, n do
    redis.call('SET', KEYS[2 * i], used[i], 'PX', keep)
    redis.call('PEXPIRE', KEYS[2 * i - 1], keep)
  end
end
if refused > 0 then
  keep_totals()
  local log, limit = KEYS[2 * refused - 1], tonumber(ARGV[4 + refused])
  local retry = window
  if cost <= limit then
    local need, released, offset = used[refused] + cost - limit, 0, 0
    while released < need do
      local batch = redis.call('ZRANGE', log, offset, offset + 49, 'WITHSCORES')
      if #batch == 0 then break end
      for i = 1, #batch, 2 do
        released = released + cost_of(batch[i])
        if released >= need then
          retry = tonumber(batch[i + 1]) + window - now
          break
        end
      end
      offset = offset + 50
    end
  end
  return {0, limit - used[refused], tostring(retry / 1000000), refused, 1, 0, 0, 0}
end
local counted, qleast, qleast_at = {}, nil, 0
for k = 1, m do
  local limit = tonumber(ARGV[4 + n + k])
  local q = tonumber(redis.call('GET', KEYS[2 * n + k]) or '0')
  counted[k] = q
  if q + cost > limit then
    keep_totals()
    return {1, least or 0, '0', least_at, 0, limit - q, redis.call('TTL', KEYS[2 * n + k]), k}
  end
  if qleast == nil or limit - q - cost < qleast then qleast, qleast_at = limit - q - cost, k end
end
for i = 1, n do
  if cost > 0 then
    redis.call('ZADD', KEYS[2 * i - 1], now, string.format('%d:%d:%s', now, cost, id))
    used[i] = used[i] + cost
  end
end
keep_totals()
for k = 1, m do
  if cost > 0 then
    redis.call('INCRBY', KEYS[2 * n + k], cost)
    if counted[k] == 0 then redis.call('EXPIRE', KEYS[2 * n + k], ttl) end
  end
end
return {1, least or 0, '0', least_at, 1, qleast or 0, 0, qleast_at}
"""


class RedisChainLimiter:
    """CHAIN_SCRIPT over the credit pools and daily counters of RedisCreditLimiter and RedisCounter."""

    def __init__(self, client: redis.Redis | None = None):
        self.client = client or redis_client()
        self.script = self.client.register_script(CHAIN_SCRIPT)

    def consume(
        self, pools: list[tuple[str, int]], cost: int, quotas: list[tuple[str, int]], ttl: int
    ) -> ChainDecision:
        prefix = RedisCreditLimiter.prefix
        keys = [name for key, _ in pools for name in (prefix + key, prefix + key + ":total")]
        keys += [RedisCounter.prefix + key for key, _ in quotas]
        args = [cost, int(WINDOW_SECONDS * 1_000_000), uuid.uuid4().hex[:12], len(pools)]
        args += [limit for _, limit in pools] + [limit for _, limit in quotas] + [ttl]
        allowed, remaining, retry, pool, quota_allowed, quota_remaining, wait, quota = self.script(keys=keys, args=args)
        return ChainDecision(
            Decision(bool(allowed), max(int(remaining), 0), float(retry)),
            int(pool) - 1,
            Decision(bool(quota_allowed), max(int(quota_remaining), 0), float(max(int(wait), 0))),
            int(quota) - 1,
        )


class RedisCounter:
    prefix = "keeper:count:"

    def __init__(self, client: redis.Redis | None = None):
        self.client = client or redis_client()
        self.script = self.client.register_script(COUNTER_SCRIPT)

    def add_within(self, key: str, amount: int, limit: int, ttl: int) -> Decision:
        allowed, remaining, wait = self.script(keys=[self.prefix + key], args=[amount, limit, ttl])
        return Decision(bool(allowed), max(int(remaining), 0), float(max(int(wait), 0)))

    def remaining(self, key: str, limit: int) -> int:
        return max(limit - int(self.client.get(self.prefix + key) or 0), 0)


class DatabaseCounter:
    """Per-UTC-day counters (daily quotas) in the database: one count for every process, kept over restarts.

    A charge is one atomic statement (QuotaUsage.objects.spend). Each process deletes the rows
    of days before yesterday at its first charge of a UTC day: one indexed DELETE a day per
    process, with no scheduler needed (the embedded setup may run none). Yesterday is kept
    for requests that straddle midnight.

    In a gunicorn worker, while another connection holds the database's write lock (a sync holds
    SQLite's for its whole transaction), a charge waits at most KEEPER_DATABASE_LOCK_WAIT_SECONDS, then is deferred: the
    process admits against what the database says is left, but only its share of it (left / the
    number of gunicorn workers, so that all workers together stay within the quota), keeps the
    count in memory, and its flusher thread adds it once the lock is free (keeper/writes.py). While
    counts wait, later charges of this process are deferred at once rather than each waiting again.
    What the limit allows is exact except in the moment between the lock's release and the
    deferred counts' write, when another process may charge what they have not yet added; a
    SIGKILLed worker loses its deferred counts (the quota then admits that much more).
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        # Imported here, not at the top: the Redis limiters of this module are also used
        # without Django set up (the spawned workers of tests/throttling/burst.py).
        from apps.throttling.models import QuotaUsage

        self.rows = QuotaUsage.objects
        self.clock = clock
        self._pruned_on: date | None = None
        self._deferred: dict[tuple[str, date], int] = {}
        self._deferred_lock = threading.Lock()

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def add_within(self, key: str, amount: int, limit: int, ttl: int) -> Decision:
        """Count `amount` against `limit` for today unless it would go past it; `ttl` is the wait when refused."""
        day = self.today()
        if amount <= 0:
            used = self.rows.used_on(key, day) + self._deferred.get((key, day), 0)
            if used + amount > limit:
                return Decision(False, max(limit - used, 0), float(ttl))
            return Decision(True, limit - used - amount)
        if not self._deferred:
            try:
                self._prune(day)
                used = self.rows.spend(key, day, amount, limit)
            except OperationalError as exc:
                # Only where a flusher thread will add the deferred counts later.
                if not (writes.deferring() and writes.is_lock_timeout(exc)):
                    raise
                metrics.database_lock_timeout("deferred")
            else:
                if used is not None:
                    return Decision(True, max(limit - used, 0))
                return Decision(False, max(limit - self.rows.used_on(key, day), 0), float(ttl))
        return self._add_deferred(key, day, amount, limit, ttl)

    def _add_deferred(self, key: str, day: date, amount: int, limit: int, ttl: int) -> Decision:
        committed = self.rows.used_on(key, day)  # a read: in WAL mode it never waits on the writer
        with self._deferred_lock:
            pending = self._deferred.get((key, day), 0)
            share = (limit - committed) // writes.flusher.processes
            if pending + amount > share:
                return Decision(False, max(min(limit - committed - pending, share - pending), 0), float(ttl))
            self._deferred[(key, day)] = pending + amount
        return Decision(True, max(limit - committed - pending - amount, 0))

    def flush(self) -> None:
        """Add the deferred counts to the database (the flusher thread; what fails stays for the next round)."""
        with self._deferred_lock:
            pending = dict(self._deferred)
        for (key, day), amount in pending.items():
            # Admitted already: added whatever the total (no limit to check against).
            self.rows.spend(key, day, amount, 2**62)
            with self._deferred_lock:
                left = self._deferred.get((key, day), 0) - amount
                if left > 0:
                    self._deferred[(key, day)] = left
                else:
                    self._deferred.pop((key, day), None)

    def remaining(self, key: str, limit: int) -> int:
        day = self.today()
        return max(limit - self.rows.used_on(key, day) - self._deferred.get((key, day), 0), 0)

    def _prune(self, day: date) -> None:
        if self._pruned_on != day:
            self.rows.prune(before=day - timedelta(days=1))
            self._pruned_on = day


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


# KEYS[1] bucket state, KEYS[2] its configuration {rate, burst}, kept in Redis so no process
# needs the database per request; {-1} asks the caller to load the configuration and retry.
BUCKET_SCRIPT = """
local config = redis.call('HMGET', KEYS[2], 'rate', 'burst')
local rate = tonumber(config[1])
local burst = tonumber(config[2])
if rate == nil or burst == nil then return {-1, 0, '0'} end
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
    config_key = "keeper:global-bucket:config"

    def __init__(self, client: redis.Redis | None = None):
        self.client = client or redis_client()
        self.script = self.client.register_script(BUCKET_SCRIPT)

    def take(self, load_config) -> Decision:
        """`load_config()` -> (rate, burst) is called only when Redis does not hold the configuration."""
        allowed, remaining, wait = self.script(keys=[self.key, self.config_key])
        if int(allowed) == -1:
            rate, burst = load_config()
            self.configure(rate, burst)
            allowed, remaining, wait = self.script(keys=[self.key, self.config_key])
        return Decision(int(allowed) == 1, int(remaining), float(wait))

    def configure(self, rate: float, burst: int) -> None:
        self.client.hset(self.config_key, mapping={"rate": repr(float(rate)), "burst": int(burst)})

    def forget_configuration(self) -> None:
        self.client.delete(self.config_key)


class FallbackLimiters:
    """The configured backend. While Redis fails, credit pools and the bucket degrade to this
    process's memory limiters, and daily quotas to the database (never to process memory)."""

    LOG_EVERY_SECONDS = 60.0
    # After a Redis failure, requests skip Redis for this long instead of each waiting on it.
    RETRY_REDIS_AFTER_SECONDS = 5.0

    def __init__(self, backend: str):
        self.backend = backend
        self.memory_credits = MemoryCreditLimiter(max_pools=settings.RATE_LIMIT_MEMORY_MAX_POOLS)
        # Failed password sign-ins per client address and per user name (apps/throttling/logins.py).
        login_window = settings.KEEPER_LOGIN_FAILURE_WINDOW_SECONDS
        self.memory_login_failures = MemoryCreditLimiter(
            max_pools=settings.RATE_LIMIT_MEMORY_MAX_POOLS, window=login_window
        )
        self.redis_login_failures: RedisCreditLimiter | None = None
        self.memory_bucket = MemoryTokenBucket()
        self.database_counter = DatabaseCounter()
        self.redis_credits: RedisCreditLimiter | None = None
        self.redis_bucket: RedisTokenBucket | None = None
        self.redis_counter: RedisCounter | None = None
        self.redis_chain: RedisChainLimiter | None = None
        if backend == "redis":
            client = redis_client()
            self.redis_credits = RedisCreditLimiter(client)
            self.redis_login_failures = RedisCreditLimiter(client, prefix="keeper:login-failures:", window=login_window)
            self.redis_bucket = RedisTokenBucket(client)
            self.redis_counter = RedisCounter(client)
            self.redis_chain = RedisChainLimiter(client)
        self._last_warning = 0.0
        self._redis_down_until = 0.0

    def _redis_usable(self) -> bool:
        return self.backend == "redis" and time.monotonic() >= self._redis_down_until

    def _either(self, redis_limiter, on_redis: Callable, on_fallback: Callable):
        """`on_redis(redis_limiter)` while Redis answers, else `on_fallback()` (and the failure noted)."""
        if redis_limiter is not None and self._redis_usable():
            try:
                return on_redis(redis_limiter)
            except redis.RedisError as exc:
                self._warn(exc)
        return on_fallback()

    def consume(self, key: str, cost: int, limit: int, *, force: bool = False) -> Decision:
        return self._either(
            self.redis_credits,
            lambda r: r.consume(key, cost, limit, force=force),
            lambda: self.memory_credits.consume(key, cost, limit, force=force),
        )

    def consume_login_failures(self, key: str, count: int, limit: int, *, force: bool = False) -> Decision:
        """Failed sign-ins over KEEPER_LOGIN_FAILURE_WINDOW_SECONDS, counted as credit pools are (`count` 0 reads)."""
        return self._either(
            self.redis_login_failures,
            lambda r: r.consume(key, count, limit, force=force),
            lambda: self.memory_login_failures.consume(key, count, limit, force=force),
        )

    def consume_with_quota(
        self, key: str, cost: int, limit: int, quota_key: str, quota: int, ttl: int
    ) -> tuple[Decision, Decision | None]:
        """The credit pool, then the quota (only when the pool admits): one round trip on Redis."""

        def without_redis() -> tuple[Decision, Decision | None]:
            credit = self.memory_credits.consume(key, cost, limit)
            if not credit.allowed:
                return credit, None
            return credit, self.database_counter.add_within(quota_key, cost, quota, ttl)

        return self._either(
            self.redis_credits, lambda r: r.consume_with_quota(key, cost, limit, quota_key, quota, ttl), without_redis
        )

    def take(self, load_config) -> Decision:
        """One token of the global bucket; `load_config()` -> (rate, burst) reads the database."""
        return self._either(
            self.redis_bucket, lambda r: r.take(load_config), lambda: self.memory_bucket.take(*load_config())
        )

    def configuration_changed(self) -> None:
        if self.redis_bucket is not None:
            try:
                self.redis_bucket.forget_configuration()
            except redis.RedisError as exc:
                self._warn(exc)

    def add_within(self, key: str, amount: int, limit: int, ttl: int) -> Decision:
        """A daily counter (quota): in Redis with the redis backend, else in the database."""
        return self._either(
            self.redis_counter,
            lambda r: r.add_within(key, amount, limit, ttl),
            lambda: self.database_counter.add_within(key, amount, limit, ttl),
        )

    def counter_remaining(self, key: str, limit: int) -> int:
        """What is left of a daily counter's `limit`, read without counting anything."""
        return self._either(
            self.redis_counter,
            lambda r: r.remaining(key, limit),
            lambda: self.database_counter.remaining(key, limit),
        )

    def consume_chain(
        self, pools: list[tuple[str, int]], cost: int, quotas: list[tuple[str, int]], ttl: int
    ) -> ChainDecision:
        """`cost` charged to every credit pool and daily quota given ([(key, limit)]), or refused.

        On Redis, all or nothing in one script. Without it, the pools are charged together in this
        process's memory, then (if they admit) the quotas one by one in the database, each checked
        first so that one refusing rarely leaves the others charged; a quota never passes its limit.
        """

        def without_redis() -> ChainDecision:
            credit, pool = self.memory_credits.consume_all(pools, cost) if pools else (Decision(True, 0), -1)
            if not credit.allowed or not quotas:
                return ChainDecision(credit, pool, Decision(True, 0), -1)
            for index, (key, limit) in enumerate(quotas):
                left = self.database_counter.remaining(key, limit)
                if left < cost:
                    return ChainDecision(credit, pool, Decision(False, left, float(ttl)), index)
            decisions = []
            for index, (key, limit) in enumerate(quotas):
                decision = self.database_counter.add_within(key, cost, limit, ttl)
                if not decision.allowed:
                    return ChainDecision(credit, pool, decision, index)
                decisions.append(decision)
            least = min(range(len(decisions)), key=lambda index: decisions[index].remaining)
            return ChainDecision(credit, pool, decisions[least], least)

        return self._either(self.redis_chain, lambda r: r.consume(pools, cost, quotas, ttl), without_redis)

    def _warn(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + self.RETRY_REDIS_AFTER_SECONDS
        now = time.monotonic()
        if now - self._last_warning >= self.LOG_EVERY_SECONDS:
            self._last_warning = now
            logger.warning(
                "Rate limiting: Redis unavailable (%s); using this process's memory limiter (daily quotas: "
                "the database) until it is back.",
                exc.__class__.__name__,
            )
