"""Who may do what to which API key: one table, called by the API, the admin and the bootstrap merge.

Two rules, checked on every change a service makes:

1. **Rank.** An actor stands at a rank over a key: its owner, an admin of its organization, staff,
   or the operator (the deployment itself: KEEPER_API_KEYS and system jobs). Each field of a key,
   and its suspension, remembers the rank that last decided it (`ApiKey.decided_by`); POLICY
   says, per rank and kind of change, whether the change is allowed, allowed unless a higher rank
   decided that part of the key, or denied. So an owner cannot lift a limit, widen a
   restriction, extend an expiry or end a suspension that staff set.
2. **Ceiling.** Below staff, nobody hands out more than their own credential has: a key's scope,
   credits per minute, daily quota, endpoints, IPs and expiry are at most the actor's own (a
   token's credits are its `api_credits_per_minute`). A restricted key's children are at least as
   restricted: what a request leaves out is inherited from the actor's key. They also draw from its
   pool and quota (`ApiKey.parent`, `Ceiling.key`): children cannot multiply their parent's limits.

State: a revoked key can only be renamed or deleted; an expired key stays expired (its expiry
cannot be changed; rotate refuses it; make a new key). Those refusals are KeyConflict (409),
the others NotAllowed (403).
"""

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied

from apps.keys import endpoints
from apps.keys.choices import SCOPE_RANK, KeyStatus, Scope
from keeper.api.exceptions import ConflictError


class Rank(IntEnum):
    NONE = 0  # may not see the key
    OWNER = 1  # the owner: their session, token, or one of their keys
    ORG_ADMIN = 2  # an admin of the key's organization
    STAFF = 3  # staff users, staff tokens, admin-scoped keys
    OPERATOR = 4  # the deployment: KEEPER_API_KEYS, system jobs

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


class Change(StrEnum):
    METADATA = "metadata"  # name, description
    SCOPE = "scope"
    LIMITS = "limits"  # credits_per_minute, daily_quota, organization (whose pool it draws from)
    RESTRICTIONS = "restrictions"  # allowed_endpoints, blocked_endpoints, allowed_ips
    EXPIRY = "expiry"
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    ROTATE = "rotate"
    REVOKE = "revoke"
    DELETE = "delete"


class Rule(StrEnum):
    ALLOW = "allow"
    UNLESS_DECIDED_ABOVE = "allow unless a higher rank decided it"
    DENY = "deny"


FIELD_CHANGES: dict[str, Change] = {
    "name": Change.METADATA,
    "description": Change.METADATA,
    "scope": Change.SCOPE,
    "credits_per_minute": Change.LIMITS,
    "daily_quota": Change.LIMITS,
    "organization": Change.LIMITS,
    "allowed_endpoints": Change.RESTRICTIONS,
    "blocked_endpoints": Change.RESTRICTIONS,
    "allowed_ips": Change.RESTRICTIONS,
    "expires_at": Change.EXPIRY,
}
# What a status change is checked against in ApiKey.decided_by.
STATUS = "status"

_A, _U, _D = Rule.ALLOW, Rule.UNLESS_DECIDED_ABOVE, Rule.DENY
_COLUMNS = list(Change)
# fmt: off
_TABLE = {
    #                 METADATA SCOPE LIMITS RESTRICT EXPIRY SUSPEND REACTIVATE ROTATE REVOKE DELETE
    Rank.NONE:       (_D,      _D,   _D,    _D,      _D,    _D,     _D,        _D,    _D,    _D),
    Rank.OWNER:      (_A,      _U,   _U,    _U,      _U,    _A,     _U,        _A,    _A,    _U),
    Rank.ORG_ADMIN:  (_A,      _U,   _U,    _U,      _U,    _A,     _U,        _A,    _A,    _U),
    Rank.STAFF:      (_A,      _U,   _U,    _U,      _U,    _A,     _U,        _A,    _A,    _U),
    Rank.OPERATOR:   (_A,      _A,   _A,    _A,      _A,    _A,     _A,        _A,    _A,    _A),
}
# fmt: on
POLICY: dict[tuple[Rank, Change], Rule] = {
    (rank, change): rule for rank, rules in _TABLE.items() for change, rule in zip(_COLUMNS, rules, strict=True)
}
# Kinds of change still possible on a revoked key, and on an expired one.
AFTER_REVOCATION = {Change.METADATA, Change.REVOKE, Change.DELETE}
NOT_AFTER_EXPIRY = {Change.EXPIRY, Change.REACTIVATE, Change.ROTATE}


_DONE = {
    Change.METADATA: "renamed",
    Change.SCOPE: "given another scope",
    Change.LIMITS: "given other limits",
    Change.RESTRICTIONS: "given other restrictions",
    Change.EXPIRY: "given another expiry",
    Change.SUSPEND: "suspended",
    Change.REACTIVATE: "reactivated",
    Change.ROTATE: "rotated",
    Change.REVOKE: "revoked",
    Change.DELETE: "deleted",
}


class NotAllowed(PermissionDenied):
    """The policy refuses a change (a 403 in the API, a message in the admin)."""


class KeyConflict(ConflictError):
    """The key's state (or another key) rules the change out, whoever asks: a 409 in the API."""


@dataclass(frozen=True)
class Ceiling:
    """The most an actor can hand out: its own credential's limits; None means unbounded."""

    scope: str = Scope.ADMIN
    credits_per_minute: int | None = None
    daily_quota: int | None = None
    allowed_endpoints: tuple[str, ...] | None = None
    blocked_endpoints: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    # True when the credits are a pool of the actor's own key (a child then inherits them).
    own_pool: bool = False
    # The actor's key (its pk), when the actor is a key: the keys it creates are its children and
    # draw from its pool and quota too, so that children cannot multiply its limits.
    key: int | None = None

    @classmethod
    def of_key(cls, key: Any) -> "Ceiling":
        return cls(
            scope=key.scope,
            credits_per_minute=key.pool_size or settings.RATE_LIMIT_CREDITS_PER_MINUTE,
            daily_quota=key.daily_quota,
            allowed_endpoints=tuple(key.allowed_endpoints) or None,
            blocked_endpoints=tuple(key.blocked_endpoints),
            allowed_ips=tuple(key.allowed_ips) or None,
            expires_at=key.expires_at,
            own_pool=bool(key.credits_per_minute),
            key=key.pk,
        )

    @classmethod
    def of_caller(cls, scope: str, credits_per_minute: int | None) -> "Ceiling":
        """A token or a session: its scope and credit pool, nothing else bounded."""
        return cls(scope=scope, credits_per_minute=credits_per_minute or settings.RATE_LIMIT_CREDITS_PER_MINUTE)


UNBOUNDED = Ceiling()


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a name for the audit log, and how far they reach.

    `standing` is STAFF or OPERATOR for those above every key, else OWNER: such an actor's rank
    over a key then depends on the key (its own, its organization's, or none). An Actor with a
    name only is the system itself (operator rank): the API and the admin build theirs with
    the caller's standing, user, scope, ceiling and organizations.
    """

    name: str
    ip: str | None = None
    standing: Rank = Rank.OPERATOR
    user_id: int | None = None
    scope: str = Scope.ADMIN
    ceiling: Ceiling = UNBOUNDED
    admin_of: frozenset[int] = field(default_factory=frozenset)

    def rank_over(self, *, owner_id: int | None, organization_id: int | None) -> Rank:
        if self.standing >= Rank.STAFF:
            return self.standing
        if organization_id is not None and organization_id in self.admin_of:
            return Rank.ORG_ADMIN
        if owner_id is not None and owner_id == self.user_id:
            return Rank.OWNER
        return Rank.NONE

    @property
    def bounded(self) -> bool:
        return self.standing < Rank.STAFF


def decided_rank(key: Any, part: str) -> Rank:
    name = (key.decided_by or {}).get(part)
    return Rank[name.upper().replace(" ", "_")] if name else Rank.NONE


# --- The checks the services call -------------------------------------------------


def check_change(actor: Actor, key: Any, change: Change, parts: list[str] | tuple[str, ...] = ()) -> Rank:
    """Refuse (NotAllowed) unless `actor` may make `change` to `key`; returns the actor's rank over it.

    `parts` are the fields changed (or STATUS), whose recorded deciders are compared with the actor.
    """
    if actor.bounded and not Scope.covers(actor.scope, Scope.WRITE):
        raise NotAllowed(f"Changing keys needs the write scope; yours is {actor.scope}.")
    rank = actor.rank_over(owner_id=key.owner_id, organization_id=key.organization_id)
    rule = POLICY[(rank, change)]
    if rule is Rule.DENY:
        raise NotAllowed("You may not change this key.")
    if key.status == KeyStatus.REVOKED and change not in AFTER_REVOCATION:
        raise KeyConflict({STATUS: f"A revoked key cannot be {_DONE[change]}; it can only be renamed or deleted."})
    if key.is_expired() and change in NOT_AFTER_EXPIRY:
        raise KeyConflict({STATUS: f"An expired key cannot be {_DONE[change]}: it stays expired; issue a new key."})
    if rule is Rule.UNLESS_DECIDED_ABOVE:
        for part in parts:
            decider = decided_rank(key, part)
            if decider > rank:
                what = "its suspension" if part == STATUS else part
                raise NotAllowed(f"{what} of this key was set by {decider.label}; only {decider.label} can change it.")
    if actor.bounded and not Scope.covers(actor.scope, key.scope):
        raise NotAllowed(f"This key has the {key.scope} scope, above yours ({actor.scope}).")
    return rank


def check_create(actor: Actor, *, owner_id: int, organization_id: int | None) -> Rank:
    if actor.bounded and not Scope.covers(actor.scope, Scope.WRITE):
        raise NotAllowed(f"Creating keys needs the write scope; yours is {actor.scope}.")
    rank = actor.rank_over(owner_id=owner_id, organization_id=organization_id)
    if rank is Rank.NONE:
        if organization_id is not None:
            raise NotAllowed("Only admins of that organization (or staff) manage its keys.")
        raise NotAllowed("Only staff may create keys for someone else.")
    return rank


def check_organization(actor: Actor, organization: Any) -> None:
    """Putting a key into an organization (its pool) takes an admin of it, or staff."""
    if organization is not None and actor.bounded and organization.pk not in actor.admin_of:
        raise NotAllowed(f"Only admins of {organization.slug} manage its keys.")


def within_ceiling(actor: Actor, values: dict[str, Any], *, creating: bool, organization: Any = None) -> dict:
    """`values` checked against the actor's own limits; when creating, omitted limits are inherited.

    Returns the values to store (with inherited ones added). Staff and the operator are unbounded.
    """
    if not actor.bounded:
        return values
    ceiling = actor.ceiling
    values = dict(values)
    if "scope" in values and SCOPE_RANK[values["scope"]] > SCOPE_RANK[ceiling.scope]:
        raise NotAllowed(f"You cannot grant the {values['scope']} scope (yours is {ceiling.scope}).")
    _check_credits(ceiling, values, creating, organization)
    _check_bounded_number(ceiling.daily_quota, "daily_quota", "daily quota", values, creating)
    _check_endpoints(ceiling, values, creating)
    _check_ips(ceiling, values, creating)
    _check_expiry(ceiling, values, creating)
    return values


def _check_credits(ceiling: Ceiling, values: dict, creating: bool, organization: Any) -> None:
    limit = ceiling.credits_per_minute
    if limit is None:
        return
    if "credits_per_minute" not in values:
        if not creating:
            return
        if ceiling.own_pool or (organization is None and settings.RATE_LIMIT_CREDITS_PER_MINUTE > limit):
            values["credits_per_minute"] = limit  # the child's pool is no bigger than the parent's
        return
    asked = values["credits_per_minute"]
    if asked is None:
        # No pool of its own: it draws from its organization's (set by staff) or the default.
        if organization is None and settings.RATE_LIMIT_CREDITS_PER_MINUTE > limit:
            raise NotAllowed(
                f"Without credits_per_minute the key would draw {settings.RATE_LIMIT_CREDITS_PER_MINUTE} "
                f"credits a minute, more than your own {limit}."
            )
        return
    if asked > limit:
        raise NotAllowed(f"You cannot grant {asked} credits per minute: your own pool is {limit}.")


def _check_bounded_number(limit: int | None, name: str, label: str, values: dict, creating: bool) -> None:
    if limit is None:
        return
    if name not in values:
        if creating:
            values[name] = limit
        return
    asked = values[name]
    if asked is None or asked > limit:
        shown = "no" if asked is None else asked
        raise NotAllowed(f"You cannot grant a {label} of {shown}: yours is {limit}.")


def _check_endpoints(ceiling: Ceiling, values: dict, creating: bool) -> None:
    if ceiling.allowed_endpoints is not None:
        if "allowed_endpoints" not in values:
            if creating:
                values["allowed_endpoints"] = list(ceiling.allowed_endpoints)
        else:
            asked = values["allowed_endpoints"] or []
            if not asked:
                raise NotAllowed("You cannot grant every endpoint: your own key is limited to some.")
            for pattern in asked:
                if not any(endpoints.covers(mine, pattern) for mine in ceiling.allowed_endpoints):
                    raise NotAllowed(f"You cannot grant {pattern}: it is outside your own endpoints.")
    if ceiling.blocked_endpoints:
        if "blocked_endpoints" not in values:
            if creating:
                values["blocked_endpoints"] = list(ceiling.blocked_endpoints)
            return
        asked = values["blocked_endpoints"] or []
        for mine in ceiling.blocked_endpoints:
            if not any(endpoints.covers(pattern, mine) for pattern in asked):
                raise NotAllowed(f"The key must stay blocked from {mine}, as your own key is.")


def _check_ips(ceiling: Ceiling, values: dict, creating: bool) -> None:
    if ceiling.allowed_ips is None:
        return
    if "allowed_ips" not in values:
        if creating:
            values["allowed_ips"] = list(ceiling.allowed_ips)
        return
    asked = values["allowed_ips"] or []
    if not asked:
        raise NotAllowed("You cannot grant every IP: your own key is limited to some.")
    mine = [ipaddress.ip_network(network) for network in ceiling.allowed_ips]
    for network in asked:
        wanted = ipaddress.ip_network(network)
        if not any(wanted.version == own.version and wanted.subnet_of(own) for own in mine):
            raise NotAllowed(f"You cannot grant {network}: it is outside your own IPs.")


def _check_expiry(ceiling: Ceiling, values: dict, creating: bool) -> None:
    limit = ceiling.expires_at
    if limit is None:
        return
    if "expires_at" not in values:
        if creating:
            values["expires_at"] = limit
        return
    asked = values["expires_at"]
    if asked is None or asked > limit:
        raise NotAllowed(f"The key cannot outlive your own, which expires at {limit:%Y-%m-%dT%H:%M:%SZ}.")


def record_decisions(key: Any, rank: Rank, parts: list[str] | tuple[str, ...]) -> list[str]:
    """Note `rank` as the decider of `parts`; returns the model fields to save."""
    if not parts:
        return []
    decided = dict(key.decided_by or {})
    for part in parts:
        decided[part] = rank.label
    if decided == key.decided_by:
        return []
    key.decided_by = decided
    return ["decided_by"]
