"""On Redis, limits are exact across processes: a burst from several processes admits exactly the limit."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.throttling import burst

PROCESSES = 4
CALLS_PER_PROCESS = 250  # 1,000 requests in all


@pytest.fixture
def spawn(redis_url):
    """A pool of fresh interpreters (spawn) and a barrier that starts their bursts together."""
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=context) as pool:
        yield pool, manager.Barrier(PROCESSES)
    manager.shutdown()


def run_together(spawn, function, *args) -> list[int]:
    pool, start = spawn
    futures = [pool.submit(function, *args, start) for _ in range(PROCESSES)]
    return [future.result(timeout=60) for future in futures]


def test_a_burst_of_1000_requests_from_4_processes_spends_a_100_credit_pool_exactly(spawn, redis_url, redis_client):
    admitted = run_together(spawn, burst.spend_credits, redis_url, "user:burst", CALLS_PER_PROCESS, 100)

    assert sum(admitted) == 100
    assert redis_client.zcard("keeper:credits:user:burst") == 100


def test_a_burst_of_1000_requests_from_4_processes_empties_a_bucket_of_50_exactly(spawn, redis_url):
    admitted = run_together(spawn, burst.take_tokens, redis_url, CALLS_PER_PROCESS, 1e-6, 50)

    assert sum(admitted) == 50


@pytest.mark.parametrize(("parent_pool", "parent_quota", "limit"), [(30, 1000, 30), (1000, 40, 40)])
def test_four_children_bursting_from_4_processes_stay_within_their_parents_pool_and_quota_exactly(
    spawn, redis_url, redis_client, parent_pool, parent_quota, limit
):
    pool, start = spawn
    futures = [
        pool.submit(burst.spend_as_child, redis_url, child, CALLS_PER_PROCESS, parent_pool, parent_quota, start)
        for child in range(PROCESSES)
    ]
    admitted = [future.result(timeout=60) for future in futures]

    assert sum(admitted) == limit
    assert redis_client.zcard("keeper:credits:key:parent") == limit
    assert int(redis_client.get("keeper:count:quota:parent")) == limit
    # Every admitted request was charged to its child too, and no refused one to anything.
    children = [redis_client.zcard(f"keeper:credits:key:child-{child}") for child in range(PROCESSES)]
    assert children == admitted
