"""Organization memberships granted by the identity provider's claim follow the claim, down as well as up.

Tokens are checked at the fake identity provider on 127.0.0.1; memberships granted here (staff, the
admin) are the organization's own and stay whatever the claim says.
"""

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership, Organization
from tests.fakes import bearer

pytestmark = pytest.mark.django_db

ABSENT = object()
WITHDRAWN = {
    "absent": ABSENT,
    "empty list": [],
    "empty map": {},
    "empty string": "",
    "null": None,
    "another organization": {"globex": "admin"},
    "an unknown organization": ["nowhere"],
}


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(key["name"] for key in response.json())


def ann_token(introspection, token: str, claim=ABSENT) -> str:
    claims = {} if claim is ABSENT else {"organizations": claim}
    return introspection.issue(token, sub="ann", **claims)


def memberships(username: str) -> list[tuple[str, str, str]]:
    return sorted(
        Membership.objects.filter(user__username=username).values_list("organization__slug", "role", "source")
    )


@pytest.fixture
def org_key(make_key, bob, organization):
    Organization.objects.create(slug="globex", name="Globex")
    return make_key(bob, name="bobs-org-key", organization=organization)


@pytest.mark.parametrize("claim", WITHDRAWN.values(), ids=WITHDRAWN.keys())
def test_an_admin_by_claim_loses_the_organization_when_the_claim_no_longer_grants_it(
    api, introspection, org_key, claim
):
    granted = ann_token(introspection, "tok-granted", {"acme": "admin"})
    assert names(api.get("/keys", **bearer(granted))) == ["bobs-org-key"]

    withdrawn = ann_token(introspection, "tok-withdrawn", claim)
    listed = api.get("/keys", **bearer(withdrawn))
    created = api.post("/keys", {"name": "anns-org-key", "organization": "acme"}, format="json", **bearer(withdrawn))
    rotated = api.post(f"/keys/{org_key.api_key.key_id}/rotate", {}, format="json", **bearer(withdrawn))

    assert names(listed) == []
    assert created.status_code == 403, created.content
    assert rotated.status_code == 404
    assert "key" not in rotated.json()
    assert [m for m in memberships("idp:ann") if m[0] == "acme"] == []


def test_the_users_own_keys_lose_the_organization_with_the_claim(api, introspection, org_key):
    granted = ann_token(introspection, "tok-granted", {"acme": "admin"})
    anns_key = api.post("/keys", {"name": "anns-key", "scope": "write"}, format="json", **bearer(granted)).json()["key"]
    assert names(api.get("/keys", **bearer(anns_key))) == ["anns-key", "bobs-org-key"]

    names(api.get("/keys", **bearer(ann_token(introspection, "tok-withdrawn"))))

    assert names(api.get("/keys", **bearer(anns_key))) == ["anns-key"]
    assert api.post(f"/keys/{org_key.api_key.key_id}/rotate", {}, format="json", **bearer(anns_key)).status_code == 404


def test_an_admin_by_claim_is_a_plain_member_once_the_claim_says_member(api, introspection, org_key):
    names(api.get("/keys", **bearer(ann_token(introspection, "tok-admin", {"acme": "admin"}))))

    member = ann_token(introspection, "tok-member", ["acme"])

    assert names(api.get("/keys", **bearer(member))) == []
    assert memberships("idp:ann") == [("acme", "member", "claim")]


def test_a_local_grant_stays_whatever_the_claim_says(api, introspection, org_key, make_user, organization, join):
    join(make_user("idp:ann"), organization, Membership.Role.ADMIN)

    for token, claim in [("tok-none", ABSENT), ("tok-member", ["acme"]), ("tok-empty", [])]:
        assert names(api.get("/keys", **bearer(ann_token(introspection, token, claim)))) == ["bobs-org-key"]
    assert [m for m in memberships("idp:ann") if m[2] == "local"] == [("acme", "admin", "local")]


def test_a_claim_raises_a_local_member_and_withdrawing_it_leaves_the_local_member(
    api, introspection, org_key, make_user, organization, join
):
    join(make_user("idp:ann"), organization, Membership.Role.MEMBER)

    raised = names(api.get("/keys", **bearer(ann_token(introspection, "tok-admin", {"acme": "admin"}))))
    lowered = names(api.get("/keys", **bearer(ann_token(introspection, "tok-none"))))

    assert (raised, lowered) == (["bobs-org-key"], [])
    assert memberships("idp:ann") == [("acme", "member", "local")]


def test_a_withdrawal_reaches_the_same_token_when_its_cached_verdict_expires(api, introspection, org_key, settings):
    settings.AUTH_TOKEN_CACHE_L1_TTL_SECONDS = 60
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        token = ann_token(introspection, "tok-ann", {"acme": "admin"})
        assert names(api.get("/keys", **bearer(token))) == ["bobs-org-key"]
        ann_token(introspection, token)  # the provider stops granting acme to this very token

        clock.shift(30)
        cached = names(api.get("/keys", **bearer(token)))
        clock.shift(31)
        expired = names(api.get("/keys", **bearer(token)))

    assert (cached, expired) == (["bobs-org-key"], [])
    assert introspection.introspected == [token, token]


def test_an_unchanged_claim_writes_nothing(api, introspection, org_key):
    token = ann_token(introspection, "tok-ann", {"acme": "admin", "globex": "member"})
    names(api.get("/keys", **bearer(token)))

    with CaptureQueriesContext(connection) as queries:
        names(api.get("/keys", **bearer(token)))

    table = Membership._meta.db_table
    writes = [q["sql"] for q in queries if table in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert memberships("idp:ann") == [("acme", "admin", "claim"), ("globex", "member", "claim")]
