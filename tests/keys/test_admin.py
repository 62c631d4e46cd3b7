"""The API key admin: every write goes through the services, key values are shown once and stored nowhere."""

import logging
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.keys import secrets as key_secrets
from apps.keys import services
from apps.keys.choices import AuditAction, KeySource, KeyStatus, Scope
from apps.keys.models import ApiKey, AuditEvent, KeyUsageDay
from tests.keys.helpers import owner_actor

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
KEY_VALUE = re.compile(r"keeper_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")
CHANGELIST = reverse("admin:keys_apikey_changelist")
ADD = reverse("admin:keys_apikey_add")


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def issue(owner, name: str = "main", **fields) -> services.IssuedKey:
    return services.key_create(owner=owner, name=name, actor=owner_actor(owner, fields.get("organization")), **fields)


def change_url(key: ApiKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


def listed(response) -> set[str]:
    assert response.status_code == 200
    return {key.name for key in response.context["cl"].result_list}


def key_values(response) -> list[str]:
    return KEY_VALUE.findall(response.content.decode())


def secret(value: str) -> str:
    """The random part of a key (what must never leak, whatever case or prefix surrounds it)."""
    return value.split("_")[2]


def authenticates(value: str, ip: str = "127.0.0.1") -> ApiKey:
    return services.key_authenticate(value, ip=ip, path="/servers", touch=False)


def stored_text() -> str:
    """Everything the database holds about keys, audits, admin history and sessions, as text."""
    sessions = [session.get_decoded() for session in Session.objects.all()]
    rows = [
        list(ApiKey.objects.values()),
        list(AuditEvent.objects.values()),
        list(LogEntry.objects.values()),
        list(Session.objects.values()),
        sessions,
    ]
    return repr(rows)


def run_action(client, action: str, keys: list[ApiKey], *, follow: bool = False, **fields):
    data = {"action": action, "_selected_action": [key.pk for key in keys], **fields}
    return client.post(CHANGELIST, data, follow=follow)


def row_of(content: str, name: str) -> str:
    (row,) = [row for row in re.findall(r"<tr>(?:(?!</tr>).)*</tr>", content, re.S) if f">{name}</a>" in row]
    return row


def page_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Changelist ------------------------------------------------------------------


def test_changelist_shows_masked_keys_effective_status_and_expiry_flag(admin_client, alice, organization):
    soon = issue(alice, "soon", organization=organization, expires_at=NOW + timedelta(days=2)).api_key
    lapsed = issue(alice, "lapsed", expires_at=NOW + timedelta(days=30)).api_key
    ApiKey.objects.filter(pk=lapsed.pk).update(expires_at=NOW - timedelta(days=1))

    response = admin_client.get(CHANGELIST)

    content = response.content.decode()
    assert listed(response) == {"soon", "lapsed"}
    assert soon.masked in content and "acme" in content
    assert '<td class="field-effective_status">expired</td>' in row_of(content, "lapsed")
    assert 'field-expiring_soon"><img src="/static/admin/img/icon-yes.svg"' in row_of(content, "soon")
    assert 'field-expiring_soon"><img src="/static/admin/img/icon-no.svg"' in row_of(content, "lapsed")
    assert soon.secret_hash not in content and "secret_hash" not in content


def test_changelist_query_count_does_not_grow_with_the_number_of_keys(admin_client, alice, bob, organization):
    issue(alice, "first", organization=organization)
    admin_client.get(CHANGELIST)  # warm-up: content types, session
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST).status_code == 200
    for number in range(5):
        issue(bob, f"more-{number}", organization=organization)
    with CaptureQueriesContext(connection) as many:
        assert len(listed(admin_client.get(CHANGELIST))) == 6
    assert len(many) == len(few)


@pytest.mark.parametrize("field", ["name", "description", "prefix", "key_id", "owner"])
def test_search_finds_a_key_by(admin_client, alice, bob, field):
    wanted = issue(alice, "billing-export", description="nightly invoices job").api_key
    issue(bob, "other", description="something else")
    term = {
        "name": "billing",
        "description": "invoices",
        "prefix": wanted.prefix,
        "key_id": wanted.key_id,
        "owner": "alice",
    }[field]
    assert listed(admin_client.get(CHANGELIST, {"q": term})) == {"billing-export"}


def test_status_filter_uses_the_effective_status(admin_client, alice):
    issue(alice, "live")
    lapsed = issue(alice, "lapsed", expires_at=NOW + timedelta(days=1)).api_key
    ApiKey.objects.filter(pk=lapsed.pk).update(expires_at=NOW - timedelta(hours=1))
    services.key_suspend(issue(alice, "paused").api_key, actor=owner_actor(alice))
    services.key_revoke(issue(alice, "gone").api_key, actor=owner_actor(alice))

    assert listed(admin_client.get(CHANGELIST, {"status": "active"})) == {"live"}
    assert listed(admin_client.get(CHANGELIST, {"status": "expired"})) == {"lapsed"}
    assert listed(admin_client.get(CHANGELIST, {"status": "suspended"})) == {"paused"}
    assert listed(admin_client.get(CHANGELIST, {"status": "revoked"})) == {"gone"}


def test_scope_filter(admin_client, alice):
    issue(alice, "reader", scope=Scope.READ)
    issue(alice, "writer", scope=Scope.WRITE)
    assert listed(admin_client.get(CHANGELIST, {"scope__exact": "write"})) == {"writer"}


def test_source_filter(admin_client, alice):
    issue(alice, "generated")
    services.key_create(owner=alice, name="imported", actor=owner_actor(alice), custom_value="an-imported-value-123")
    assert listed(admin_client.get(CHANGELIST, {"source__exact": KeySource.IMPORTED})) == {"imported"}


def test_organization_filter(admin_client, alice, organization):
    issue(alice, "team", organization=organization)
    issue(alice, "personal")
    assert listed(admin_client.get(CHANGELIST, {"organization__id__exact": organization.pk})) == {"team"}
    assert listed(admin_client.get(CHANGELIST, {"organization__isnull": "True"})) == {"personal"}


def test_expiry_filter(admin_client, alice):
    issue(alice, "soon", expires_at=NOW + timedelta(days=3))
    issue(alice, "later", expires_at=NOW + timedelta(days=60))
    issue(alice, "forever")
    lapsed = issue(alice, "lapsed", expires_at=NOW + timedelta(days=1)).api_key
    ApiKey.objects.filter(pk=lapsed.pk).update(expires_at=NOW - timedelta(days=1))

    assert listed(admin_client.get(CHANGELIST, {"expiry": "soon"})) == {"soon"}
    assert listed(admin_client.get(CHANGELIST, {"expiry": "expired"})) == {"lapsed"}
    assert listed(admin_client.get(CHANGELIST, {"expiry": "never"})) == {"forever"}


@pytest.mark.parametrize("lookup", ["secret_hash__startswith", "previous_secret_hash__startswith", "lookup_bucket"])
def test_filtering_by_a_hash_is_refused(admin_client, alice, lookup):
    key = issue(alice).api_key
    response = admin_client.get(CHANGELIST, {lookup: key.secret_hash[:2]})
    assert response.status_code == 400


# --- Create ----------------------------------------------------------------------


def test_add_form_has_the_editable_fields_and_no_secret(admin_client):
    response = admin_client.get(ADD)

    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {
        "name",
        "owner",
        "organization",
        "scope",
        "description",
        "allowed_endpoints",
        "blocked_endpoints",
        "allowed_ips",
        "credits_per_minute",
        "daily_quota",
        "expires_at",
    }
    content = response.content.decode()
    for secret in ("secret_hash", "lookup_bucket", "previous_secret_hash"):
        assert secret not in content


def create_data(owner, **overrides) -> dict:
    return {
        "name": "ci-runner",
        "owner": owner.pk,
        "organization": "",
        "scope": "write",
        "description": "",
        "allowed_endpoints": "",
        "blocked_endpoints": "",
        "allowed_ips": "",
        "credits_per_minute": "",
        "daily_quota": "",
        "expires_at_0": "",
        "expires_at_1": "",
        **overrides,
    }


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(admin_client, alice, organization, caplog):
    caplog.set_level(logging.DEBUG)
    data = create_data(
        alice,
        organization=organization.pk,
        description="deploys",
        allowed_endpoints="/servers\n\n  /server/*  \n",
        blocked_endpoints="/server/secret",
        allowed_ips="10.0.0.0/8\n192.168.1.7",
        credits_per_minute="120",
        daily_quota="5000",
        expires_at_0="2025-09-01",
        expires_at_1="00:00:00",
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "admin/keys/apikey/issued_keys.html"
    assert "no-store" in response["Cache-Control"]
    (value,) = set(key_values(response))
    assert response.content.decode().count(secret(value)) == 1
    key = ApiKey.objects.get(name="ci-runner")
    assert authenticates(value, ip="10.1.2.3") == key
    assert key.secret_hash == key_secrets.hmac_hash(value)
    assert (key.owner, key.organization, key.scope, key.description) == (alice, organization, "write", "deploys")
    assert key.allowed_endpoints == ["/servers", "/server/*"]
    assert key.blocked_endpoints == ["/server/secret"]
    assert key.allowed_ips == ["10.0.0.0/8", "192.168.1.7/32"]
    assert (key.credits_per_minute, key.daily_quota) == (120, 5000)
    assert key.expires_at == datetime(2025, 9, 1, tzinfo=UTC)

    event = AuditEvent.objects.get(key=key)
    assert (event.action, event.actor, event.ip) == (AuditAction.CREATE, "admin:admin", "127.0.0.1")
    assert event.changes["allowed_ips"] == [None, ["10.0.0.0/8", "192.168.1.7/32"]]

    secret_part = secret(value)
    stored = stored_text()
    assert value not in stored and secret_part not in stored
    assert not [record for record in caplog.records if secret_part in record.getMessage()]
    # Nothing was queued for a later page either (messages, session).
    assert secret_part not in admin_client.get(CHANGELIST).content.decode()


def test_a_policy_refusal_appears_on_the_add_form(admin_client, make_user):
    gone = make_user("gone", is_active=False)

    response = admin_client.post(ADD, create_data(gone))

    assert response.status_code == 200
    refusal = "gone is deactivated: no API key can be created for them."
    assert response.context["adminform"].form.non_field_errors() == [refusal]
    assert refusal in response.content.decode()
    assert not ApiKey.objects.exists() and not AuditEvent.objects.exists()


def test_the_owner_field_uses_autocomplete(admin_client):
    content = admin_client.get(ADD).content.decode()
    assert 'data-ajax--url="/admin/autocomplete/"' in content
    assert 'name="owner"' in content


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_ips", "10.0.0.0/8\nnot-an-ip", "is not an IP address or CIDR range"),
        ("allowed_endpoints", "servers", "is not a path pattern starting with /"),
    ],
)
def test_service_validation_errors_appear_on_the_add_form(admin_client, alice, field, value, message):
    response = admin_client.post(ADD, create_data(alice, **{field: value}))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert message in " ".join(form.errors[field])
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_an_expiry_in_the_past_is_refused_on_the_add_form(admin_client, alice):
    response = admin_client.post(ADD, create_data(alice, expires_at_0="2025-06-01", expires_at_1="00:00:00"))

    assert response.context["adminform"].form.errors["expires_at"] == ["Must be in the future."]
    assert not ApiKey.objects.exists()


def test_a_second_key_with_the_same_name_for_the_same_owner_is_refused(admin_client, alice):
    issue(alice, "ci-runner")

    response = admin_client.post(ADD, create_data(alice))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert ApiKey.objects.count() == 1
    assert not key_values(response)


# --- Change page -------------------------------------------------------------------


def test_change_page_shows_the_keys_state_and_never_its_hashes(admin_client, alice):
    key = issue(alice, expires_at=NOW + timedelta(days=3)).api_key
    services.key_rotate(key, actor=owner_actor(alice), grace_seconds=3600)
    key.refresh_from_db()
    imported = services.key_create(
        owner=alice, name="imported", actor=owner_actor(alice), custom_value="an-imported-value-123"
    )

    response = admin_client.get(change_url(key))

    content = response.content.decode()
    assert response.status_code == 200
    assert key.masked in content and key.key_id in content
    assert "rotation grace until" in content.lower() and "expires in 3 days" in content
    for field in ("secret_hash", "previous_secret_hash", "lookup_bucket"):
        assert field not in content
    assert key.secret_hash not in content and key.previous_secret_hash not in content
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields.isdisjoint({"secret_hash", "previous_secret_hash", "lookup_bucket", "owner", "status"})

    content = admin_client.get(change_url(imported.api_key)).content.decode()
    assert imported.api_key.secret_hash not in content and "lookup_bucket" not in content


def svg_of(response) -> str:
    match = re.search(r'<svg class="usage-chart".*?</svg>', response.content.decode(), re.S)
    assert match, "no usage chart on the page"
    return match.group(0)


def test_change_page_draws_a_bar_for_each_day_used_in_the_last_30_days(admin_client, alice, bob):
    key = issue(alice).api_key
    other = issue(bob).api_key
    for days_ago, requests, errors, limited in [(0, 120, 10, 4), (1, 50, 0, 0), (29, 7, 7, 7), (30, 999, 0, 0)]:
        KeyUsageDay.objects.create(
            key=key, day=TODAY - timedelta(days=days_ago), requests=requests, errors=errors, rate_limited=limited
        )
    KeyUsageDay.objects.create(key=other, day=TODAY, requests=5000)

    response = admin_client.get(change_url(key))

    svg = svg_of(response)
    days = re.findall(r'<g class="usage-bar" data-day="([\d-]+)"', svg)
    assert days == [str(TODAY - timedelta(days=29)), str(TODAY - timedelta(days=1)), str(TODAY)]
    today_bar = re.search(rf'data-day="{TODAY}">(.*?)</g>', svg, re.S).group(1)
    assert re.findall(r'<rect class="(\w+)"', today_bar) == ["ok", "errors", "rate_limited"]
    assert f"{TODAY}: 120 requests, 10 errors (4 rate-limited)" in today_bar
    assert "requests per day" in svg
    assert re.findall(r'<text class="y-label"[^>]*>([\d,]+)</text>', svg) == ["0", "50", "100", "150"]
    assert re.findall(r'<text class="x-label"[^>]*>([^<]+)</text>', svg) == [
        "May 18",
        "May 25",
        "Jun 01",
        "Jun 08",
        "Jun 15",
    ]
    assert "<script" not in svg and "http" not in svg
    assert "177 requests, 17 errors (11 rate-limited)" in response.content.decode()


def test_change_page_without_usage_says_so(admin_client, alice):
    key = issue(alice).api_key
    content = admin_client.get(change_url(key)).content.decode()
    assert "No requests in the last 30 days." in content
    assert '<svg class="usage-chart"' not in content


def test_change_page_lists_the_keys_recent_audit_events(admin_client, alice):
    key = issue(alice).api_key
    services.key_update(key, actor=services.Actor("admin:carol", "10.1.2.3"), daily_quota=100)

    content = admin_client.get(change_url(key)).content.decode()

    events = re.findall(r'<tr class="audit-event">(.*?)</tr>', content, re.S)
    assert len(events) == 2
    assert "updated" in events[0] and "admin:carol" in events[0] and "10.1.2.3" in events[0]
    assert "daily_quota</strong>: — → 100" in events[0]
    assert "created" in events[1]
    assert f"?key__id__exact={key.pk}" in content


def change_data(key: ApiKey, **overrides) -> dict:
    return {
        "name": key.name,
        "organization": key.organization_id or "",
        "scope": key.scope,
        "description": key.description,
        "allowed_endpoints": "\n".join(key.allowed_endpoints),
        "blocked_endpoints": "\n".join(key.blocked_endpoints),
        "allowed_ips": "\n".join(key.allowed_ips),
        "credits_per_minute": key.credits_per_minute or "",
        "daily_quota": key.daily_quota or "",
        "expires_at_0": key.expires_at.strftime("%Y-%m-%d") if key.expires_at else "",
        "expires_at_1": key.expires_at.strftime("%H:%M:%S") if key.expires_at else "",
        **overrides,
    }


def test_editing_a_key_goes_through_the_service_and_audits_the_diff(admin_client, alice, organization):
    key = issue(alice, "old-name", allowed_endpoints=["/servers"]).api_key

    response = admin_client.post(
        change_url(key),
        change_data(key, name="new-name", scope="write", organization=organization.pk, allowed_ips="10.0.0.0/8\n"),
    )

    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.scope, key.organization, key.allowed_ips) == (
        "new-name",
        "write",
        organization,
        ["10.0.0.0/8"],
    )
    event = AuditEvent.objects.get(key=key, action=AuditAction.UPDATE)
    assert (event.actor, event.ip) == ("admin:admin", "127.0.0.1")
    assert event.changes == {
        "name": ["old-name", "new-name"],
        "scope": ["read", "write"],
        "organization": [None, "acme"],
        "allowed_ips": [[], ["10.0.0.0/8"]],
    }


def test_saving_an_unchanged_key_writes_no_audit_event(admin_client, alice):
    key = issue(alice, expires_at=NOW + timedelta(days=10, microseconds=123456), allowed_ips=["10.0.0.1"]).api_key

    response = admin_client.post(change_url(key), change_data(key))

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action=AuditAction.UPDATE).exists()


def test_an_expired_key_can_still_be_edited(admin_client, alice):
    key = issue(alice, expires_at=NOW + timedelta(days=1)).api_key
    ApiKey.objects.filter(pk=key.pk).update(expires_at=NOW - timedelta(days=1))
    key.refresh_from_db()

    response = admin_client.post(change_url(key), change_data(key, description="kept for the record"))

    assert response.status_code == 302
    assert AuditEvent.objects.get(action=AuditAction.UPDATE).changes == {"description": ["", "kept for the record"]}


def test_service_errors_appear_on_the_change_form(admin_client, alice):
    issue(alice, "taken")
    key = issue(alice, "mine").api_key

    response = admin_client.post(change_url(key), change_data(key, name="taken"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["Another key of this owner has that name."]
    key.refresh_from_db()
    assert key.name == "mine"
    assert not AuditEvent.objects.filter(action=AuditAction.UPDATE).exists()

    response = admin_client.post(change_url(key), change_data(key, allowed_ips="300.1.2.3"))
    assert "is not an IP address or CIDR range" in response.context["adminform"].form.errors["allowed_ips"][0]


def rotate_url(key: ApiKey) -> str:
    return reverse("admin:keys_apikey_rotate", args=[key.pk])


def test_the_change_page_links_to_the_keys_rotation(admin_client, alice):
    key = issue(alice).api_key
    assert f'href="{rotate_url(key)}"' in admin_client.get(change_url(key)).content.decode()


def test_rotating_from_the_keys_page_asks_then_shows_the_new_value_once(admin_client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    issued = issue(alice)

    confirm = admin_client.get(rotate_url(issued.api_key))

    assert confirm.templates[0].name == "admin/keys/apikey/action_confirmation.html"
    assert issued.api_key.masked in confirm.content.decode() and 'name="action"' not in confirm.content.decode()
    assert ApiKey.objects.get(pk=issued.api_key.pk).secret_hash == issued.api_key.secret_hash

    response = admin_client.post(rotate_url(issued.api_key), {"post": "yes", "grace_seconds": "0"})

    assert [t.name for t in response.templates][0] == "admin/keys/apikey/issued_keys.html"
    assert "no-store" in response["Cache-Control"]
    (value,) = key_values(response)
    assert response.content.decode().count(secret(value)) == 1
    assert authenticates(value) == issued.api_key
    with pytest.raises(services.KeyRejected):
        authenticates(issued.value)
    assert AuditEvent.objects.filter(action=AuditAction.ROTATE, actor="admin:admin").count() == 1
    assert secret(value) not in stored_text()
    assert not [record for record in caplog.records if secret(value) in record.getMessage()]
    assert secret(value) not in admin_client.get(change_url(issued.api_key)).content.decode()


def test_rotating_a_revoked_key_from_its_page_says_why_and_changes_nothing(admin_client, alice):
    key = services.key_revoke(issue(alice).api_key, actor=owner_actor(alice))

    response = admin_client.post(rotate_url(key), {"post": "yes", "grace_seconds": "0"}, follow=True)

    assert response.redirect_chain == [(change_url(key), 302)]
    refusal = "A revoked key cannot be rotated; it can only be renamed or deleted."
    assert f"{key} was not rotated: {refusal}" in page_messages(response)
    assert ApiKey.objects.get(pk=key.pk).secret_hash == key.secret_hash
    assert not AuditEvent.objects.filter(action=AuditAction.ROTATE).exists()


def test_the_rotation_page_of_an_unknown_key_is_a_404(admin_client):
    assert admin_client.get(reverse("admin:keys_apikey_rotate", args=[999999])).status_code == 404


def test_keys_cannot_be_deleted_in_the_admin(admin_client, alice):
    key = issue(alice).api_key
    assert admin_client.post(reverse("admin:keys_apikey_delete", args=[key.pk]), {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


# --- Actions ---------------------------------------------------------------------


def test_rotate_asks_for_confirmation_first(admin_client, alice):
    key = issue(alice).api_key

    response = run_action(admin_client, "rotate_keys", [key])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/keys/apikey/action_confirmation.html"
    assert key.masked in response.content.decode()
    assert ApiKey.objects.get(pk=key.pk).secret_hash == key.secret_hash
    assert not key_values(response)


def test_rotate_shows_each_new_key_once_and_the_old_keys_stop_working(admin_client, alice, bob):
    first, second = issue(alice, "first"), issue(bob, "second")

    response = run_action(admin_client, "rotate_keys", [first.api_key, second.api_key], post="yes", grace_seconds="0")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    values = key_values(response)
    assert len(values) == 2 and all(response.content.decode().count(secret(value)) == 1 for value in values)
    assert {authenticates(value).name for value in values} == {"first", "second"}
    for old in (first.value, second.value):
        with pytest.raises(services.KeyRejected):
            authenticates(old)
    assert AuditEvent.objects.filter(action=AuditAction.ROTATE, actor="admin:admin").count() == 2
    assert "Rotated 2 keys." in page_messages(response)
    stored = stored_text()
    assert not any(secret(value) in stored for value in values)
    assert not any(value in admin_client.get(CHANGELIST).content.decode() for value in values)


def test_rotate_with_a_grace_period_keeps_the_old_key_working_until_then(admin_client, alice):
    issued = issue(alice)

    response = run_action(admin_client, "rotate_keys", [issued.api_key], post="yes", grace_seconds="3600")

    (value,) = key_values(response)
    assert authenticates(issued.value) == authenticates(value)
    with time_machine.travel(NOW + timedelta(hours=1, seconds=1), tick=False):
        with pytest.raises(services.KeyRejected):
            authenticates(issued.value)


def test_rotate_reports_the_keys_it_could_not_rotate(admin_client, alice):
    good = issue(alice, "good").api_key
    revoked = services.key_revoke(issue(alice, "revoked").api_key, actor=owner_actor(alice))

    response = run_action(admin_client, "rotate_keys", [good, revoked], post="yes", grace_seconds="0")

    assert len(key_values(response)) == 1
    notes = page_messages(response)
    assert f"{revoked} was not rotated: A revoked key cannot be rotated; it can only be renamed or deleted." in notes
    assert "Rotated 1 key." in notes

    response = run_action(admin_client, "rotate_keys", [revoked], post="yes", grace_seconds="0", follow=True)
    assert response.redirect_chain[-1][0] == CHANGELIST
    refusal = "A revoked key cannot be rotated; it can only be renamed or deleted."
    assert f"{revoked} was not rotated: {refusal}" in page_messages(response)


def test_revoke_asks_for_confirmation_then_revokes_and_audits_the_reason(admin_client, alice):
    issued = issue(alice)

    confirm = run_action(admin_client, "revoke_keys", [issued.api_key])
    assert confirm.templates[0].name == "admin/keys/apikey/action_confirmation.html"
    assert ApiKey.objects.get(pk=issued.api_key.pk).status == KeyStatus.ACTIVE

    response = run_action(admin_client, "revoke_keys", [issued.api_key], post="yes", reason="leaked", follow=True)

    assert "Revoked 1 key." in page_messages(response)
    assert ApiKey.objects.get(pk=issued.api_key.pk).status == KeyStatus.REVOKED
    event = AuditEvent.objects.get(action=AuditAction.REVOKE)
    assert (event.actor, event.detail, event.changes) == ("admin:admin", "leaked", {"status": ["active", "revoked"]})
    with pytest.raises(services.KeyRejected):
        authenticates(issued.value)


def test_revoking_a_revoked_key_is_reported_and_not_audited_again(admin_client, alice):
    key = services.key_revoke(issue(alice).api_key, actor=owner_actor(alice))

    response = run_action(admin_client, "revoke_keys", [key], post="yes", follow=True)

    assert f"{key}: already revoked" in page_messages(response)
    assert AuditEvent.objects.filter(action=AuditAction.REVOKE).count() == 1


def test_suspend_and_reactivate_change_status_and_audit(admin_client, alice):
    issued = issue(alice)
    key = issued.api_key

    response = run_action(admin_client, "suspend_keys", [key], follow=True)

    assert "Suspended 1 key." in page_messages(response)
    assert ApiKey.objects.get(pk=key.pk).status == KeyStatus.SUSPENDED
    with pytest.raises(services.KeyRejected):
        authenticates(issued.value)

    response = run_action(admin_client, "reactivate_keys", [key], follow=True)

    assert "Reactivated 1 key." in page_messages(response)
    assert authenticates(issued.value) == key
    actions = list(AuditEvent.objects.filter(actor="admin:admin").order_by("id").values_list("action", flat=True))
    assert actions == [AuditAction.SUSPEND, AuditAction.REACTIVATE]


def test_suspend_reports_keys_that_are_not_active(admin_client, alice):
    active = issue(alice, "active").api_key
    revoked = services.key_revoke(issue(alice, "revoked").api_key, actor=owner_actor(alice))

    response = run_action(admin_client, "suspend_keys", [active, revoked], follow=True)

    notes = page_messages(response)
    assert "Suspended 1 key." in notes
    assert f"{revoked} was not suspended: Only active keys can be suspended (this one is revoked)." in notes
    assert ApiKey.objects.get(pk=revoked.pk).status == KeyStatus.REVOKED


# --- Audit events and usage --------------------------------------------------------


def test_audit_event_admin_is_read_only(admin_client, alice):
    key = issue(alice).api_key
    event = AuditEvent.objects.get(key=key)
    url = reverse("admin:keys_auditevent_change", args=[event.pk])

    assert admin_client.get(reverse("admin:keys_auditevent_add")).status_code == 403
    assert admin_client.post(url, {"actor": "someone else"}).status_code == 403
    assert admin_client.post(reverse("admin:keys_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == (
        403
    )
    assert AuditEvent.objects.get(pk=event.pk).actor == "test-setup:alice"
    view = admin_client.get(url)
    assert view.status_code == 200 and not view.context["has_change_permission"]


def test_audit_event_changelist_filters_searches_and_drills_down_by_date(admin_client, alice, bob):
    key = issue(alice, "alpha").api_key
    services.key_suspend(key, actor=services.Actor("admin:carol", "10.9.8.7"))
    issue(bob, "beta")
    changelist = reverse("admin:keys_auditevent_changelist")

    def actions(**params) -> list[str]:
        response = admin_client.get(changelist, params)
        assert response.status_code == 200
        return sorted(event.action for event in response.context["cl"].result_list)

    assert actions() == ["create", "create", "suspend"]
    assert actions(action__exact="suspend") == ["suspend"]
    assert actions(q="alice") == ["create", "suspend"]
    assert actions(q="10.9.8") == ["suspend"]
    assert actions(q="carol") == ["suspend"]
    assert actions(at__year=NOW.year, at__month=NOW.month, at__day=NOW.day) == ["create", "create", "suspend"]
    assert actions(key__id__exact=key.pk) == ["create", "suspend"]
    assert "Add audit event" not in admin_client.get(changelist).content.decode()


def test_key_usage_admin_lists_rows_read_only(admin_client, alice):
    key = issue(alice).api_key
    row = KeyUsageDay.objects.create(key=key, day=date(2025, 6, 14), requests=42)
    changelist = reverse("admin:keys_keyusageday_changelist")

    response = admin_client.get(changelist, {"q": "alice"})

    assert list(response.context["cl"].result_list) == [row]
    assert admin_client.get(reverse("admin:keys_keyusageday_add")).status_code == 403
    url = reverse("admin:keys_keyusageday_change", args=[row.pk])
    assert admin_client.post(url, {"requests": 1}).status_code == 403
    assert KeyUsageDay.objects.get(pk=row.pk).requests == 42
