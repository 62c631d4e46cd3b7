"""A token is staff when KEEPER_STAFF_CLAIM (default "groups") holds KEEPER_STAFF_GROUP (default "keeper-staff")."""

import pytest

from tests.fakes import bearer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("claims", "is_staff"),
    [
        ({"groups": ["users", "keeper-staff"]}, True),
        ({"groups": "users keeper-staff"}, True),
        ({"groups": True}, True),
        ({"groups": ["users"]}, False),
        ({"groups": ["keeper-staff-readonly"]}, False),
        ({"groups": "keeper-staffers"}, False),
        ({"roles": ["keeper-staff"]}, False),
        ({}, False),
    ],
    ids=["list", "space-separated", "true", "other-group", "longer-name", "prefix", "other-claim", "no-claim"],
)
def test_a_token_is_staff_only_when_its_groups_claim_holds_keeper_staff(api, introspection, claims, is_staff):
    token = introspection.issue("tok-someone", **claims)

    assert api.get("/me", **bearer(token)).json()["is_staff"] is is_staff


def test_the_staff_claim_and_group_are_configurable(api, introspection, settings):
    settings.KEEPER_STAFF_CLAIM = "roles"
    settings.KEEPER_STAFF_GROUP = "api-admin"
    staff = introspection.issue("tok-admin", roles=["api-admin"])
    not_staff = introspection.issue("tok-grouped", groups=["keeper-staff"])

    assert api.get("/me", **bearer(staff)).json()["is_staff"] is True
    assert api.get("/me", **bearer(not_staff)).json()["is_staff"] is False


def test_extra_fields_can_grant_staff(api, introspection, settings):
    settings.AUTH_TOKEN_EXTRA_FIELDS_CEL = (
        '{"groups": claims.email.endsWith("@ops.example.com") ? ["keeper-staff"] : []}'
    )
    token = introspection.issue("tok-ops", email="eve@ops.example.com")

    assert api.get("/me", **bearer(token)).json()["is_staff"] is True
