"""Values that would be accepted and then useless, or silently changed, are refused with a clear 400;
endpoint patterns match every route of a resource; validate tells nothing about keys the caller may not see."""

import pytest

from apps.keys import secrets as key_secrets
from apps.keys.choices import Scope
from apps.keys.models import ApiKey
from apps.keys.services import Actor, key_revoke, key_suspend
from tests.catalog.upstream import sample_catalog
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(make_key):
    return make_key(name="writer", scope=Scope.WRITE)


def create(api, credential, **body):
    return api.post("/keys", {"name": "new", **body}, format="json", **bearer(credential))


def _mistyped(value: str) -> str:
    return value[:-1] + ("A" if value[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_mistyped(key_secrets.new_key(key_secrets.new_key_id())), "a Keeper key with a wrong checksum"),
        (key_secrets.new_key(key_secrets.new_key_id()), "Keeper-generated keys cannot be imported"),
        ("schlüssel-mit-umlaut-0123", "16 to 256 printable ASCII characters, without spaces"),
        ("a key with spaces in it 0123", "16 to 256 printable ASCII characters, without spaces"),
        ("short-0123", "16 to 256 printable ASCII characters, without spaces"),
    ],
    ids=["bad-checksum", "generated", "non-ascii", "spaces", "short"],
)
def test_an_imported_key_that_could_never_be_used_is_refused(api, writer, value, message):
    response = create(api, writer, key=value)

    assert response.status_code == 400
    assert message in response.json()["errors"]["key"][0]
    assert not ApiKey.objects.filter(name="new").exists()


def test_an_imported_key_of_printable_ascii_works(api, writer):
    value = "legacy-Key_0123!#$%&'*+.^`|~"

    assert create(api, writer, key=value).status_code == 201
    assert api.get("/me", **x_api_key(value)).status_code == 200


def test_a_cidr_range_with_host_bits_is_refused_not_silently_widened(api, writer):
    response = create(api, writer, allowed_ips=["1.2.3.4/8"])

    assert response.status_code == 400
    assert response.json()["errors"]["allowed_ips"] == ["'1.2.3.4/8' has host bits set: did you mean 1.0.0.0/8?"]


@pytest.mark.parametrize("pattern", ["/server/?", "/server/[ab]*", "server/*", "/ser ver"])
def test_endpoint_patterns_have_star_as_their_only_wildcard(api, writer, pattern):
    response = create(api, writer, blocked_endpoints=[pattern])

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["blocked_endpoints"]


# --- Patterns match routes, not strings -------------------------------------------


@pytest.fixture
def catalog(db, tmp_path):
    from apps.catalog.services import catalog_sync

    return catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")))


def _a_server(api) -> str:
    server = api.get("/servers?limit=1").json()[0]
    return f"{server['vendor_id']}/{server['api_reference']}"


def test_a_key_blocked_from_a_resource_is_blocked_at_each_of_its_routes(api, make_key, catalog):
    server = _a_server(api)
    blocked = make_key(name="no-servers", blocked_endpoints=["/server/*"])

    assert api.get(f"/server/{server}", **bearer(blocked)).status_code == 403
    assert api.get(f"/v2/server/{server}", **bearer(blocked)).status_code == 403
    assert api.get("/servers", **bearer(blocked)).status_code == 200


def test_a_key_allowed_a_resource_reaches_it_at_each_of_its_routes(api, make_key, catalog):
    server = _a_server(api)
    allowed = make_key(name="only-v2", allowed_endpoints=["/v2/server/*"])

    assert api.get(f"/v2/server/{server}", **bearer(allowed)).status_code == 200
    assert api.get(f"/server/{server}", **bearer(allowed)).status_code == 200
    assert api.get("/servers", **bearer(allowed)).status_code == 403


# --- POST /keys/validate and keys the caller may not see ----------------------------


def test_validate_answers_a_key_the_caller_may_not_see_exactly_as_an_unknown_one(api, make_key, bob):
    checker = make_key(name="checker")
    others = {
        "active": make_key(bob, name="active"),
        "suspended": make_key(bob, name="suspended"),
        "revoked": make_key(bob, name="revoked"),
        "ip-limited": make_key(bob, name="ip-limited", allowed_ips=["203.0.113.0/24"]),
        "endpoint-limited": make_key(bob, name="endpoint-limited", allowed_endpoints=["/me"]),
    }
    key_suspend(others["suspended"].api_key, actor=Actor("system"))
    key_revoke(others["revoked"].api_key, actor=Actor("system"))
    unknown = key_secrets.new_key(key_secrets.new_key_id())

    def validate(value: str) -> dict:
        response = api.post("/keys/validate", {"key": value, "endpoint": "/regions"}, format="json", **bearer(checker))
        assert response.status_code == 200
        return response.json()

    answers = {label: validate(issued.value) for label, issued in others.items()}

    assert all(answer == validate(unknown) for answer in answers.values())
    assert validate(unknown)["reason"] == "Invalid API key."
