"""A bounded load test of the stack: gunicorn workers (4 by default), Redis credit pools, API keys, for
KEEPER_LOAD_SECONDS (default 60) of concurrent clients on 127.0.0.1. Every answer must be a 200 or the
intended 429, with no connection error, and each key's pool must admit what its size says, exactly.

What a pool admits (apps/throttling/limiters.py): the pool is a log of (time, cost) over a sliding
60 s; a request is admitted while the credits logged in the last 60 s plus its cost stay within the
pool. A new key's pool is empty, and its clients ask far more than it holds, so:
- the first floor(pool / cost) requests are admitted at once: generation 0, a burst from the key's
  first request at s0 (Redis's clock: the log's times; the clients' clock is the same machine's);
- an entry frees its credits exactly 60 s after it was logged, and the waiting clients take them at
  once: generation g is admitted from s0 + 60 g on, in a burst as long as the first, and again admits
  floor(pool / cost) requests.
So a key admits floor(pool / cost) * cost credits per generation begun while its clients send, and
the count is exact if the clients stop where no generation is being admitted: at the end of the run,
unless that falls within a generation's burst (a 60 s run ends exactly when the first refill begins),
in which case just before it begins. GUARD covers the requests still in flight when the clients stop.
The tolerance asked, 1% of the expected credits, is then never needed.
"""

import http.client
import math
import os
import threading
import time
from dataclasses import dataclass, field

import pytest

from tests.stack.stack import Stack

pytestmark = pytest.mark.usefixtures("roomy_global_bucket")

WINDOW = 60.0
# Seconds kept clear before a refill begins: more than any request stays in flight here.
GUARD = 3.0
# The longest a generation's burst may take for the stop rule above: checked after the run.
BURST_BOUND = 10.0
CLIENTS_PER_KEY = 4
# keeper/gunicorn.conf.py: a kept-alive connection idle this long is closed by the server.
KEEPALIVE = 2.0


def load_seconds() -> float:
    value = os.environ.get("KEEPER_LOAD_SECONDS", "").strip() or "60"
    seconds = float(value)
    assert seconds >= 1, f"KEEPER_LOAD_SECONDS must be at least 1, got {value}"
    return seconds


@dataclass
class KeyLoad:
    """One key, its pool, and the requests its clients made."""

    name: str
    path: str
    cost: int  # the route's seeded cost (apps/throttling/migrations/0002_seed_route_costs.py)
    pool: int
    limited: bool = True  # False: a pool the clients never drain, every request admitted
    key: str = ""
    first_sent: float | None = None
    stop_at: float = 0.0
    answers: list[tuple[float, float, int, str | None]] = field(default_factory=list)  # sent, done, status, cost
    errors: list[str] = field(default_factory=list)
    idle_closes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def per_generation(self) -> int:
        return self.pool // self.cost

    def plan_stop(self, first_sent: float, run_end: float) -> float:
        """The end of the run, or just before the refill whose burst it would cut."""
        generation = 1
        while first_sent + WINDOW * generation - GUARD <= run_end:
            begins = first_sent + WINDOW * generation
            if run_end < begins + BURST_BOUND + GUARD:
                return begins - GUARD
            generation += 1
        return run_end

    def generations(self) -> int:
        """Generations begun before the clients stopped (the first at first_sent)."""
        return 1 + math.floor((self.stop_at - self.first_sent) / WINDOW)


def hammer(stack: Stack, load: KeyLoad, run_end: float) -> None:
    """One client: requests back to back on a kept-alive connection until the key's stop time."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    headers = {"X-API-Key": load.key}
    last_done: float | None = None  # None: the next request opens a new connection
    try:
        while True:
            sent = time.time()
            with load.lock:
                if load.first_sent is None:
                    load.first_sent = sent
                    load.stop_at = load.plan_stop(sent, run_end)
            if sent >= load.stop_at:
                return
            try:
                connection.request("GET", load.path, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                idle = None if last_done is None else sent - last_done
                closed = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                if idle is not None and idle >= KEEPALIVE - 0.5 and isinstance(exc, closed):
                    # The server closed the connection as idle just as this request left (a client
                    # starved of CPU): what every HTTP client retries (RFC 9112, 9.3.1). Sent again.
                    load.idle_closes += 1
                else:
                    load.errors.append(f"{exc.__class__.__name__}: {exc} (idle {idle})")
                last_done = None
                continue
            last_done = time.time()
            if response.status == 429 and not (body.startswith(b"{") and response.getheader("Retry-After")):
                load.errors.append(f"a 429 without its JSON body or Retry-After: {body[:200]!r}")
            load.answers.append((sent, time.time(), response.status, response.getheader("X-RateLimit-Cost")))
    finally:
        connection.close()


def first_burst(load: KeyLoad) -> float | None:
    """Seconds from the key's first request to the answer of the last one its empty pool admitted."""
    admitted = [done for _, done, status, _ in load.answers if status == 200]
    return admitted[load.per_generation - 1] - load.first_sent if len(admitted) >= load.per_generation else None


def summary(load: KeyLoad) -> str:
    statuses = [status for _, _, status, _ in load.answers]
    admitted, expected, burst = statuses.count(200), load.generations() * load.per_generation, first_burst(load)
    if not load.limited:
        return (
            f"{load.name}: {len(statuses)} requests, {admitted} admitted, {len(load.errors)} errors,"
            f" {load.idle_closes} idle connection(s) closed and retried"
        )
    return (
        f"{load.name}: {len(statuses)} requests, {admitted} admitted ({admitted * load.cost} credits, expected"
        f" {expected * load.cost} in {load.generations()} generation(s)), {statuses.count(429)} 429,"
        f" first burst {burst if burst is None else round(burst, 2)} s, {len(load.errors)} errors,"
        f" {load.idle_closes} idle connection(s) closed and retried"
    )


def test_each_pool_admits_exactly_its_credits_under_load_with_no_errors(stack: Stack) -> None:
    duration = load_seconds()
    # Pools small enough for any machine to drain within seconds: the counts must not depend on speed.
    limited = [
        KeyLoad("load servers", "/servers?vcpus_min=2&limit=5", cost=3, pool=90),
        KeyLoad("load regions", "/regions", cost=1, pool=60),
        # 52 is no multiple of 5: the last 2 credits of each minute are never enough for a request.
        KeyLoad("load server prices", "/server_prices?limit=5", cost=5, pool=52),
    ]
    # And searches that are all admitted: the API's own work under the same load, not only refusals.
    roomy = KeyLoad(
        "load searches", "/servers?vcpus_min=1&memory_min=1&limit=10", cost=3, pool=1_000_000, limited=False
    )
    loads = [*limited, roomy]
    for load in loads:
        load.key = stack.create_key(name=load.name, credits_per_minute=load.pool)["key"]
    log_start = len(stack.log("web"))
    workers = stack.web_workers()

    run_end = time.time() + duration
    clients = [
        threading.Thread(target=hammer, args=(stack, load, run_end), name=f"{load.name} {number}")
        for load in loads
        for number in range(CLIENTS_PER_KEY)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=duration + 60)
    assert not any(client.is_alive() for client in clients), "a client did not stop"

    report = [summary(load) for load in loads]
    print(
        f"\nload: {duration:.0f} s, {len(workers)} gunicorn workers, {len(clients)} clients\n  " + "\n  ".join(report)
    )
    assert roomy.errors == [], roomy.errors[:5]
    assert roomy.answers and {status for _, _, status, _ in roomy.answers} == {200}
    for load in limited:
        statuses = [status for _, _, status, _ in load.answers]
        admitted = [answer for answer in load.answers if answer[2] == 200]
        expected = load.generations() * load.per_generation
        burst = first_burst(load)
        assert load.errors == [], load.errors[:5]
        assert set(statuses) <= {200, 429}, sorted(set(statuses))
        assert statuses.count(429) > 0, "the clients never asked more than the pool holds"
        assert {cost for *_, cost in admitted} == {str(load.cost)}
        # The empty pool was drained; and if a refill is counted, bursts are as short as the stop rule assumes.
        assert burst is not None, summary(load)
        assert load.generations() == 1 or burst < BURST_BOUND, summary(load)
        assert abs(len(admitted) * load.cost - expected * load.cost) <= 0.01 * expected * load.cost, summary(load)

    # Nothing failed on the server's side either, answered or not.
    assert "Traceback" not in stack.log("web")[log_start:]
    assert stack.web_workers() == workers, "a gunicorn worker died or was replaced during the run"
