"""A deactivated user (`is_active=False`): their keys and their keys' capability tokens are refused,
and they create no keys, whatever credential they present."""

import pytest

from apps.accounts.identity import idp_username
from apps.keys.choices import Scope
from apps.keys.models import ApiKey
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

DEACTIVATED = "The owner of this API key is deactivated."


def deactivate(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize("send", [bearer, x_api_key])
def test_the_keys_of_a_deactivated_user_are_refused_with_a_401_saying_why(api, alice, make_key, send):
    issued = make_key(scope=Scope.WRITE)
    assert api.get("/regions", **send(issued)).status_code == 200

    deactivate(alice)
    answers = [api.get("/regions", **send(issued)), api.get("/keys", **send(issued))]

    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {"detail": DEACTIVATED, "code": "invalid_api_key"}


def test_a_deactivated_users_key_is_reported_invalid_by_validate(api, alice, bob, make_key):
    issued = make_key()
    checker = make_key(bob, name="bobs-gateway", scope=Scope.ADMIN)
    deactivate(alice)

    body = api.post("/keys/validate", {"key": issued.value}, format="json", **bearer(checker)).json()

    assert (body["valid"], body["reason"], body["capability_token"]) == (False, DEACTIVATED, None)


def test_the_capability_tokens_of_a_deactivated_users_keys_are_refused(api, alice, bob, make_key):
    issued = make_key()
    checker = make_key(bob, name="bobs-gateway", scope=Scope.ADMIN)
    answer = api.post("/keys/validate", {"key": issued.value}, format="json", **bearer(checker)).json()
    token = answer["capability_token"]
    # Verified once, so the process has the token (and its key) in its cache.
    assert api.get("/regions", **bearer(token)).status_code == 200

    deactivate(alice)
    refused = api.get("/regions", **bearer(token))

    assert refused.status_code == 401
    assert refused.json() == {"detail": DEACTIVATED, "code": "invalid_capability_token"}


def test_a_reactivated_users_keys_work_again(api, alice, make_key):
    issued = make_key()
    deactivate(alice)
    assert api.get("/regions", **bearer(issued)).status_code == 401

    alice.is_active = True
    alice.save(update_fields=["is_active"])

    assert api.get("/regions", **bearer(issued)).status_code == 200


def test_an_identity_provider_user_deactivated_here_creates_no_keys_with_their_token(
    api, introspection, django_user_model
):
    token = introspection.issue("tok-of-dora", sub="dora")
    assert api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200  # their local user now exists
    deactivate(django_user_model.objects.get(username=idp_username("dora")))

    created = api.post("/keys", {"name": "new"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    listed = api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert created.status_code == 403
    assert created.json()["detail"] == "Your account is deactivated: it cannot manage API keys."
    assert listed.status_code == 403
    assert not ApiKey.objects.filter(name="new").exists()


def test_staff_cannot_create_a_key_for_a_deactivated_user(api, alice, staff, make_key):
    staff_key = make_key(staff, name="staff-tool", scope=Scope.ADMIN)
    deactivate(alice)

    created = api.post("/keys", {"name": "for-alice", "owner": "alice"}, format="json", **bearer(staff_key))

    assert created.status_code == 403
    assert created.json()["detail"] == "alice is deactivated: no API key can be created for them."
    assert not ApiKey.objects.filter(owner=alice).exists()


def test_a_deactivated_users_session_manages_no_keys(api, alice, make_key, settings):
    make_key()
    api.force_login(alice)
    assert api.get("/keys").status_code == 200
    deactivate(alice)

    answer = api.post("/keys", {"name": "new"}, format="json")

    assert answer.status_code in (401, 403)
    assert "detail" in answer.json()
    assert ApiKey.objects.filter(owner=alice).count() == 1
