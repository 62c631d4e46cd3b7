"""The memory limiter forgets callers whose whole log has left the minute, and never keeps more than its bound."""

import logging

import pytest

from apps.throttling import services
from apps.throttling.limiters import MemoryCreditLimiter
from tests.throttling.conftest import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_pools_idle_for_a_whole_window_are_forgotten(clock):
    limiter = MemoryCreditLimiter(clock=clock)
    for n in range(10_000):
        limiter.consume(f"ip:10.0.{n // 256}.{n % 256}", 1, 60)
    assert len(limiter) == 10_000

    clock.advance(60)
    limiter.consume("ip:192.0.2.1", 1, 60)

    assert list(limiter._logs) == ["ip:192.0.2.1"]


def test_a_pool_is_kept_while_any_of_its_charges_is_in_the_window(clock):
    limiter = MemoryCreditLimiter(clock=clock)
    limiter.consume("old", 1, 10)
    clock.advance(30)
    limiter.consume("old", 9, 10)
    clock.advance(45)  # the first charge has left the window, the second has not

    limiter.consume("other", 1, 10)

    assert "old" in limiter._logs
    assert limiter.remaining("old", 10) == 1


def test_reading_or_refusing_a_new_caller_keeps_nothing(clock):
    limiter = MemoryCreditLimiter(clock=clock)

    limiter.remaining("ip:192.0.2.1", 10)
    limiter.consume("ip:192.0.2.2", 11, 10)

    assert len(limiter) == 0


def test_the_bound_is_never_exceeded(clock):
    limiter = MemoryCreditLimiter(clock=clock, max_pools=100)

    sizes = []
    for n in range(1_000):
        limiter.consume(f"user:{n}", 1, 60)
        sizes.append(len(limiter))
        clock.advance(0.01)

    assert max(sizes) == 100


def test_at_the_bound_the_least_recently_charged_pool_is_forgotten(clock, caplog):
    limiter = MemoryCreditLimiter(clock=clock, max_pools=2)
    limiter.consume("first", 5, 5)
    limiter.consume("second", 5, 5)
    limiter.consume("first", 0, 5)  # a read does not make "first" recently charged

    with caplog.at_level(logging.WARNING, logger="apps.throttling.limiters"):
        limiter.consume("third", 5, 5)

    assert list(limiter._logs) == ["second", "third"]
    # Forgotten, "first" starts over with a full pool: what eviction at the bound costs in accuracy.
    assert limiter.consume("first", 5, 5).allowed
    assert "RATE_LIMIT_MEMORY_MAX_POOLS" in caplog.text


def test_an_active_pool_is_never_evicted_by_idle_ones(clock):
    limiter = MemoryCreditLimiter(clock=clock, max_pools=3)
    limiter.consume("idle-1", 1, 10)
    limiter.consume("idle-2", 1, 10)
    clock.advance(30)
    limiter.consume("active", 10, 10)  # spent until t=90
    clock.advance(35)  # t=65: the idle pools' charges have left the window
    # Touched after "active" (a read, a refusal), yet still holding nothing.
    limiter.remaining("idle-1", 10)
    limiter.consume("idle-2", 11, 10)

    limiter.consume("new-1", 1, 10)
    limiter.consume("new-2", 1, 10)

    assert list(limiter._logs) == ["active", "new-1", "new-2"]
    assert not limiter.consume("active", 1, 10).allowed


def test_the_process_limiter_is_bounded_by_the_setting(settings):
    settings.RATE_LIMIT_MEMORY_MAX_POOLS = 7
    services.reset_limiters()

    assert services.limiters().memory_credits.max_pools == 7


def test_a_busy_pool_counts_right_and_stays_small_as_its_charges_leave_the_window(clock):
    limiter = MemoryCreditLimiter(clock=clock)

    decisions = []
    for _ in range(600):
        decisions.append(limiter.consume("busy", 1, 100))
        clock.advance(1)

    assert all(decision.allowed for decision in decisions)
    assert decisions[-1].remaining == 40  # the charges of the last 60 seconds
    assert len(limiter._logs["busy"].log) <= 120


def test_retry_after_counts_only_the_charges_still_in_the_window(clock):
    limiter = MemoryCreditLimiter(clock=clock)
    for stamp, cost in [(0, 1), (1, 1), (2, 1), (30, 7)]:
        clock.now = 10_000.0 + stamp
        limiter.consume("k", cost, 10)
    clock.now = 10_060.5  # the charge of t=0 has left

    refused = limiter.consume("k", 3, 10)

    assert (refused.allowed, refused.remaining) == (False, 1)
    assert refused.retry_after == pytest.approx(1.5)  # once t=1 and t=2 leave, at t=62
