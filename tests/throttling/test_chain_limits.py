"""A request charged to several pools and quotas at once (a key and the keys above it): all or nothing.

Each test runs on the memory backend (daily quotas in the database) and on Redis.
"""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from apps.throttling import services

DAY = 3600


def chain(pools, quotas=(), cost=1):
    return services.limiters().consume_chain(list(pools), cost, list(quotas), DAY)


def left(pool: str, limit: int) -> int:
    return services.limiters().consume(pool, 0, limit).remaining


def test_a_pool_that_refuses_charges_none_of_the_others(backend):
    pools = [("key:child", 5), ("key:parent", 2)]

    decisions = [chain(pools) for _ in range(3)]

    assert [d.credit.allowed for d in decisions] == [True, True, False]
    refused = decisions[2]
    assert (refused.pool, refused.credit.remaining) == (1, 0)
    assert 0 < refused.credit.retry_after <= 60
    assert (left("key:child", 5), left("key:parent", 2)) == (3, 0)


def test_the_pool_with_the_least_left_is_reported(backend):
    decision = chain([("key:child", 5), ("key:parent", 3), ("key:grandparent", 10)])

    assert (decision.credit.allowed, decision.pool, decision.credit.remaining) == (True, 1, 2)


def test_every_quota_is_counted_and_none_passes_its_limit(backend):
    pools, quotas = [("key:child", 100)], [("quota:child", 10), ("quota:parent", 3)]

    decisions = [chain(pools, quotas) for _ in range(4)]

    assert [d.quota.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].quota_index == 1
    limiters = services.limiters()
    assert limiters.counter_remaining("quota:parent", 3) == 0
    assert limiters.counter_remaining("quota:child", 10) == 7


def test_quotas_alone_without_pools(backend):
    decisions = [chain([], [("quota:parent", 1)]) for _ in range(2)]

    assert [(d.credit.allowed, d.pool) for d in decisions] == [(True, -1), (True, -1)]
    assert [d.quota.allowed for d in decisions] == [True, False]


def test_siblings_bursting_together_from_threads_pass_their_parents_pool_exactly(backend):
    threads, calls = 8, 50
    start = Barrier(threads)

    def burst(child: int) -> int:
        start.wait(timeout=30)
        return sum(chain([(f"key:child-{child}", 100), ("key:parent", 30)]).credit.allowed for _ in range(calls))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        admitted = list(pool.map(burst, range(threads)))

    assert sum(admitted) == 30
    assert [left(f"key:child-{child}", 100) for child in range(threads)] == [100 - n for n in admitted]
