"""Fixtures of the API key tests: people, organizations, keys, and per-process state reset between tests."""

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.models import Membership, Organization
from apps.accounts.verification import reset_verifier
from apps.keys import bootstrap, services
from apps.keys.capability import forget_verified_tokens
from apps.keys.traffic import traffic_buffer
from apps.keys.usage import usage_buffer
from apps.keys.views import watch_streams
from apps.throttling.services import reset_limiters
from tests.keys.helpers import owner_actor


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch) -> Iterator[None]:
    """Nothing a process keeps in memory (tokens, credit pools, quotas, verified imports, counters) leaks.

    A test's database rows are rolled back, but these live in module globals; on SQLite a
    rolled-back primary key is handed out again, so a stale entry would point at another test's key.
    """
    reset_verifier()
    reset_limiters()
    monkeypatch.setattr(services, "_verified_imports", services._VerifiedImports())
    monkeypatch.setattr(bootstrap, "_merged", False)
    # The test client never closes a streaming response it did not read: no slot outlives its test.
    monkeypatch.setattr(watch_streams, "_open", {})
    usage_buffer._tallies.clear()
    traffic_buffer.clear()
    forget_verified_tokens()
    yield
    usage_buffer._tallies.clear()
    traffic_buffer.clear()
    forget_verified_tokens()
    reset_verifier()
    reset_limiters()


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(username: str, **fields) -> object:
        return get_user_model().objects.create_user(username=username, password=None, **fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def staff(make_user):
    return make_user("root", is_staff=True)


@pytest.fixture
def make_key(db, alice) -> Callable[..., services.IssuedKey]:
    """Issue a key through the service (as the system would); defaults: alice's read key."""
    counter = iter(range(1, 10_000))

    def make(owner=None, *, name: str | None = None, **fields) -> services.IssuedKey:
        return services.key_create(
            owner=owner or alice,
            name=name or f"key-{next(counter)}",
            actor=owner_actor(owner or alice, fields.get("organization")),
            **fields,
        )

    return make


@pytest.fixture
def organization(db) -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


@pytest.fixture
def join(db) -> Callable[..., Membership]:
    def add(user, organization: Organization, role: str = Membership.Role.MEMBER) -> Membership:
        return Membership.objects.create(user=user, organization=organization, role=role)

    return add
