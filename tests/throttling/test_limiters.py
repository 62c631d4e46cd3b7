"""The credit limiters of both backends decide alike: a sliding minute, refusals cost nothing, force always charges."""

import pytest

from apps.throttling.limiters import Decision, MemoryCreditLimiter, MemoryTokenBucket, RedisCreditLimiter
from tests.throttling.conftest import FakeClock


@pytest.fixture(params=["memory", "redis"])
def limiter(request):
    if request.param == "memory":
        return MemoryCreditLimiter(clock=FakeClock())
    return RedisCreditLimiter(request.getfixturevalue("redis_client"))


def test_credits_are_admitted_until_the_pool_is_spent(limiter):
    decisions = [limiter.consume("ip:192.0.2.1", 3, 10) for _ in range(4)]

    assert [(d.allowed, d.remaining) for d in decisions] == [(True, 7), (True, 4), (True, 1), (False, 1)]


def test_a_smaller_request_still_fits_after_a_refusal(limiter):
    limiter.consume("k", 8, 10)
    assert not limiter.consume("k", 3, 10).allowed

    assert limiter.consume("k", 2, 10) == Decision(True, 0)


def test_a_forced_charge_is_taken_even_beyond_the_pool(limiter):
    limiter.consume("k", 8, 10)

    forced = limiter.consume("k", 10, 10, force=True)

    assert (forced.allowed, forced.remaining) == (True, 0)
    assert not limiter.consume("k", 1, 10).allowed


def test_pools_are_separate_per_key(limiter):
    limiter.consume("user:alice", 10, 10)

    assert limiter.consume("user:bob", 10, 10).allowed


def test_a_request_costing_more_than_the_pool_waits_a_whole_window(limiter):
    refused = limiter.consume("k", 11, 10)

    assert (refused.allowed, refused.retry_after) == (False, 60.0)


def test_remaining_reads_without_spending(limiter):
    limiter.consume("k", 4, 10)

    assert limiter.remaining("k", 10) == limiter.remaining("k", 10) == 6


def test_memory_credits_leave_the_window_after_exactly_a_minute():
    clock = FakeClock()
    limiter = MemoryCreditLimiter(clock=clock)
    limiter.consume("k", 10, 10)

    clock.advance(59.999)
    assert limiter.consume("k", 1, 10).retry_after == pytest.approx(0.001)
    clock.advance(0.001)

    assert limiter.consume("k", 1, 10).allowed


def test_the_memory_bucket_starts_full_and_refills_at_its_rate():
    clock = FakeClock()
    bucket = MemoryTokenBucket(clock=clock)

    assert [bucket.take(1, 2).allowed for _ in range(3)] == [True, True, False]
    clock.advance(0.25)
    assert bucket.take(1, 2).retry_after == pytest.approx(0.75)
    clock.advance(0.75)
    assert bucket.take(1, 2).allowed
