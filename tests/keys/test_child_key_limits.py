"""Keys created by a key (its children, theirs, ...) draw from its credit pool and daily quota too:
a limited key cannot multiply its limits through children.

Every test runs on the memory backend and on Redis (skipped, with the reason, when no Redis answers).
"""

from datetime import UTC, datetime

import pytest
import time_machine

from apps.keys.choices import Scope
from apps.keys.models import MAX_KEY_DEPTH, ApiKey
from apps.keys.policy import Actor
from apps.keys.services import key_update
from apps.throttling.models import RouteCost
from apps.throttling.services import reset_limiters
from tests.keys.helpers import bearer

pytestmark = pytest.mark.django_db

NOON = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)
STAFF = Actor("test-staff")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, settings, no_redis) -> str:
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    settings.RATE_LIMIT_BACKEND = request.param
    reset_limiters()
    # Managing keys costs nothing here, so that only the catalog requests spend the limits.
    RouteCost.objects.create(route="/keys", cost=0)
    return request.param


def create_child(api, parent, name: str, **limits) -> str:
    """A key created with `parent` through the API; returns its value."""
    response = api.post("/keys", {"name": name, **limits}, format="json", **bearer(parent))
    assert response.status_code == 201, response.content
    return response.json()["key"]


def statuses(api, values: list[str], times: int) -> list[int]:
    return [api.get("/regions", **bearer(value)).status_code for value in values for _ in range(times)]


def test_five_children_of_a_key_limited_to_5_a_minute_and_5_a_day_get_5_requests_in_all(api, make_key, backend):
    with time_machine.travel(NOON, tick=False):
        parent = make_key(scope=Scope.WRITE, credits_per_minute=5, daily_quota=5)
        children = [create_child(api, parent, f"child-{n}", credits_per_minute=5, daily_quota=5) for n in range(5)]

        answers = [api.get("/regions", **bearer(child)) for child in children for _ in range(5)]

    assert [answer.status_code for answer in answers].count(200) == 5
    refused = [answer for answer in answers if answer.status_code != 200]
    assert {answer.status_code for answer in refused} == {429}
    assert all(answer.json()["code"] == "throttled" for answer in refused)
    assert all(answer["Content-Type"] == "application/json" for answer in refused)


def test_a_parent_and_its_children_share_the_parents_pool(api, make_key, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=5)
    children = [create_child(api, parent, f"child-{n}", credits_per_minute=5) for n in range(2)]

    by_parent = statuses(api, [parent.value], 2)
    by_children = statuses(api, children, 2)
    refused = api.get("/regions", **bearer(children[0]))

    assert by_parent == [200, 200]
    assert sorted(by_children) == [200, 200, 200, 429]
    assert refused.status_code == 429
    assert refused["X-RateLimit-Limit"] == "5" and refused["X-RateLimit-Remaining"] == "0"
    assert statuses(api, [parent.value], 1) == [429]


def test_the_daily_quota_of_a_key_is_shared_by_all_the_keys_below_it(api, make_key, backend):
    with time_machine.travel(NOON, tick=False):
        parent = make_key(scope=Scope.WRITE, daily_quota=4)
        child = create_child(api, parent, "child", scope="write", daily_quota=4)
        grandchild = create_child(api, child, "grandchild", daily_quota=4)

        first = statuses(api, [child, grandchild], 2)
        refused = api.get("/regions", **bearer(grandchild))
        by_parent = statuses(api, [parent.value], 1)

    assert ApiKey.objects.get(name="grandchild").parent.parent_id == parent.api_key.pk
    assert first == [200, 200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith(
        "The daily quota of a key above this one (shared by the keys it created) of 4 credits used up; "
        "it resets at 2031-03-05T00:00:00Z."
    )
    assert by_parent == [429]


def test_a_child_is_limited_by_its_own_limits_too(api, make_key, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=10, daily_quota=10)
    child = create_child(api, parent, "child", credits_per_minute=2, daily_quota=10)

    assert statuses(api, [child], 3) == [200, 200, 429]
    # Its refusal spent nothing of its parent's pool.
    assert statuses(api, [parent.value], 8) == [200] * 8


def test_a_limit_staff_set_on_the_parent_later_reaches_its_children_at_once(api, make_key, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=50)
    children = [create_child(api, parent, f"child-{n}", credits_per_minute=50) for n in range(3)]

    key_update(ApiKey.objects.get(pk=parent.api_key.pk), actor=STAFF, credits_per_minute=2)

    assert sorted(statuses(api, children, 1)) == [200, 200, 429]


def test_the_limits_of_the_keys_above_apply_with_rate_limiting_switched_off(api, make_key, backend, settings):
    settings.RATE_LIMIT_ENABLED = False
    parent = make_key(scope=Scope.WRITE, credits_per_minute=3)
    children = [create_child(api, parent, f"child-{n}") for n in range(3)]

    assert sorted(statuses(api, children, 2)) == [200, 200, 200, 429, 429, 429]


def test_the_token_of_a_child_draws_from_its_parents_pool(api, make_key, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=3)
    child = create_child(api, parent, "child", credits_per_minute=3)
    gateway = make_key(name="gateway")
    token = api.post("/keys/validate", {"key": child}, format="json", **bearer(gateway)).json()["capability_token"]

    assert statuses(api, [parent.value], 2) == [200, 200]
    assert statuses(api, [token], 2) == [200, 429]


def test_validate_reports_what_a_child_has_left_once_its_parents_limits_count(api, make_key, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=5, daily_quota=20)
    child = create_child(api, parent, "child", credits_per_minute=5, daily_quota=20)
    statuses(api, [parent.value], 3)
    statuses(api, [child], 1)

    gateway = make_key(name="gateway")  # not above the child: its request spends none of the child's limits

    body = api.post("/keys/validate", {"key": child}, format="json", **bearer(gateway)).json()

    assert (body["credits_per_minute"], body["remaining_credits"]) == (5, 1)
    assert (body["daily_quota"], body["remaining_quota"]) == (20, 16)


def test_a_key_with_children_cannot_be_deleted_until_they_are(api, make_key, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=5)
    create_child(api, parent, "child")
    child = ApiKey.objects.get(name="child")
    owner = make_key(name="owners-own", scope=Scope.WRITE)

    refused = api.delete(f"/keys/{parent.api_key.key_id}", **bearer(owner))
    api.delete(f"/keys/{child.key_id}", **bearer(owner))
    deleted = api.delete(f"/keys/{parent.api_key.key_id}", **bearer(owner))

    assert refused.status_code == 409
    assert refused.json()["detail"] == "Keys created with this key draw from its limits ('child'): delete them first."
    assert deleted.status_code == 204


def test_deleting_the_owner_takes_a_key_and_its_children(api, make_key, alice, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=5)
    create_child(api, parent, "child")

    alice.delete()

    assert not ApiKey.objects.exists()


def test_deleting_the_parents_organization_takes_its_children_outside_it_too(api, make_key, organization, backend):
    parent = make_key(scope=Scope.WRITE, credits_per_minute=5, organization=organization)
    child = create_child(api, parent, "personal-child")
    other = make_key(name="unrelated")
    assert ApiKey.objects.get(name="personal-child").organization is None

    organization.delete()

    assert list(ApiKey.objects.values_list("name", flat=True)) == ["unrelated"]
    assert api.get("/regions", **bearer(child)).status_code == 401
    assert api.get("/regions", **bearer(other)).status_code == 200


def test_keys_created_by_keys_nest_at_most_max_key_depth_deep(api, make_key, backend):
    value = make_key(scope=Scope.WRITE).value
    for depth in range(1, MAX_KEY_DEPTH + 1):
        value = create_child(api, value, f"level-{depth}", scope="write")

    refused = api.post("/keys", {"name": "too-deep"}, format="json", **bearer(value))

    assert refused.status_code == 409
    assert f"at most {MAX_KEY_DEPTH} deep" in refused.json()["detail"]


def test_the_admin_shows_a_keys_parent(api, admin_client, make_key, backend):
    parent = make_key(name="the-parent", scope=Scope.WRITE, credits_per_minute=5)
    create_child(api, parent, "child")
    child = ApiKey.objects.get(name="child")

    page = admin_client.get(f"/admin/keys/apikey/{child.pk}/change/").content.decode()

    assert "Parent" in page and f"the-parent ({parent.api_key.masked})" in page
