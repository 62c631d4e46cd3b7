"""The staff overview on the admin's first page: traffic and credits per day, refusals by reason, top callers,
keys expiring soon and the last sync runs, from the rows the tests create (and from real requests counted
by TrafficMiddleware), each part linking to its admin list."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.catalog.models import SyncRun
from apps.keys.choices import Credential
from apps.keys.models import KeyUsageDay, TrafficDay
from apps.keys.services import Actor, key_revoke
from apps.keys.traffic import traffic_buffer
from apps.throttling.models import GlobalRateLimit, RouteCost
from apps.throttling.services import reset_limiters
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def index(client) -> str:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def overview_of(content: str) -> str:
    match = re.search(r'<div id="staff-overview">.*</div>\s*<div id="content-main">', content, re.S)
    assert match, "no staff overview on the page"
    return match.group(0)


def part(content: str, part_id: str) -> str:
    match = re.search(rf'<(div|svg) class="[^"]*"\s*id="{part_id}".*?</\1>', content, re.S) or re.search(
        rf'<div class="module" id="{part_id}">.*?</table>', content, re.S
    )
    assert match, f"no {part_id} on the page"
    return match.group(0)


def svg(content: str, chart_id: str) -> str:
    match = re.search(rf'<svg class="usage-chart" id="{chart_id}".*?</svg>', content, re.S)
    assert match, f"no chart {chart_id}"
    return match.group(0)


def bars(chart: str) -> dict[str, str]:
    return dict(re.findall(r'<g class="usage-bar" data-day="([\d-]+)">\s*<title>([^<]*)</title>', chart))


def cells(row_html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row_html, re.S)]


def traffic_day(days_ago: int, credential: str, requests: int, credits: int, **refusals) -> TrafficDay:
    return TrafficDay.objects.create(
        day=TODAY - timedelta(days=days_ago), credential=credential, requests=requests, credits=credits, **refusals
    )


# --- Traffic and refusals ----------------------------------------------------------


def test_requests_and_credits_per_day_are_charted_by_credential(at_now, admin_client):
    traffic_day(0, Credential.API_KEY, 120, 300)
    traffic_day(0, Credential.CAPABILITY_TOKEN, 30, 90)
    traffic_day(0, Credential.ANONYMOUS, 50, 50)
    traffic_day(3, Credential.TOKEN, 7, 21)
    traffic_day(29, Credential.API_KEY, 1, 1)
    traffic_day(30, Credential.API_KEY, 999, 999)  # a day too old

    content = overview_of(index(admin_client))

    requests, credits = svg(content, "overview-requests"), svg(content, "overview-credits")
    assert bars(requests) == {
        str(TODAY - timedelta(days=29)): f"{TODAY - timedelta(days=29)}: 1 requests (API keys 1)",
        str(TODAY - timedelta(days=3)): f"{TODAY - timedelta(days=3)}: 7 requests (OAuth tokens 7)",
        str(TODAY): f"{TODAY}: 200 requests (API keys 120, capability tokens 30, anonymous 50)",
    }
    assert bars(credits)[str(TODAY)] == f"{TODAY}: 440 credits (API keys 300, capability tokens 90, anonymous 50)"
    today_bar = re.search(rf'data-day="{TODAY}">(.*?)</g>', requests, re.S).group(1)
    assert re.findall(r'<rect class="(\w+)"', today_bar) == ["api_key", "capability_token", "anonymous"]
    assert "requests per day" in requests and "credits per day" in credits
    found = re.findall(r'<tr class="(?:credential|total)[^>]*>.*?</tr>', content)
    rows = {cells(row)[0]: cells(row)[1:] for row in found}
    assert rows == {
        "API keys": ["121", "0", "301"],
        "capability tokens": ["30", "0", "90"],
        "OAuth tokens": ["7", "0", "21"],
        "anonymous": ["50", "0", "50"],
        "all": ["208", "", "462"],
    }
    assert f'href="{reverse("admin:keys_trafficday_changelist")}"' in content


def test_refusals_are_summed_by_reason(at_now, admin_client):
    traffic_day(0, Credential.API_KEY, 100, 80, unauthorized=3, forbidden=2, pool=5, quota=1)
    traffic_day(1, Credential.ANONYMOUS, 40, 30, unauthorized=4, global_bucket=6)
    traffic_day(31, Credential.ANONYMOUS, 40, 30, unauthorized=100)

    refusals = part(overview_of(index(admin_client)), "overview-refusals")

    rows = {cells(row)[0]: cells(row)[1] for row in re.findall(r'<tr class="refusal-[^"]+">.*?</tr>', refusals)}
    assert rows == {
        "401: no valid credentials": "7",
        "403: not allowed": "2",
        "429: credit pool": "5",
        "429: daily quota": "1",
        "429: global bucket": "6",
    }


@pytest.fixture
def limits(settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    reset_limiters()
    return settings


def test_real_requests_are_counted_by_credential_and_refusal(api, admin_client, make_key, limits, introspection):
    """Each refusal provoked for real, through the middleware and the throttles, then flushed and shown."""
    RouteCost.objects.create(route="/regions", cost=2)
    key = make_key(name="counted", credits_per_minute=4)
    quota_key = make_key(name="quota", daily_quota=2)
    restricted = make_key(name="restricted", allowed_endpoints=["/regions"])
    gateway = make_key(name="gateway")
    token = api.post("/keys/validate", {"key": key.value}, format="json", **bearer(gateway)).json()["capability_token"]
    introspection.issue("tok-of-tom", sub="tom")

    statuses = [
        api.get("/regions", **bearer(key)).status_code,  # 2 credits
        api.get("/regions", **bearer(token)).status_code,  # 2 credits, the key's pool is now empty
        api.get("/regions", **bearer(token)).status_code,  # 429 pool
        api.get("/regions", **x_api_key(quota_key)).status_code,  # 2 credits, the quota is spent
        api.get("/regions", **x_api_key(quota_key)).status_code,  # 429 quota
        api.get("/me", **bearer(restricted)).status_code,  # 403
        api.get("/me", **bearer("keeper_not_a_key")).status_code,  # 401
        api.get("/me", HTTP_AUTHORIZATION="Bearer tok-of-tom").status_code,  # 1 credit
        api.get("/regions").status_code,  # anonymous, 2 credits
        api.get("/no-such-endpoint").status_code,  # anonymous 404, 1 credit
    ]
    GlobalRateLimit.objects.filter(pk=GlobalRateLimit.SINGLETON_ID).update(rate_limit=0.001, rate_burst=1)
    reset_limiters()
    statuses += [api.get("/regions").status_code for _ in range(2)]  # the bucket's one token, then 429
    assert admin_client.get(reverse("admin:keys_apikey_changelist")).status_code == 200  # the admin is not counted
    traffic_buffer.flush()

    assert statuses == [200, 200, 429, 200, 429, 403, 401, 200, 200, 404, 200, 429]
    columns = ["requests", "credits", "unauthorized", "forbidden", "pool", "quota", "global_bucket"]
    counted = {row["credential"]: tuple(row[name] for name in columns) for row in TrafficDay.objects.values()}
    assert counted == {
        # validate, the key, the quota key twice (the 429 spends nothing), the 403 and the 401 (charged as anonymous)
        Credential.API_KEY: (6, 1 + 2 + 2 + 0 + 1 + 1, 1, 1, 0, 1, 0),
        Credential.CAPABILITY_TOKEN: (2, 2, 0, 0, 1, 0, 0),
        Credential.TOKEN: (1, 1, 0, 0, 0, 0, 0),
        Credential.ANONYMOUS: (4, 2 + 1 + 2, 0, 0, 0, 0, 1),
    }
    refusals = part(overview_of(index(admin_client)), "overview-refusals")
    assert {cells(row)[0]: cells(row)[1] for row in re.findall(r'<tr class="refusal-[^"]+">.*?</tr>', refusals)} == {
        "401: no valid credentials": "1",
        "403: not allowed": "1",
        "429: credit pool": "1",
        "429: daily quota": "1",
        "429: global bucket": "1",
    }


def test_an_empty_month_says_so(admin_client):
    content = overview_of(index(admin_client))

    assert "No API requests in the last 30 days." in content
    assert "No key spent credits in the last 30 days." in content
    assert "No sync has run yet." in content


# --- Top callers, expiring keys, sync runs ---------------------------------------------


def test_top_callers_are_the_keys_that_spent_the_most_credits(at_now, admin_client, make_key, bob):
    small, big, old = make_key(name="small"), make_key(bob, name="big"), make_key(name="old")
    for key, days_ago, requests, credits in [
        (small, 0, 10, 10),
        (small, 5, 5, 15),
        (big, 1, 20, 400),
        (old, 30, 1000, 5000),  # outside the 30 days
    ]:
        KeyUsageDay.objects.create(
            key=key.api_key, day=TODAY - timedelta(days=days_ago), requests=requests, credits=credits
        )

    content = part(overview_of(index(admin_client)), "overview-top-callers")

    rows = re.findall(r'<tr class="top-caller" data-key="(\w+)">(.*?)</tr>', content, re.S)
    assert [(key_id, cells(row)) for key_id, row in rows] == [
        (big.api_key.key_id, [f"big {big.api_key.masked}", "bob", "20", "400"]),
        (small.api_key.key_id, [f"small {small.api_key.masked}", "alice", "15", "25"]),
    ]
    assert reverse("admin:keys_apikey_change", args=[big.api_key.pk]) in content
    assert reverse("admin:keys_keyusageday_changelist") in content


def test_keys_expiring_soon_are_listed_with_a_link_to_the_filtered_list(at_now, admin_client, make_key):
    soonest = make_key(name="soonest", expires_at=NOW + timedelta(days=1))
    soon = make_key(name="soon", expires_at=NOW + timedelta(days=6))
    make_key(name="later", expires_at=NOW + timedelta(days=10))
    make_key(name="never")
    revoked = make_key(name="revoked", expires_at=NOW + timedelta(days=2))
    key_revoke(revoked.api_key, actor=Actor("test"))

    content = part(overview_of(index(admin_client)), "overview-expiring")

    assert re.findall(r'<tr class="expiring-key" data-key="(\w+)">', content) == [
        soonest.api_key.key_id,
        soon.api_key.key_id,
    ]
    assert "Keys expiring within 7 days (2)" in content
    assert "2031-06-16 12:00 UTC" in content
    assert f'href="{reverse("admin:keys_apikey_changelist")}?expiry=soon"' in content


def test_the_last_sync_runs_show_their_duration_and_change_counts(at_now, admin_client):
    first = SyncRun.objects.create(source="a.db", status="success", finished_at=NOW - timedelta(hours=2))
    SyncRun.objects.filter(pk=first.pk).update(started_at=NOW - timedelta(hours=2, seconds=12))
    second = SyncRun.objects.create(
        source="b.db",
        status="success",
        finished_at=NOW,
        changes={"server_price": {"added": 3, "changed": 40}, "server": {"added": 1, "removed": 2}},
    )
    SyncRun.objects.filter(pk=second.pk).update(started_at=NOW - timedelta(seconds=95))

    content = part(overview_of(index(admin_client)), "overview-syncs")

    rows = re.findall(r'<tr class="sync-run" data-run="(\d+)">(.*?)</tr>', content, re.S)
    assert [(int(run), cells(row)) for run, row in rows] == [
        (second.pk, ["2031-06-15 11:58:25", "success", "1 min 35 s", "46 (added 4, changed 40, removed 2)"]),
        (first.pk, ["2031-06-15 09:59:48", "success", "12.0 s", "—"]),
    ]
    assert reverse("admin:catalog_syncrun_change", args=[second.pk]) in content
    assert reverse("admin:catalog_syncrun_changelist") in content


# --- Who sees what, and how it is drawn --------------------------------------------------


def test_staff_see_only_the_parts_they_may_view(client, make_user):
    nobody = make_user("nobody", is_staff=True)
    key_viewer = make_user("key-viewer", is_staff=True)
    key_viewer.user_permissions.add(Permission.objects.get(codename="view_apikey"))

    client.force_login(nobody)
    assert 'id="staff-overview"' not in index(client)
    client.force_login(key_viewer)
    content = index(client)

    assert 'id="overview-expiring"' in content
    for hidden in ("overview-traffic", "overview-refusals", "overview-top-callers", "overview-syncs"):
        assert f'id="{hidden}"' not in content


def test_staff_who_may_view_only_the_sync_runs_see_only_the_catalogs_section(client, make_user):
    sync_viewer = make_user("sync-viewer", is_staff=True)
    sync_viewer.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client.force_login(sync_viewer)

    overview = overview_of(index(client))

    assert 'id="overview-syncs"' in overview
    assert "No sync has run yet." in overview
    for hidden in ("overview-traffic", "overview-refusals", "overview-top-callers", "overview-expiring"):
        assert f'id="{hidden}"' not in overview


def test_the_overview_is_drawn_on_the_server_with_nothing_from_elsewhere(at_now, admin_client):
    traffic_day(0, Credential.API_KEY, 10, 10)

    content = overview_of(index(admin_client))

    assert "<script" not in content
    assert not re.search(r'(src|href)="(https?:)?//', content)


def test_the_overview_costs_the_same_queries_whatever_the_number_of_keys(
    at_now, admin_client, make_key, django_assert_max_num_queries
):
    for number in range(12):
        key = make_key(name=f"key-{number}", expires_at=NOW + timedelta(days=1 + number % 5))
        KeyUsageDay.objects.create(key=key.api_key, day=TODAY, requests=number + 1, credits=number + 1)
        SyncRun.objects.create(source=f"{number}.db", status="success", finished_at=NOW)
        traffic_day(number, Credential.API_KEY, 1, 1)

    with django_assert_max_num_queries(20):
        content = overview_of(index(admin_client))

    assert len(re.findall(r'class="top-caller"', content)) == 10
    assert len(re.findall(r'class="sync-run"', content)) == 5
