"""The key policy as its table: each rank × each kind of change, on a real key, through the services.

Every cell is tried twice: on a key where nobody decided that part yet (allowed unless the rule
is deny), and on one where the next rank up decided it (allowed only if the rule is allow).
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.accounts.models import Membership
from apps.keys import services
from apps.keys.choices import KeyStatus
from apps.keys.models import ApiKey
from apps.keys.policy import POLICY, STATUS, Actor, Change, NotAllowed, Rank, Rule

pytestmark = pytest.mark.django_db

A, U, D = "allow", "unless decided above", "deny"
# The specification, written out: rows are ranks, columns the kinds of change.
EXPECTED = {
    #                METADATA SCOPE LIMITS RESTRICT EXPIRY SUSPEND REACTIVATE ROTATE REVOKE DELETE
    Rank.NONE: (D, D, D, D, D, D, D, D, D, D),
    Rank.OWNER: (A, U, U, U, U, A, U, A, A, U),
    Rank.ORG_ADMIN: (A, U, U, U, U, A, U, A, A, U),
    Rank.STAFF: (A, U, U, U, U, A, U, A, A, U),
    Rank.OPERATOR: (A, A, A, A, A, A, A, A, A, A),
}
RULES = {A: Rule.ALLOW, U: Rule.UNLESS_DECIDED_ABOVE, D: Rule.DENY}
# The part of the key each change touches, as recorded in ApiKey.decided_by.
PART = {
    Change.METADATA: "name",
    Change.SCOPE: "scope",
    Change.LIMITS: "credits_per_minute",
    Change.RESTRICTIONS: "allowed_ips",
    Change.EXPIRY: "expires_at",
    Change.SUSPEND: STATUS,
    Change.REACTIVATE: STATUS,
    Change.ROTATE: STATUS,
    Change.REVOKE: STATUS,
    Change.DELETE: STATUS,
}


@pytest.fixture
def people(make_user, organization):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    Membership.objects.create(user=carol, organization=organization, role=Membership.Role.ADMIN)
    return {"alice": alice, "bob": bob, "carol": carol}


def actor_of(rank: Rank, people, organization) -> Actor:
    if rank is Rank.OPERATOR:
        return Actor("system")
    if rank is Rank.STAFF:
        return Actor("staff", standing=Rank.STAFF)
    user = {Rank.NONE: people["bob"], Rank.OWNER: people["alice"], Rank.ORG_ADMIN: people["carol"]}[rank]
    admin_of = frozenset([organization.pk]) if rank is Rank.ORG_ADMIN else frozenset()
    return Actor(f"user:{user.username}", standing=Rank.OWNER, user_id=user.pk, admin_of=admin_of)


def a_key(people, organization, change: Change, decided_by: Rank | None) -> ApiKey:
    """alice's key in acme, set up for `change` (suspended before a reactivation), part decided by `decided_by`."""
    name = f"{change}-{decided_by.name if decided_by else 'undecided'}"
    key = services.key_create(owner=people["alice"], name=name, actor=Actor("setup"), organization=organization).api_key
    if change in (Change.REACTIVATE, Change.DELETE):
        key.status = KeyStatus.SUSPENDED
    key.decided_by = {PART[change]: decided_by.label} if decided_by else {}
    key.save()
    return key


def apply(change: Change, key: ApiKey, actor: Actor) -> None:
    soon = timezone.now() + timedelta(days=3)
    calls = {
        Change.METADATA: lambda: services.key_update(key, actor=actor, name="renamed"),
        Change.SCOPE: lambda: services.key_update(key, actor=actor, scope="write"),
        Change.LIMITS: lambda: services.key_update(key, actor=actor, credits_per_minute=7),
        Change.RESTRICTIONS: lambda: services.key_update(key, actor=actor, allowed_ips=["10.0.0.0/8"]),
        Change.EXPIRY: lambda: services.key_update(key, actor=actor, expires_at=soon),
        Change.SUSPEND: lambda: services.key_suspend(key, actor=actor),
        Change.REACTIVATE: lambda: services.key_reactivate(key, actor=actor),
        Change.ROTATE: lambda: services.key_rotate(key, actor=actor),
        Change.REVOKE: lambda: services.key_revoke(key, actor=actor),
        Change.DELETE: lambda: services.key_delete(key, actor=actor),
    }
    calls[change]()


def allowed(change: Change, key: ApiKey, actor: Actor) -> bool:
    try:
        apply(change, key, actor)
    except NotAllowed:
        return False
    return True


def test_the_policy_table_is_the_specification():
    for rank, row in EXPECTED.items():
        assert [POLICY[(rank, change)] for change in Change] == [RULES[cell] for cell in row], rank


@pytest.mark.parametrize("rank", list(Rank), ids=lambda rank: rank.name)
def test_each_rank_on_a_key_nobody_above_it_decided(rank, people, organization):
    outcomes = {}
    for change in Change:
        key = a_key(people, organization, change, decided_by=None)
        outcomes[change] = allowed(change, key, actor_of(rank, people, organization))

    assert outcomes == {change: cell != D for change, cell in zip(Change, EXPECTED[rank], strict=True)}


@pytest.mark.parametrize("rank", [Rank.OWNER, Rank.ORG_ADMIN, Rank.STAFF], ids=lambda rank: rank.name)
def test_each_rank_on_a_key_the_next_rank_up_decided(rank, people, organization):
    outcomes = {}
    for change in Change:
        key = a_key(people, organization, change, decided_by=Rank(rank + 1))
        outcomes[change] = allowed(change, key, actor_of(rank, people, organization))

    assert outcomes == {change: cell == A for change, cell in zip(Change, EXPECTED[rank], strict=True)}


@pytest.mark.parametrize("rank", [Rank.OWNER, Rank.ORG_ADMIN, Rank.STAFF], ids=lambda rank: rank.name)
def test_a_decision_at_ones_own_rank_or_below_can_be_changed(rank, people, organization):
    for change in Change:
        key = a_key(people, organization, change, decided_by=rank)
        assert allowed(change, key, actor_of(rank, people, organization)), change


def test_a_change_records_who_decided_it(people, organization):
    key = a_key(people, organization, Change.LIMITS, decided_by=None)

    services.key_update(key, actor=actor_of(Rank.STAFF, people, organization), credits_per_minute=5)
    services.key_suspend(key, actor=actor_of(Rank.ORG_ADMIN, people, organization))

    assert ApiKey.objects.get(pk=key.pk).decided_by == {"credits_per_minute": "staff", "status": "org admin"}


@pytest.mark.parametrize("change", [Change.EXPIRY, Change.REACTIVATE, Change.ROTATE])
def test_an_expired_key_stays_expired_whoever_asks(people, organization, change):
    key = a_key(people, organization, change, decided_by=None)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    key.refresh_from_db()

    with pytest.raises(ValidationError) as error:
        apply(change, key, actor_of(Rank.OPERATOR, people, organization))

    assert "expired" in str(error.value)


@pytest.mark.parametrize("change", [c for c in Change if c not in (Change.METADATA, Change.REVOKE, Change.DELETE)])
def test_a_revoked_key_can_only_be_renamed_or_deleted(people, organization, change):
    key = a_key(people, organization, change, decided_by=None)
    ApiKey.objects.filter(pk=key.pk).update(status=KeyStatus.REVOKED)
    key.refresh_from_db()

    with pytest.raises(ValidationError):
        apply(change, key, actor_of(Rank.OPERATOR, people, organization))
