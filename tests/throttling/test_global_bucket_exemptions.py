"""Staff callers and /config are never refused by the global bucket, so a bucket set too small cannot lock staff out.

They take no token from it either (apps/throttling/throttles.py says why), but still pay their credits.
"""

import pytest
from rest_framework.test import APIClient

from apps.keys.choices import Scope
from apps.keys.services import Actor, key_create
from tests.fakes import bearer
from tests.throttling.conftest import set_global_limit


@pytest.fixture
def staff_token(introspection) -> str:
    return introspection.issue("tok-staff", sub="ops", groups=["keeper-staff"])


@pytest.fixture
def user_token(introspection) -> str:
    return introspection.issue("tok-user", sub="alice", groups=["users"])


@pytest.fixture
def admin_key(django_user_model, rate_limits) -> str:
    owner = django_user_model.objects.create_user("keyholder", password=None)
    return key_create(owner=owner, name="ops", actor=Actor("test-setup"), scope=Scope.ADMIN).value


@pytest.fixture
def staff_session(api, django_user_model, rate_limits):
    api.force_login(django_user_model.objects.create_user("staffer", password="pw", is_staff=True))
    return api


def drain_the_bucket(api) -> None:
    """Anonymous traffic takes the bucket's only token; the next anonymous request is refused for ~1000 s."""
    assert [api.get("/regions", REMOTE_ADDR="192.0.2.9").status_code for _ in range(2)] == [200, 429]


def test_a_bucket_set_too_small_never_locks_staff_out_of_config(api, backend, staff_token):
    first = api.patch("/config", {"rate_limit": 0.001, "rate_burst": 1}, format="json", **bearer(staff_token))
    drain_the_bucket(api)

    # Refilled within a microsecond, so the next anonymous request shows the undo took effect.
    undo = api.patch("/config", {"rate_limit": 1_000_000, "rate_burst": 20}, format="json", **bearer(staff_token))

    assert first.status_code == 200
    assert undo.status_code == 200, undo.content
    assert (undo.json()["rate_limit"], undo.json()["rate_burst"]) == (1_000_000.0, 20)
    assert api.get("/regions", REMOTE_ADDR="192.0.2.9").status_code == 200


def test_an_admin_scoped_key_can_undo_a_bucket_set_too_small(api, backend, admin_key):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    drain_the_bucket(api)

    response = api.patch("/config", {"api": {"rate_limit": 50}}, format="json", HTTP_X_API_KEY=admin_key)

    assert response.status_code == 200, response.content
    assert response.json()["rate_limit"] == 50.0


def test_a_staff_session_reads_config_while_the_bucket_is_empty(staff_session, backend):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    drain_the_bucket(APIClient())

    assert staff_session.get("/config").status_code == 200


def test_config_is_not_refused_by_the_bucket_even_for_callers_who_are_not_staff(api, backend, user_token):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    drain_the_bucket(api)

    response = api.get("/config", **bearer(user_token))

    # The permission answers, not the bucket: a 403, never a 429.
    assert response.status_code == 403


@pytest.fixture(params=["staff token", "admin-scoped key"])
def staff_credentials(request, introspection) -> dict[str, str]:
    """Test-client keyword arguments of a staff caller: a staff token, or an admin-scoped API key."""
    if request.param == "staff token":
        return bearer(request.getfixturevalue("staff_token"))
    return {"HTTP_X_API_KEY": request.getfixturevalue("admin_key")}


def test_staff_callers_are_served_on_every_endpoint_while_the_bucket_is_empty(api, backend, staff_credentials):
    set_global_limit(rate_limit=0.001, rate_burst=1)
    drain_the_bucket(api)

    assert [api.get("/regions", **staff_credentials).status_code for _ in range(3)] == [200, 200, 200]


def test_staff_requests_take_no_token_from_the_bucket(api, backend, staff_credentials):
    set_global_limit(rate_limit=0.001, rate_burst=2)

    staff = [api.get("/regions", **staff_credentials).status_code for _ in range(5)]
    anonymous = [api.get("/regions").status_code for _ in range(3)]

    assert staff == [200] * 5
    assert anonymous == [200, 200, 429]


def test_staff_still_pay_credits_from_their_own_pool(api, backend, rate_limits, staff_token):
    rate_limits.RATE_LIMIT_CREDITS_PER_MINUTE = 2
    set_global_limit(rate_limit=0.001, rate_burst=1)

    statuses = [api.get("/regions", **bearer(staff_token)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
