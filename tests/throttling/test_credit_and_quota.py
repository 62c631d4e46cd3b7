"""A key with a daily quota: its credit pool and its quota are checked together (one Redis round trip)."""

from apps.throttling import services


def test_the_quota_is_counted_only_when_the_pool_admits(backend):
    limiters = services.limiters()

    first = limiters.consume_with_quota("key:a", 3, 5, "quota:a:today", 100, 3600)
    refused, quota_untouched = limiters.consume_with_quota("key:a", 3, 5, "quota:a:today", 100, 3600)

    assert first[0].allowed and first[1].allowed and first[1].remaining == 97
    assert not refused.allowed and quota_untouched is None
    assert limiters.add_within("quota:a:today", 0, 100, 3600).remaining == 97


def test_a_spent_quota_refuses_after_the_pool_admitted(backend):
    limiters = services.limiters()

    limiters.consume_with_quota("key:b", 3, 60, "quota:b:today", 4, 3600)
    pool, quota = limiters.consume_with_quota("key:b", 3, 60, "quota:b:today", 4, 3600)

    assert pool.allowed and pool.remaining == 54
    assert not quota.allowed and quota.remaining == 1
    assert 0 < quota.retry_after <= 3600
