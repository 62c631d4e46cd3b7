"""The management API (/keys): create, list, read, change, delete, rotate, revoke; who may do what."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership
from apps.keys import secrets as key_secrets
from apps.keys.choices import AuditAction, KeySource, KeyStatus, Scope
from apps.keys.models import ApiKey, AuditEvent
from apps.keys.services import Actor, key_revoke, key_suspend
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

KEY = re.compile(r"^keeper_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$")
NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def signed_in(api, settings):
    """Sign the API client in (session); the session outlives the years the tests travel ahead."""
    settings.SESSION_COOKIE_AGE = 20 * 365 * 24 * 3600

    def sign_in(user):
        api.force_login(user)
        return api

    return sign_in


@pytest.fixture
def as_alice(signed_in, alice):
    """alice signed in: a plain user, scope write over her own keys."""
    return signed_in(alice)


@pytest.fixture
def as_staff(signed_in, staff):
    """A staff user signed in: scope admin over everyone's keys."""
    return signed_in(staff)


def create(api, **body):
    return api.post("/keys", body, format="json")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [key["id"] for key in response.json()]


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [key["name"] for key in response.json()]


# --- Create ---------------------------------------------------------------------


def test_creating_a_key_answers_201_with_the_full_key_once(as_alice):
    response = create(as_alice, name="ci", description="for CI", scope="write")

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert KEY.match(body["key"])
    assert body["id"] == body["key"][len("keeper_") : len("keeper_") + 12]
    assert body["masked"] == f"keeper_{body['id']}…{body['key'][-4:]}"
    assert {k: body[k] for k in ("name", "description", "scope", "owner", "status", "source", "expires_at")} == {
        "name": "ci",
        "description": "for CI",
        "scope": "write",
        "owner": "alice",
        "status": "active",
        "source": "generated",
        "expires_at": None,
    }


def test_the_full_key_is_never_shown_again(as_alice):
    value = create(as_alice, name="ci").json()["key"]
    key_id = value[7:19]

    shown = [as_alice.get("/keys"), as_alice.get(f"/keys/{key_id}"), as_alice.get(f"/keys?search={key_id}")]

    for response in shown:
        assert response.status_code == 200
        assert value not in response.content.decode()
        assert value[20:52] not in response.content.decode()
    assert "key" not in shown[1].json()
    assert shown[1].json()["masked"] == f"keeper_{key_id}…{value[-4:]}"


def test_the_created_key_works_at_once(as_alice, api):
    value = create(as_alice, name="ci").json()["key"]
    api.logout()

    assert api.get("/me", **bearer(value)).json()["auth_method"] == "api_key"


def test_creating_is_audited_with_who_when_where_and_the_settings(as_alice):
    with time_machine.travel(NOW, tick=False):
        body = create(as_alice, name="ci", scope="write", allowed_ips=["10.0.0.0/8"]).json()

    event = AuditEvent.objects.get(action=AuditAction.CREATE)
    assert event.key.key_id == body["id"]
    assert (event.actor, event.ip, event.at, event.owner_username) == ("session:alice", "127.0.0.1", NOW, "alice")
    assert event.key_ref == body["masked"]
    assert event.changes["scope"] == [None, "write"]
    assert event.changes["allowed_ips"] == [None, ["10.0.0.0/8"]]


@pytest.mark.parametrize(
    ("expiry", "expected"),
    [
        pytest.param({"expires_in": 3600}, NOW + timedelta(seconds=3600), id="expires_in-seconds"),
        pytest.param({"expires_in_days": 30}, NOW + timedelta(days=30), id="expires_in_days"),
        pytest.param({"expires_at": "2031-06-01T00:00:00Z"}, datetime(2031, 6, 1, tzinfo=UTC), id="expires_at"),
        pytest.param({}, None, id="none-means-never"),
    ],
)
def test_expiry_can_be_given_in_seconds_in_days_or_as_a_time(as_alice, expiry, expected):
    with time_machine.travel(NOW, tick=False):
        response = create(as_alice, name="temp", **expiry)

    assert response.status_code == 201, response.content
    assert ApiKey.objects.get(key_id=response.json()["id"]).expires_at == expected


def test_a_key_can_be_imported_and_is_stored_with_scrypt(as_alice, api):
    response = create(as_alice, name="legacy", key="my-old-key-0123456789")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "my-old-key-0123456789"
    assert (body["source"], body["masked"]) == (KeySource.IMPORTED, "imported…6789")
    assert ApiKey.objects.get(key_id=body["id"]).secret_hash.startswith("scrypt$")
    api.logout()
    assert api.get("/me", **x_api_key("my-old-key-0123456789")).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("too-short", id="shorter-than-16"),
        pytest.param(key_secrets.new_key("AAAAAAAAAAAA"), id="a-keeper-key"),
    ],
)
def test_an_imported_key_must_be_long_and_not_look_generated(as_alice, value):
    response = create(as_alice, name="legacy", key=value)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["key"]
    assert not ApiKey.objects.exists()


def test_the_name_is_unique_per_owner(as_alice, make_key, bob):
    make_key(bob, name="ci")
    first = create(as_alice, name="ci")

    second = create(as_alice, name="ci")

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json() == {"detail": "You already have a key named 'ci'.", "code": "conflict"}
    assert ApiKey.objects.filter(name="ci").count() == 2


def test_renaming_onto_another_keys_name_is_a_409(as_alice, make_key):
    make_key(name="one")
    two = make_key(name="two")

    response = as_alice.patch(f"/keys/{two.api_key.key_id}", {"name": "one"}, format="json")

    assert response.status_code == 409
    assert response.json()["detail"] == "Another key of this owner has that name."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"allowed_ips": ["10.0.0.0/33"]}, "allowed_ips", id="bad-cidr"),
        pytest.param({"allowed_ips": ["not-an-ip"]}, "allowed_ips", id="bad-ip"),
        pytest.param({"allowed_endpoints": ["servers"]}, "allowed_endpoints", id="pattern-without-slash"),
        pytest.param({"blocked_endpoints": ["table/*"]}, "blocked_endpoints", id="blocked-pattern-without-slash"),
        pytest.param({"expires_in": 3600, "expires_in_days": 1}, "expires_in_days", id="two-expiry-forms"),
        pytest.param({"expires_in_days": 1, "expires_at": "2031-06-01T00:00:00Z"}, "expires_at", id="days-and-time"),
        pytest.param({"expires_in": 10}, "expires_in", id="expires-in-under-a-minute"),
        pytest.param({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", id="expires-in-the-past"),
        pytest.param({"scope": "root"}, "scope", id="unknown-scope"),
        pytest.param({"credits_per_minute": 0}, "credits_per_minute", id="zero-credits"),
        pytest.param({"daily_quota": -1}, "daily_quota", id="negative-quota"),
        pytest.param({"colour": "blue"}, "colour", id="unknown-field"),
    ],
)
def test_invalid_settings_are_a_400_naming_the_field(as_alice, body, field):
    with time_machine.travel(NOW, tick=False):
        response = create(as_alice, name="bad", **body)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [field]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"allowed_ips": ["300.1.1.1"]}, "allowed_ips", id="bad-ip"),
        pytest.param({"allowed_endpoints": ["*"]}, "allowed_endpoints", id="bad-pattern"),
        pytest.param({"expires_in": 3600, "expires_at": "2031-06-01T00:00:00Z"}, "expires_at", id="two-expiry-forms"),
        pytest.param({"owner": "bob"}, "owner", id="owner-not-editable"),
        pytest.param({"status": "revoked"}, "status", id="revoke-is-its-own-action"),
    ],
)
def test_invalid_changes_are_a_400_naming_the_field(as_alice, make_key, body, field):
    issued = make_key()

    response = as_alice.patch(f"/keys/{issued.api_key.key_id}", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]


# --- List -----------------------------------------------------------------------


@pytest.fixture
def five_keys(make_key):
    """alice's keys a..e, created a minute apart (e newest)."""
    keys = {}
    for minute, name in enumerate("abcde"):
        with time_machine.travel(NOW + timedelta(minutes=minute), tick=False):
            keys[name] = make_key(name=f"key-{name}", description=f"the {name} key")
    return keys


def test_the_list_is_newest_first_and_paginated_with_limit_and_page(as_alice, five_keys):
    assert names(as_alice.get("/keys")) == ["key-e", "key-d", "key-c", "key-b", "key-a"]
    assert names(as_alice.get("/keys?limit=2")) == ["key-e", "key-d"]
    assert names(as_alice.get("/keys?limit=2&page=3")) == ["key-a"]
    assert names(as_alice.get("/keys?limit=2&page=4")) == []
    assert len(names(as_alice.get("/keys?limit=-1"))) == 5


def test_the_list_reports_the_total_on_request(as_alice, five_keys):
    response = as_alice.get("/keys?limit=2&add_total_count_header=true")

    assert response["X-Total-Count"] == "5"


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "page=0", "status=lost", "order_by=secret_hash", "colour=1"])
def test_bad_list_parameters_are_a_400_naming_them(as_alice, query):
    response = as_alice.get(f"/keys?{query}")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [query.split("=")[0]]


def test_search_matches_the_name_the_description_or_the_key_prefix(as_alice, five_keys):
    key_id = five_keys["c"].api_key.key_id

    assert names(as_alice.get("/keys?search=KEY-B")) == ["key-b"]
    assert names(as_alice.get("/keys?search=the d")) == ["key-d"]
    assert names(as_alice.get(f"/keys?search={key_id}")) == ["key-c"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("name", ["key-a", "key-b", "key-c", "key-d", "key-e"]),
        ("-name", ["key-e", "key-d", "key-c", "key-b", "key-a"]),
        ("created_at", ["key-a", "key-b", "key-c", "key-d", "key-e"]),
        ("-created_at", ["key-e", "key-d", "key-c", "key-b", "key-a"]),
    ],
)
def test_order_by_sorts_the_list(as_alice, five_keys, order, expected):
    assert names(as_alice.get(f"/keys?order_by={order}")) == expected


def test_order_by_scope_follows_the_stored_value(as_alice, make_key):
    make_key(name="w", scope=Scope.WRITE)
    make_key(name="r", scope=Scope.READ)

    assert names(as_alice.get("/keys?order_by=scope")) == ["r", "w"]


def test_the_status_filter_knows_active_suspended_revoked_and_expired(as_alice, make_key):
    with time_machine.travel(NOW, tick=False) as clock:
        make_key(name="fine")
        key_suspend(make_key(name="paused").api_key, actor=Actor("test"))
        key_revoke(make_key(name="gone").api_key, actor=Actor("test"))
        make_key(name="old", expires_at=NOW + timedelta(minutes=1))
        clock.move_to(NOW + timedelta(minutes=2))

        by_status = {status: names(as_alice.get(f"/keys?status={status}")) for status in KeyStatus.values}
        several = names(as_alice.get("/keys?status=active&status=expired&order_by=name"))

    assert by_status == {"active": ["fine"], "suspended": ["paused"], "expired": ["old"], "revoked": ["gone"]}
    assert several == ["fine", "old"]


def test_listing_takes_the_same_few_queries_for_two_keys_or_twenty(api, make_key, organization, join, alice):
    join(alice, organization, Membership.Role.ADMIN)
    lister = make_key(name="lister")
    make_key(name="in-org", organization=organization)
    api.get("/regions", **bearer(lister))  # last use and route costs recorded before counting
    with CaptureQueriesContext(connection) as few:
        assert len(api.get("/keys?limit=-1", **bearer(lister)).json()) == 2
    for _ in range(18):
        make_key(organization=organization)
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/keys?limit=-1", **bearer(lister)).json()) == 20

    assert len(many) == len(few)


def test_listing_keys_takes_two_queries(api, make_key, django_assert_num_queries):
    lister = make_key(name="lister")
    for _ in range(5):
        make_key()
    api.get("/regions", **bearer(lister))  # last_used_at written now, not during the measured call

    # The caller's key (with its owner and organization), then the page (organizations joined).
    with django_assert_num_queries(2):
        assert api.get("/keys", **bearer(lister)).status_code == 200


# --- Read, change, delete -------------------------------------------------------


def test_a_key_is_read_by_its_id(as_alice, make_key):
    issued = make_key(name="ci", scope=Scope.WRITE, allowed_endpoints=["/servers"], daily_quota=100)

    body = as_alice.get(f"/keys/{issued.api_key.key_id}").json()

    assert body["id"] == issued.api_key.key_id
    assert (body["name"], body["scope"], body["allowed_endpoints"], body["daily_quota"]) == (
        "ci",
        "write",
        ["/servers"],
        100,
    )
    assert set(body) >= {"created_at", "updated_at", "last_used_at", "expiring_soon", "expiry_warned_at"}
    assert not {"secret_hash", "previous_secret_hash", "lookup_bucket", "key"} & set(body)


def test_a_change_is_saved_and_audited_as_a_before_and_after_diff(as_alice, make_key):
    issued = make_key(name="ci", description="old")

    with time_machine.travel(NOW, tick=False):
        response = as_alice.patch(
            f"/keys/{issued.api_key.key_id}",
            {"description": "new", "allowed_ips": ["10.1.2.3"], "name": "ci"},
            format="json",
            REMOTE_ADDR="192.0.2.44",
        )

    assert response.status_code == 200, response.content
    assert (response.json()["description"], response.json()["allowed_ips"]) == ("new", ["10.1.2.3/32"])
    event = AuditEvent.objects.get(action=AuditAction.UPDATE)
    assert event.changes == {"description": ["old", "new"], "allowed_ips": [[], ["10.1.2.3/32"]]}
    assert (event.actor, event.ip, event.at, event.key_id) == ("session:alice", "192.0.2.44", NOW, issued.api_key.pk)


def test_a_change_that_changes_nothing_is_not_audited(as_alice, make_key):
    issued = make_key(name="ci")

    as_alice.patch(f"/keys/{issued.api_key.key_id}", {"name": "ci"}, format="json")

    assert not AuditEvent.objects.filter(action=AuditAction.UPDATE).exists()


def test_a_key_can_be_suspended_and_reactivated_by_patch(as_alice, api, make_key):
    issued = make_key()
    path = f"/keys/{issued.api_key.key_id}"

    suspended = as_alice.patch(path, {"status": "suspended"}, format="json").json()["status"]
    refused = api.get("/regions", **bearer(issued)).status_code
    active = as_alice.patch(path, {"status": "active"}, format="json").json()["status"]
    accepted = api.get("/regions", **bearer(issued)).status_code

    assert (suspended, refused, active, accepted) == ("suspended", 401, "active", 200)
    assert list(AuditEvent.objects.filter(action__in=["suspend", "reactivate"]).values_list("action", flat=True)) == [
        "reactivate",
        "suspend",
    ]


def test_deleting_a_key_is_audited_and_the_audit_keeps_its_masked_value(as_alice, api, make_key):
    issued = make_key()
    masked = issued.api_key.masked

    response = as_alice.delete(f"/keys/{issued.api_key.key_id}")

    assert response.status_code == 204
    assert not ApiKey.objects.filter(pk=issued.api_key.pk).exists()
    event = AuditEvent.objects.get(action=AuditAction.DELETE)
    assert (event.key, event.key_ref, event.owner_username, event.actor) == (None, masked, "alice", "session:alice")
    assert AuditEvent.objects.get(action=AuditAction.CREATE).key_ref == masked
    assert api.get("/me", **bearer(issued)).status_code == 401


# --- Rotate and revoke ----------------------------------------------------------


def test_rotating_with_a_grace_period_keeps_the_old_secret_working_until_it_ends(as_alice, api, make_key):
    with time_machine.travel(NOW, tick=False) as clock:
        old = make_key()
        response = as_alice.post(f"/keys/{old.api_key.key_id}/rotate", {"grace_period_seconds": 300}, format="json")
        new = response.json()["key"]
        clock.move_to(NOW + timedelta(seconds=299))
        during = (api.get("/me", **bearer(old)).status_code, api.get("/me", **bearer(new)).status_code)
        clock.move_to(NOW + timedelta(seconds=301))
        after = (api.get("/me", **bearer(old)).status_code, api.get("/me", **bearer(new)).status_code)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert KEY.match(new) and new != old.value
    assert new.startswith(f"keeper_{old.api_key.key_id}_")
    assert response.json()["rotation_grace_until"] == "2031-03-04T12:05:00Z"
    assert during == (200, 200)
    assert after == (401, 200)


def test_rotating_without_a_grace_period_retires_the_old_secret_at_once(as_alice, api, make_key):
    old = make_key()

    response = as_alice.post(f"/keys/{old.api_key.key_id}/rotate", {}, format="json")

    assert response.status_code == 200
    assert api.get("/me", **bearer(old)).status_code == 401
    assert api.get("/me", **bearer(response.json()["key"])).status_code == 200
    assert response.json()["rotation_grace_until"] is None


def test_rotating_keeps_the_id_the_settings_and_the_history_and_is_audited(as_alice, make_key):
    old = make_key(name="ci", scope=Scope.WRITE, daily_quota=50)

    body = as_alice.post(f"/keys/{old.api_key.key_id}/rotate", {"grace_period_seconds": 60}, format="json").json()

    assert (body["id"], body["name"], body["scope"], body["daily_quota"]) == (old.api_key.key_id, "ci", "write", 50)
    assert body["masked"].endswith(body["key"][-4:])
    event = AuditEvent.objects.get(action=AuditAction.ROTATE)
    assert (event.key_id, event.actor, event.detail) == (old.api_key.pk, "session:alice", "grace period 60s")


@pytest.mark.parametrize("grace", [-1, 31 * 24 * 3600, "soon"])
def test_a_bad_grace_period_is_a_400(as_alice, make_key, grace):
    issued = make_key()

    response = as_alice.post(f"/keys/{issued.api_key.key_id}/rotate", {"grace_period_seconds": grace}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["grace_period_seconds"]


def test_revoking_refuses_the_key_at_once_and_ends_a_rotation_grace(as_alice, api, make_key):
    old = make_key()
    new = as_alice.post(f"/keys/{old.api_key.key_id}/rotate", {"grace_period_seconds": 600}, format="json").json()

    response = as_alice.post(f"/keys/{old.api_key.key_id}/revoke", {"reason": "leaked"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert api.get("/me", **bearer(new["key"])).status_code == 401
    assert api.get("/me", **bearer(old)).status_code == 401
    event = AuditEvent.objects.get(action=AuditAction.REVOKE)
    assert (event.changes, event.detail, event.actor) == ({"status": ["active", "revoked"]}, "leaked", "session:alice")


def test_a_revoked_key_cannot_be_rotated_or_reactivated(as_alice, make_key):
    issued = make_key()
    key_revoke(issued.api_key, actor=Actor("test"))
    path = f"/keys/{issued.api_key.key_id}"

    rotate = as_alice.post(f"{path}/rotate", {}, format="json")
    reactivate = as_alice.patch(path, {"status": "active"}, format="json")

    assert rotate.status_code == 409
    assert rotate.json()["detail"] == "A revoked key cannot be rotated; it can only be renamed or deleted."
    assert reactivate.json()["status"] == "revoked"
    assert ApiKey.objects.get(pk=issued.api_key.pk).status == KeyStatus.REVOKED


def test_an_imported_key_cannot_be_rotated(as_alice, make_key):
    issued = make_key(custom_value="legacy-key-0123456789")

    response = as_alice.post(f"/keys/{issued.api_key.key_id}/rotate", {}, format="json")

    assert response.status_code == 409
    assert response.json()["detail"] == "Imported keys cannot be rotated; issue a new key instead."


def test_an_unknown_organization_is_a_404(as_alice):
    response = create(as_alice, name="bad", organization="nowhere")

    assert response.status_code == 404
    assert response.json() == {"detail": "No organization 'nowhere'.", "code": "not_found"}


# --- Scopes: nobody hands out more than they have ---------------------------------


def test_a_read_key_can_list_but_not_create_change_or_revoke(api, make_key):
    reader = make_key(name="reader")
    other = make_key(name="other")
    path = f"/keys/{other.api_key.key_id}"

    assert api.get("/keys", **bearer(reader)).status_code == 200
    created = api.post("/keys", {"name": "new"}, format="json", **bearer(reader))
    changed = api.patch(path, {"description": "x"}, format="json", **bearer(reader))
    revoked = api.post(f"{path}/revoke", {}, format="json", **bearer(reader))
    deleted = api.delete(path, **bearer(reader))

    assert [r.status_code for r in (created, changed, revoked, deleted)] == [403, 403, 403, 403]
    assert created.json()["detail"] == "This needs the write scope; your key has read."
    assert ApiKey.objects.count() == 2


def test_a_write_key_creates_read_and_write_keys_for_its_owner(api, make_key):
    writer = make_key(scope=Scope.WRITE)

    read = api.post("/keys", {"name": "r"}, format="json", **bearer(writer))
    write = api.post("/keys", {"name": "w", "scope": "write"}, format="json", **bearer(writer))

    assert (read.status_code, read.json()["scope"], read.json()["owner"]) == (201, "read", "alice")
    assert (write.status_code, write.json()["scope"]) == (201, "write")
    assert AuditEvent.objects.get(key__name="w", action="create").actor == f"key:{writer.api_key.masked}"


def test_a_write_key_cannot_create_an_admin_key(api, make_key):
    writer = make_key(scope=Scope.WRITE)

    response = api.post("/keys", {"name": "boss", "scope": "admin"}, format="json", **bearer(writer))

    assert response.status_code == 403
    assert response.json()["detail"] == "You cannot grant the admin scope (yours is write)."
    assert not ApiKey.objects.filter(name="boss").exists()


def test_a_write_key_cannot_raise_its_own_scope(api, make_key):
    writer = make_key(scope=Scope.WRITE)

    response = api.patch(f"/keys/{writer.api_key.key_id}", {"scope": "admin"}, format="json", **bearer(writer))

    assert response.status_code == 403
    assert ApiKey.objects.get(pk=writer.api_key.pk).scope == Scope.WRITE


def test_a_write_key_cannot_change_rotate_revoke_or_delete_an_admin_key_of_the_same_owner(api, make_key):
    writer = make_key(scope=Scope.WRITE)
    boss = make_key(scope=Scope.ADMIN)
    path = f"/keys/{boss.api_key.key_id}"

    answers = [
        api.patch(path, {"scope": "read"}, format="json", **bearer(writer)).status_code,
        api.patch(path, {"allowed_ips": ["10.0.0.1"]}, format="json", **bearer(writer)).status_code,
        api.post(f"{path}/rotate", {}, format="json", **bearer(writer)).status_code,
        api.post(f"{path}/revoke", {}, format="json", **bearer(writer)).status_code,
        api.delete(path, **bearer(writer)).status_code,
    ]

    assert answers == [403, 403, 403, 403, 403]
    assert ApiKey.objects.get(pk=boss.api_key.pk).status == KeyStatus.ACTIVE


def test_the_scope_catalog_says_which_scopes_the_caller_may_grant(api, make_key):
    writer = make_key(scope=Scope.WRITE)

    body = api.get("/keys/catalog/scopes", **bearer(writer)).json()

    assert [(s["scope"], s["includes"], s["grantable"]) for s in body] == [
        ("read", ["read"], True),
        ("write", ["read", "write"], True),
        ("admin", ["read", "write", "admin"], False),
    ]


def test_the_capability_catalog_describes_the_key_form(api, make_key):
    reader = make_key()

    body = api.get("/keys/catalog/capabilities", **bearer(reader)).json()

    assert body["your_scope"] == "read"
    assert body["scopes"] == ["read", "write", "admin"]
    assert body["expiry_warning_days"] == 7
    assert {"expires_in", "expires_in_days", "expires_at", "allowed_ips", "key"} <= set(body["fields"])
    assert "/keys" in body["endpoints"] and "/regions" in body["endpoints"]


# --- Whose keys -----------------------------------------------------------------


def test_a_user_sees_only_their_own_keys(as_alice, make_key, bob):
    mine = make_key(name="mine")
    make_key(bob, name="bobs")

    assert ids(as_alice.get("/keys")) == [mine.api_key.key_id]


def test_an_admin_key_sees_and_manages_everyones_keys(api, make_key, bob):
    boss = make_key(name="boss", scope=Scope.ADMIN)
    bobs = make_key(bob, name="bobs", scope=Scope.WRITE)

    listed = names(api.get("/keys?order_by=name", **bearer(boss)))
    only_bob = names(api.get("/keys?owner=bob", **bearer(boss)))
    revoked = api.post(f"/keys/{bobs.api_key.key_id}/revoke", {}, format="json", **bearer(boss))

    assert listed == ["bobs", "boss"]
    assert only_bob == ["bobs"]
    assert revoked.json()["status"] == "revoked"


def test_an_admin_key_may_create_a_key_for_someone_else_but_others_may_not(api, make_key, bob):
    boss = make_key(name="boss", scope=Scope.ADMIN)
    writer = make_key(name="writer", scope=Scope.WRITE)

    for_bob = api.post("/keys", {"name": "gift", "owner": "bob"}, format="json", **bearer(boss))
    refused = api.post("/keys", {"name": "gift2", "owner": "bob"}, format="json", **bearer(writer))
    nobody = api.post("/keys", {"name": "gift3", "owner": "nobody"}, format="json", **bearer(boss))

    assert (for_bob.status_code, for_bob.json()["owner"]) == (201, "bob")
    assert refused.status_code == 403
    assert (nobody.status_code, nobody.json()["detail"]) == (404, "No user 'nobody'.")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate"), ("post", "/revoke"), ("get", "/usage")],
)
def test_another_users_key_is_a_404_on_every_path(as_alice, make_key, bob, method, suffix):
    bobs = make_key(bob, name="bobs")

    response = getattr(as_alice, method)(f"/keys/{bobs.api_key.key_id}{suffix}", {}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert ApiKey.objects.get(pk=bobs.api_key.pk).status == KeyStatus.ACTIVE


def test_validating_another_users_key_says_nothing_about_it(api, make_key, bob):
    mine = make_key()
    bobs = make_key(bob, name="bobs")

    body = api.post("/keys/validate", {"key": bobs.value}, format="json", **bearer(mine)).json()

    assert body == {
        "valid": False,
        "reason": "Invalid API key.",
        "key": None,
        "credits_per_minute": None,
        "remaining_credits": None,
        "daily_quota": None,
        "remaining_quota": None,
        "capability_token": None,
        "capability_token_expires_at": None,
    }


def test_validate_reports_the_key_its_limits_and_what_remains(api, make_key):
    checker = make_key(name="checker")
    checked = make_key(name="checked", credits_per_minute=10, allowed_endpoints=["/regions"])
    api.get("/regions", **bearer(checked))

    fine = api.post("/keys/validate", {"key": checked.value, "endpoint": "/regions"}, format="json", **bearer(checker))
    elsewhere = api.post("/keys/validate", {"key": checked.value, "endpoint": "/me"}, format="json", **bearer(checker))
    from_ip = api.post(
        "/keys/validate", {"key": checked.value, "endpoint": "/regions", "ip": "::1"}, format="json", **bearer(checker)
    )

    assert fine.json()["valid"] is True
    assert (fine.json()["credits_per_minute"], fine.json()["remaining_credits"]) == (10, 9)
    assert fine.json()["key"]["id"] == checked.api_key.key_id
    assert (elsewhere.json()["valid"], elsewhere.json()["reason"]) == (False, "This API key may not call /me.")
    assert from_ip.json()["valid"] is True


def test_org_admins_manage_the_organizations_keys_and_members_do_not(api, make_key, make_user, organization, join):
    admin, member, outsider = make_user("ann"), make_user("max"), make_user("oz")
    join(admin, organization, Membership.Role.ADMIN)
    join(member, organization, Membership.Role.MEMBER)
    admins_key = make_key(admin, name="admin-key", scope=Scope.WRITE)
    members_key = make_key(member, name="member-key", scope=Scope.WRITE)
    org_key = make_key(member, name="org-key", organization=organization)
    make_key(outsider, name="outside-key")

    seen_by_admin = names(api.get("/keys?order_by=name", **bearer(admins_key)))
    seen_by_member = names(api.get("/keys?order_by=name", **bearer(members_key)))
    admin_changes = api.patch(
        f"/keys/{org_key.api_key.key_id}", {"description": "audited"}, format="json", **bearer(admins_key)
    )
    admin_creates = api.post(
        "/keys", {"name": "new-org-key", "organization": "acme"}, format="json", **bearer(admins_key)
    )
    member_creates = api.post("/keys", {"name": "sneaky", "organization": "acme"}, format="json", **bearer(members_key))
    admin_revokes = api.post(f"/keys/{org_key.api_key.key_id}/revoke", {}, format="json", **bearer(admins_key))

    assert seen_by_admin == ["admin-key", "org-key"]
    assert seen_by_member == ["member-key", "org-key"]
    assert admin_changes.status_code == 200
    assert (admin_creates.status_code, admin_creates.json()["organization"]) == (201, "acme")
    assert member_creates.status_code == 403
    assert member_creates.json()["detail"] == "Only admins of acme manage its keys."
    assert admin_revokes.json()["status"] == "revoked"


def test_a_plain_member_cannot_see_or_manage_another_members_org_key(api, make_key, make_user, organization, join):
    admin, member = make_user("ann"), make_user("max")
    join(admin, organization, Membership.Role.ADMIN)
    join(member, organization, Membership.Role.MEMBER)
    members_key = make_key(member, name="member-key", scope=Scope.WRITE)
    admins_org_key = make_key(admin, name="admins-org-key", organization=organization)
    path = f"/keys/{admins_org_key.api_key.key_id}"

    listed = names(api.get("/keys", **bearer(members_key)))
    answers = [
        api.get(path, **bearer(members_key)).status_code,
        api.patch(path, {"description": "x"}, format="json", **bearer(members_key)).status_code,
        api.post(f"{path}/revoke", {}, format="json", **bearer(members_key)).status_code,
    ]

    assert listed == ["member-key"]
    assert answers == [404, 404, 404]


def test_a_key_cannot_be_moved_into_an_organization_its_manager_does_not_administer(
    as_alice, make_key, organization, join, alice
):
    join(alice, organization, Membership.Role.MEMBER)
    issued = make_key()

    response = as_alice.patch(f"/keys/{issued.api_key.key_id}", {"organization": "acme"}, format="json")

    assert response.status_code == 403
    assert ApiKey.objects.get(pk=issued.api_key.pk).organization is None


# --- Who may call /keys at all --------------------------------------------------

KEY_ENDPOINTS = [
    ("get", "/keys"),
    ("post", "/keys"),
    ("get", "/keys/AAAAAAAAAAAA"),
    ("patch", "/keys/AAAAAAAAAAAA"),
    ("delete", "/keys/AAAAAAAAAAAA"),
    ("post", "/keys/AAAAAAAAAAAA/rotate"),
    ("post", "/keys/AAAAAAAAAAAA/revoke"),
    ("get", "/keys/AAAAAAAAAAAA/usage"),
    ("post", "/keys/validate"),
    ("get", "/keys/usage"),
    ("get", "/keys/catalog/scopes"),
    ("get", "/keys/catalog/capabilities"),
    ("get", "/keys/watch?timeout=1"),
]


@pytest.mark.parametrize(("method", "path"), KEY_ENDPOINTS, ids=[f"{m} {p}" for m, p in KEY_ENDPOINTS])
def test_anonymous_callers_get_a_401_on_every_keys_endpoint(api, db, method, path):
    response = getattr(api, method)(path, {}, format="json") if method != "get" else api.get(path)

    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="keeper"'
    assert json.loads(response.content) == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }


def test_a_staff_session_user_manages_everyones_keys_and_may_grant_admin(as_staff, make_key, bob):
    bobs = make_key(bob, name="bobs")

    listed = names(as_staff.get("/keys"))
    created = create(as_staff, name="ops", scope="admin")
    revoked = as_staff.post(f"/keys/{bobs.api_key.key_id}/revoke", {}, format="json")

    assert listed == ["bobs"]
    assert (created.status_code, created.json()["scope"], created.json()["owner"]) == (201, "admin", "root")
    assert revoked.json()["status"] == "revoked"
    assert AuditEvent.objects.get(action=AuditAction.REVOKE).actor == "session:root"


def test_a_plain_session_user_cannot_grant_admin(as_alice):
    response = create(as_alice, name="boss", scope="admin")

    assert response.status_code == 403


def test_a_token_user_manages_keys_owned_by_their_identity_provider_subject(api, introspection, alice):
    token = introspection.issue("tok-tom", sub="tom")

    created = api.post("/keys", {"name": "toms"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    listed = api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert created.status_code == 201, created.content
    assert created.json()["owner"] == "idp:tom"
    assert names(listed) == ["toms"]
    assert AuditEvent.objects.get(action=AuditAction.CREATE).actor == "token:tom"
    # A subject named like a local user never gets that user's keys.
    alice_token = introspection.issue("tok-alice", sub="alice")
    assert names(api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {alice_token}")) == []


def test_a_staff_token_user_sees_everyones_keys(api, introspection, make_key, bob):
    make_key(bob, name="bobs")
    token = introspection.issue("tok-staff", sub="sam", groups=["keeper-staff"])

    assert names(api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {token}")) == ["bobs"]


def test_an_org_admin_by_token_claim_manages_the_organizations_keys(api, introspection, make_key, bob, organization):
    org_key = make_key(bob, name="org-key", organization=organization)
    admin = introspection.issue("tok-ann", sub="ann", organizations={"acme": "admin"})
    member = introspection.issue("tok-max", sub="max", organizations=["acme"])

    admin_sees = names(api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {admin}"))
    member_sees = names(api.get("/keys", HTTP_AUTHORIZATION=f"Bearer {member}"))
    revoked = api.post(
        f"/keys/{org_key.api_key.key_id}/revoke", {}, format="json", HTTP_AUTHORIZATION=f"Bearer {admin}"
    )

    assert admin_sees == ["org-key"]
    assert member_sees == []
    assert revoked.json()["status"] == "revoked"
