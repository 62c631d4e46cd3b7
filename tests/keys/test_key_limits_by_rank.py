"""Nobody lifts a limit a higher rank set, and nobody hands out more than they have (through the API)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.keys.choices import KeyStatus, Scope
from apps.keys.models import ApiKey
from tests.keys.helpers import bearer

pytestmark = pytest.mark.django_db

LIMITS = {
    "credits_per_minute": 5,
    "daily_quota": 30,
    "allowed_ips": ["127.0.0.0/8"],
    "allowed_endpoints": ["/regions", "/keys*"],
}


@pytest.fixture
def boss(make_key, staff):
    return make_key(staff, name="boss", scope=Scope.ADMIN)


@pytest.fixture
def limited(api, make_key, boss):
    """alice's write key, limited by an admin."""
    issued = make_key(name="limited", scope=Scope.WRITE)
    response = api.patch(f"/keys/{issued.api_key.key_id}", LIMITS, format="json", **bearer(boss))
    assert response.status_code == 200, response.content
    return issued


def patch(api, key_id: str, body: dict, credential):
    return api.patch(f"/keys/{key_id}", body, format="json", **bearer(credential))


@pytest.mark.parametrize(
    "body",
    [
        {"credits_per_minute": 1_000_000},
        {"credits_per_minute": None},
        {"daily_quota": None},
        {"allowed_ips": []},
        {"allowed_endpoints": []},
    ],
    ids=["more-credits", "no-pool", "no-quota", "any-ip", "any-endpoint"],
)
def test_a_write_key_cannot_lift_the_limits_an_admin_put_on_it(api, limited, body):
    response = patch(api, limited.api_key.key_id, body, limited)

    assert response.status_code == 403
    assert "set by staff; only staff can change it" in response.json()["detail"]
    key = ApiKey.objects.get(pk=limited.api_key.pk)
    assert {name: getattr(key, name) for name in LIMITS} == LIMITS


def test_the_owner_signed_in_cannot_lift_them_either_but_staff_can(api, limited, alice, boss):
    api.force_login(alice)
    assert patch(api, limited.api_key.key_id, {"credits_per_minute": 50}, limited).status_code == 403
    api.logout()

    assert patch(api, limited.api_key.key_id, {"credits_per_minute": 50}, boss).status_code == 200


def test_a_restricted_key_cannot_mint_a_bigger_key(api, limited):
    response = api.post("/keys", {"name": "big", "credits_per_minute": 1_000_000}, format="json", **bearer(limited))

    assert response.status_code == 403
    assert response.json()["detail"] == "You cannot grant 1000000 credits per minute: your own pool is 5."
    assert not ApiKey.objects.filter(name="big").exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"daily_quota": 31}, "You cannot grant a daily quota of 31: yours is 30."),
        ({"allowed_endpoints": ["/servers"]}, "You cannot grant /servers: it is outside your own endpoints."),
        ({"allowed_endpoints": ["/regions*"]}, "You cannot grant /regions*: it is outside your own endpoints."),
        ({"allowed_ips": ["10.0.0.0/8"]}, "You cannot grant 10.0.0.0/8: it is outside your own IPs."),
        ({"allowed_ips": ["0.0.0.0/0"]}, "You cannot grant 0.0.0.0/0: it is outside your own IPs."),
        ({"scope": "admin"}, "You cannot grant the admin scope (yours is write)."),
    ],
)
def test_a_restricted_keys_children_are_at_least_as_restricted(api, limited, body, detail):
    response = api.post("/keys", {"name": "child", **body}, format="json", **bearer(limited))

    assert response.status_code == 403
    assert response.json()["detail"] == detail


def test_a_child_inherits_the_limits_its_request_leaves_out_and_is_refused_where_the_parent_is(api, limited):
    created = api.post("/keys", {"name": "child"}, format="json", **bearer(limited))
    assert created.status_code == 201, created.content
    body = created.json()
    assert {name: body[name] for name in LIMITS} == LIMITS

    child = body["key"]
    assert api.get("/regions", **bearer(child)).status_code == 200
    assert api.get("/servers", **bearer(limited)).status_code == 403
    assert api.get("/servers", **bearer(child)).status_code == 403


def test_a_narrower_child_is_fine(api, limited):
    body = {"name": "child", "credits_per_minute": 2, "daily_quota": 10, "allowed_ips": ["127.0.0.1"]}

    response = api.post("/keys", body, format="json", **bearer(limited))

    assert response.status_code == 201, response.content
    assert response.json()["allowed_ips"] == ["127.0.0.1/32"]


def test_a_token_cannot_mint_a_key_with_more_credits_than_its_identity_provider_gives(api, introspection):
    token = introspection.issue("tok-tom", sub="tom", api_credits_per_minute=200)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    refused = api.post("/keys", {"name": "big", "credits_per_minute": 1_000_000}, format="json", **headers)
    fitting = api.post("/keys", {"name": "fits", "credits_per_minute": 200}, format="json", **headers)

    assert refused.status_code == 403
    assert refused.json()["detail"] == "You cannot grant 1000000 credits per minute: your own pool is 200."
    assert fitting.status_code == 201, fitting.content


def test_an_expiring_key_cannot_mint_a_key_that_outlives_it(api, make_key):
    parent = make_key(name="temp", scope=Scope.WRITE, expires_at=timezone.now() + timedelta(days=1))

    later = api.post("/keys", {"name": "later", "expires_in_days": 30}, format="json", **bearer(parent))
    inherited = api.post("/keys", {"name": "inherits"}, format="json", **bearer(parent))

    assert later.status_code == 403
    assert inherited.status_code == 201
    assert inherited.json()["expires_at"] == parent.api_key.expires_at.isoformat().replace("+00:00", "Z")


# --- Status and expiry ---------------------------------------------------------------


def test_an_owner_cannot_reactivate_a_key_an_admin_suspended(api, make_key, boss):
    mine = make_key(name="mine", scope=Scope.WRITE)
    other = make_key(name="other", scope=Scope.WRITE)
    assert patch(api, other.api_key.key_id, {"status": "suspended"}, boss).status_code == 200

    response = patch(api, other.api_key.key_id, {"status": "active"}, mine)

    assert response.status_code == 403
    assert response.json()["detail"] == "its suspension of this key was set by staff; only staff can change it."
    assert ApiKey.objects.get(pk=other.api_key.pk).status == KeyStatus.SUSPENDED
    assert api.get("/regions", **bearer(other)).status_code == 401
    # Nor delete it away while it is suspended.
    assert api.delete(f"/keys/{other.api_key.key_id}", **bearer(mine)).status_code == 403


def test_an_owner_lifts_a_suspension_of_their_own(api, make_key):
    mine = make_key(name="mine", scope=Scope.WRITE)
    other = make_key(name="other")
    assert patch(api, other.api_key.key_id, {"status": "suspended"}, mine).status_code == 200

    assert patch(api, other.api_key.key_id, {"status": "active"}, mine).status_code == 200


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_an_expired_key_stays_expired(api, make_key, boss, who):
    mine = make_key(name="mine", scope=Scope.WRITE)
    expiring = make_key(name="expiring", expires_at=timezone.now() + timedelta(hours=1))
    credential = mine if who == "owner" else boss

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        cleared = patch(api, expiring.api_key.key_id, {"expires_at": None}, credential)
        extended = patch(api, expiring.api_key.key_id, {"expires_in_days": 30}, credential)
        used = api.get("/regions", **bearer(expiring))

    assert (cleared.status_code, extended.status_code, used.status_code) == (409, 409, 401)
    assert "stays expired" in cleared.json()["detail"]


def test_an_owner_cannot_extend_an_expiry_an_admin_set(api, make_key, boss):
    mine = make_key(name="mine", scope=Scope.WRITE)
    other = make_key(name="other")
    assert patch(api, other.api_key.key_id, {"expires_in_days": 2}, boss).status_code == 200

    assert patch(api, other.api_key.key_id, {"expires_at": None}, mine).status_code == 403
    assert patch(api, other.api_key.key_id, {"expires_in_days": 300}, mine).status_code == 403
