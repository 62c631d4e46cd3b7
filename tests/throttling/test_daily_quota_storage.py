"""Daily quotas are counted where every process and a restart see them: the database, or Redis.

With RATE_LIMIT_BACKEND=memory (and with redis while Redis is down) the count is a QuotaUsage row,
changed by one atomic statement, so N workers admit the quota once, not N times.
"""

import threading
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection

from apps.keys.services import Actor, key_create, quota_remaining
from apps.throttling import services
from apps.throttling.limiters import FallbackLimiters
from apps.throttling.models import QuotaUsage
from tests.fakes import closed_port

DAY = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


def admitted(decisions) -> int:
    return sum(decision.allowed for decision in decisions)


def test_two_processes_over_one_database_admit_exactly_the_quota(rate_limits):
    first, second = FallbackLimiters("memory"), FallbackLimiters("memory")

    decisions = [worker.add_within("quota:k1:20310304", 1, 10, 3600) for _ in range(10) for worker in (first, second)]

    assert admitted(decisions) == 10
    assert QuotaUsage.objects.get(counter="quota:k1:20310304").used == 10


def test_two_processes_with_their_own_credit_pools_still_share_the_quota(rate_limits):
    first, second = FallbackLimiters("memory"), FallbackLimiters("memory")

    quotas = [
        worker.consume_with_quota("key:k2", 1, 100, "quota:k2:20310304", 10, 3600)[1]
        for _ in range(10)
        for worker in (first, second)
    ]

    assert admitted(quotas) == 10


def test_a_restarted_process_still_sees_the_days_count(rate_limits):
    before = FallbackLimiters("memory")
    assert before.add_within("quota:k3:20310304", 7, 10, 3600).remaining == 3

    after = FallbackLimiters("memory")

    assert after.counter_remaining("quota:k3:20310304", 10) == 3
    assert not after.add_within("quota:k3:20310304", 4, 10, 3600).allowed
    assert after.add_within("quota:k3:20310304", 3, 10, 3600).allowed


def test_a_refused_charge_counts_nothing_and_says_when_the_day_ends(rate_limits):
    limiter = FallbackLimiters("memory")
    limiter.add_within("quota:k4:20310304", 8, 10, 3600)

    refused = limiter.add_within("quota:k4:20310304", 3, 10, 3600)

    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 2, 3600.0)
    assert limiter.add_within("quota:k4:20310304", 2, 10, 3600).allowed


def test_a_charge_larger_than_the_quota_is_refused_without_a_row(rate_limits):
    refused = FallbackLimiters("memory").add_within("quota:k5:20310304", 11, 10, 3600)

    assert (refused.allowed, refused.remaining) == (False, 10)
    assert not QuotaUsage.objects.exists()


def test_a_restart_does_not_refill_a_keys_daily_quota(api, rate_limits, django_user_model):
    owner = django_user_model.objects.create_user("quota-owner", password=None)
    issued = key_create(owner=owner, name="q", actor=Actor("test-setup"), daily_quota=3)
    headers = {"HTTP_X_API_KEY": issued.value}

    before = [api.get("/regions", **headers).status_code for _ in range(2)]
    services.reset_limiters()  # a new worker process: nothing in memory
    after = [api.get("/regions", **headers).status_code for _ in range(2)]

    assert (before, after) == ([200, 200], [200, 429])
    assert quota_remaining(issued.api_key) == 0


def test_each_utc_day_has_its_own_count(rate_limits):
    limiter = FallbackLimiters("memory")
    with time_machine.travel(datetime(2031, 3, 4, 23, 59, 59, tzinfo=UTC), tick=False) as traveller:
        limiter.add_within("quota:k6", 10, 10, 1)
        late = limiter.add_within("quota:k6", 1, 10, 1)
        traveller.move_to(datetime(2031, 3, 5, 0, 0, 1, tzinfo=UTC))
        next_day = limiter.add_within("quota:k6", 1, 10, 86_399)

    assert (late.allowed, next_day.allowed, next_day.remaining) == (False, True, 9)
    assert set(QuotaUsage.objects.values_list("day", "used")) == {(date(2031, 3, 4), 10), (date(2031, 3, 5), 1)}


def test_days_before_yesterday_are_pruned_at_a_processs_first_charge_of_the_day(rate_limits):
    for day in (1, 2, 3):
        QuotaUsage.objects.create(counter="quota:old", day=date(2031, 3, day), used=5)

    with time_machine.travel(datetime(2031, 3, 4, 0, 0, 5, tzinfo=UTC), tick=False):
        FallbackLimiters("memory").add_within("quota:k7", 1, 10, 3600)

    assert sorted(QuotaUsage.objects.values_list("counter", "day")) == [
        ("quota:k7", date(2031, 3, 4)),
        ("quota:old", date(2031, 3, 3)),
    ]


def test_while_redis_is_down_quotas_fall_back_to_the_database_not_to_process_memory(rate_limits):
    rate_limits.RATE_LIMIT_BACKEND = "redis"
    rate_limits.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/1"
    first, second = FallbackLimiters("redis"), FallbackLimiters("redis")

    quotas = [
        worker.consume_with_quota("key:k8", 1, 100, "quota:k8:20310304", 6, 3600)[1]
        for _ in range(6)
        for worker in (first, second)
    ]

    assert admitted(quotas) == 6
    assert QuotaUsage.objects.get(counter="quota:k8:20310304").used == 6
    assert FallbackLimiters("redis").counter_remaining("quota:k8:20310304", 6) == 0


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads writing at once need PostgreSQL")
def test_threads_charging_at_once_on_postgresql_admit_exactly_the_quota(transactional_db):
    threads, attempts, quota = 8, 25, 50
    start = threading.Barrier(threads)
    results: list[int] = []

    def worker() -> None:
        limiter = FallbackLimiters("memory")  # one per thread, as one per process
        try:
            start.wait(timeout=30)  # every thread races for the first insert of the day
            results.append(admitted(limiter.add_within("quota:race", 1, quota, 3600) for _ in range(attempts)))
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)

    assert len(results) == threads
    assert sum(results) == quota
    assert QuotaUsage.objects.get(counter="quota:race").used == quota


def test_staff_see_the_database_quota_counts_in_the_admin_and_cannot_edit_them(client, rate_limits, admin_user):
    FallbackLimiters("memory").add_within("quota:k9:20310304", 4, 10, 3600)
    row = QuotaUsage.objects.get(counter="quota:k9:20310304")
    client.force_login(admin_user)

    listing = client.get("/admin/throttling/quotausage/?q=k9")

    assert listing.status_code == 200
    assert b"quota:k9:20310304" in listing.content
    assert client.get("/admin/throttling/quotausage/add/").status_code == 403
    assert client.post(f"/admin/throttling/quotausage/{row.pk}/change/", {"used": "0"}).status_code == 403
    assert QuotaUsage.objects.get(pk=row.pk).used == 4
