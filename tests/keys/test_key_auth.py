"""Calling the API with a key: both header styles, refusals with a reason, IP and endpoint limits, last use."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.keys.choices import AuditAction, KeyStatus, Scope
from apps.keys.models import ApiKey, AuditEvent
from apps.keys.services import Actor, key_revoke, key_suspend
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

SEND = pytest.mark.parametrize("send", [bearer, x_api_key], ids=["bearer", "x-api-key"])
NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


@SEND
def test_a_key_identifies_its_owner_with_its_scope(api, make_key, send):
    issued = make_key(scope=Scope.WRITE)

    response = api.get("/me", **send(issued))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["user_id"], body["auth_method"], body["scope"]) == ("alice", "api_key", "write")


def test_an_imported_key_works_in_x_api_key(api, make_key):
    issued = make_key(custom_value="legacy-key-of-alice-0001")

    response = api.get("/me", **x_api_key(issued))

    assert response.status_code == 200, response.content
    assert response.json()["auth_method"] == "api_key"


def test_x_api_key_wins_over_an_authorization_header(api, make_key):
    alices = make_key()

    response = api.get("/me", HTTP_AUTHORIZATION="Basic dXNlcjpwdw==", **x_api_key(alices))

    assert response.status_code == 200
    assert response.json()["user_id"] == "alice"


def test_keys_are_checked_beside_token_introspection_without_asking_the_identity_provider(api, make_key, introspection):
    token = introspection.issue("tok-of-tom", sub="tom")
    issued = make_key()

    by_key = api.get("/me", **bearer(issued))
    by_token = api.get("/me", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert (by_key.status_code, by_key.json()["auth_method"]) == (200, "api_key")
    assert (by_token.status_code, by_token.json()["auth_method"]) == (200, "token")
    assert introspection.introspected == [token]


@SEND
def test_an_unknown_key_is_a_401_saying_it_is_invalid(api, make_key, send):
    issued = make_key()
    issued.api_key.delete()

    response = api.get("/me", **send(issued))

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key.", "code": "invalid_api_key"}
    assert response["WWW-Authenticate"] == 'Bearer realm="keeper"'


@SEND
def test_a_revoked_key_is_a_401_saying_it_was_revoked(api, make_key, send):
    issued = make_key()
    key_revoke(issued.api_key, actor=Actor("test"))

    response = api.get("/me", **send(issued))

    assert response.status_code == 401
    assert response.json() == {"detail": "This API key has been revoked.", "code": "invalid_api_key"}


@SEND
def test_a_suspended_key_is_a_401_saying_it_is_suspended(api, make_key, send):
    issued = make_key()
    key_suspend(issued.api_key, actor=Actor("test"))

    response = api.get("/me", **send(issued))

    assert response.status_code == 401
    assert response.json() == {"detail": "This API key is suspended.", "code": "invalid_api_key"}


def test_a_failed_use_of_a_revoked_key_is_audited_with_the_key_and_the_address(api, make_key):
    issued = make_key()
    key_revoke(issued.api_key, actor=Actor("test"))

    api.get("/regions", REMOTE_ADDR="198.51.100.7", **bearer(issued))

    denied = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert denied.key == issued.api_key
    assert denied.key_ref == issued.api_key.masked
    assert denied.owner_username == "alice"
    assert denied.actor == f"key:{issued.api_key.masked}"
    assert denied.ip == "198.51.100.7"
    assert "revoked" in denied.detail


def test_a_suspended_or_unknown_key_leaves_no_denied_event(api, make_key):
    suspended = make_key()
    key_suspend(suspended.api_key, actor=Actor("test"))
    unknown = make_key()
    unknown.api_key.delete()

    api.get("/me", **bearer(suspended))
    api.get("/me", **bearer(unknown))

    assert not AuditEvent.objects.filter(action=AuditAction.DENIED).exists()


# --- Expiry, on every path that accepts a key ----------------------------------


@pytest.fixture
def expired_key(make_key):
    """A key that expired a second ago (and was never marked EXPIRED by the daily task)."""
    with time_machine.travel(NOW, tick=False):
        issued = make_key(scope=Scope.ADMIN, expires_at=NOW + timedelta(hours=1))
    with time_machine.travel(NOW + timedelta(hours=1, seconds=1), tick=False):
        yield issued


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("get", "/regions", id="catalog-regions"),
        pytest.param("get", "/keys/catalog/scopes", id="key-catalog-scopes"),
        pytest.param("get", "/keys/catalog/capabilities", id="key-catalog-capabilities"),
        pytest.param("get", "/me", id="me"),
        pytest.param("get", "/keys", id="keys-list"),
        pytest.param("post", "/keys", id="keys-create"),
        pytest.param("get", "/keys/usage", id="keys-usage"),
        pytest.param("post", "/keys/validate", id="keys-validate"),
        pytest.param("get", "/config", id="config"),
    ],
)
@SEND
def test_an_expired_key_is_a_401_saying_when_it_expired_on_every_path(api, expired_key, method, path, send):
    assert ApiKey.objects.get(pk=expired_key.api_key.pk).status == KeyStatus.ACTIVE

    response = getattr(api, method)(path, {}, format="json", **send(expired_key))

    assert response.status_code == 401, response.content
    assert response.json() == {
        "detail": "This API key expired at 2031-03-04T13:00:00Z.",
        "code": "invalid_api_key",
    }


def test_an_expired_key_is_refused_on_its_own_detail_rotate_and_usage_paths(api, expired_key):
    key_id = expired_key.api_key.key_id

    answers = [
        api.get(f"/keys/{key_id}", **bearer(expired_key)).status_code,
        api.post(f"/keys/{key_id}/rotate", {}, format="json", **bearer(expired_key)).status_code,
        api.get(f"/keys/{key_id}/usage", **bearer(expired_key)).status_code,
        api.get("/keys/watch?timeout=1", **bearer(expired_key)).status_code,
    ]

    assert answers == [401, 401, 401, 401]


def test_a_key_is_accepted_until_the_second_it_expires(api, make_key):
    with time_machine.travel(NOW, tick=False) as clock:
        issued = make_key(expires_at=NOW + timedelta(minutes=5))
        clock.move_to(NOW + timedelta(minutes=5) - timedelta(seconds=1))
        before = api.get("/me", **bearer(issued)).status_code
        clock.move_to(NOW + timedelta(minutes=5))
        at = api.get("/me", **bearer(issued)).status_code

    assert (before, at) == (200, 401)


def test_validating_an_expired_key_says_it_is_not_valid_and_why(api, make_key):
    with time_machine.travel(NOW, tick=False) as clock:
        checker = make_key(name="checker")
        doomed = make_key(name="doomed", expires_at=NOW + timedelta(minutes=1))
        clock.move_to(NOW + timedelta(minutes=2))

        response = api.post("/keys/validate", {"key": doomed.value}, format="json", **bearer(checker))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["valid"] is False
    assert body["reason"] == "This API key expired at 2031-03-04T12:01:00Z."
    assert body["key"]["status"] == "expired"


# --- Where from and what for ----------------------------------------------------


@pytest.mark.parametrize(
    ("allowed_ips", "address", "status"),
    [
        pytest.param(["203.0.113.9"], "203.0.113.9", 200, id="listed-ip"),
        pytest.param(["203.0.113.9"], "203.0.113.10", 403, id="unlisted-ip"),
        pytest.param(["10.0.0.0/8"], "10.200.3.4", 200, id="inside-cidr"),
        pytest.param(["10.0.0.0/8"], "11.0.0.1", 403, id="outside-cidr"),
        pytest.param(["192.0.2.0/24", "2001:db8::/32"], "2001:db8::1", 200, id="inside-ipv6-cidr"),
        pytest.param(["192.0.2.0/24", "2001:db8::/32"], "2001:db9::1", 403, id="outside-ipv6-cidr"),
        pytest.param([], "198.51.100.1", 200, id="no-list-means-anywhere"),
    ],
)
def test_the_ip_allow_list_is_checked_against_the_client_address(api, make_key, allowed_ips, address, status):
    issued = make_key(allowed_ips=allowed_ips)

    response = api.get("/regions", REMOTE_ADDR=address, **bearer(issued))

    assert response.status_code == status, response.content
    if status == 403:
        assert response.json() == {
            "detail": f"This API key may not be used from {address}.",
            "code": "api_key_forbidden",
        }


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(api, make_key, settings):
    issued = make_key(allowed_ips=["203.0.113.0/24"])

    spoofed = api.get("/regions", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.5", **bearer(issued))
    settings.RATE_LIMIT_TRUSTED_PROXIES = ["198.51.100.1"]
    proxied = api.get("/regions", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.5", **bearer(issued))

    assert (spoofed.status_code, proxied.status_code) == (403, 200)


@pytest.mark.parametrize(
    ("allowed", "blocked", "path", "status"),
    [
        pytest.param(["/regions"], [], "/regions", 200, id="allowed-exact"),
        pytest.param(["/regions"], [], "/me", 403, id="not-allowed"),
        pytest.param(["/keys*"], [], "/keys/catalog/scopes", 200, id="allowed-wildcard"),
        pytest.param(["/keys/*"], [], "/keys", 403, id="wildcard-needs-the-slash"),
        pytest.param([], ["/me"], "/me", 403, id="blocked"),
        pytest.param([], ["/me"], "/regions", 200, id="others-not-blocked"),
        pytest.param(["/keys*"], ["/keys/usage"], "/keys/usage", 403, id="blocked-wins-over-allowed"),
        pytest.param(["/keys*"], ["/keys/usage"], "/keys", 200, id="allowed-beside-a-block"),
    ],
)
def test_endpoint_patterns_decide_which_paths_a_key_may_call(api, make_key, allowed, blocked, path, status):
    issued = make_key(allowed_endpoints=allowed, blocked_endpoints=blocked)

    response = api.get(path, **bearer(issued))

    assert response.status_code == status, response.content
    if status == 403:
        assert response.json() == {"detail": f"This API key may not call {path}.", "code": "api_key_forbidden"}


def test_a_403_for_ip_or_endpoint_is_not_counted_as_use(api, make_key):
    issued = make_key(allowed_ips=["203.0.113.9"])

    api.get("/regions", REMOTE_ADDR="198.51.100.1", **bearer(issued))

    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at is None


# --- Last use -------------------------------------------------------------------


def _last_used_writes(queries) -> int:
    return sum(1 for q in queries if q["sql"].startswith("UPDATE") and "last_used_at" in q["sql"])


def test_last_used_at_is_written_at_most_once_a_minute(api, make_key):
    issued = make_key()
    writes = []
    with time_machine.travel(NOW, tick=False) as clock:
        for seconds in (0, 1, 30, 59, 60, 61, 90, 121):
            clock.move_to(NOW + timedelta(seconds=seconds))
            with CaptureQueriesContext(connection) as queries:
                assert api.get("/regions", **bearer(issued)).status_code == 200
            writes.append(_last_used_writes(queries))

    # First use, then once 60 s after the last write (at 60 s and at 120+ s).
    assert writes == [1, 0, 0, 0, 1, 0, 0, 1]
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at == NOW + timedelta(seconds=121)


def test_last_used_at_is_the_time_of_the_request(api, make_key):
    issued = make_key()

    with time_machine.travel(NOW, tick=False):
        api.get("/regions", **x_api_key(issued))

    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at == NOW


def test_validating_a_key_does_not_mark_it_used(api, make_key):
    checker = make_key(name="checker")
    checked = make_key(name="checked")

    response = api.post("/keys/validate", {"key": checked.value}, format="json", **bearer(checker))

    assert response.json()["valid"] is True
    assert ApiKey.objects.get(pk=checked.api_key.pk).last_used_at is None
