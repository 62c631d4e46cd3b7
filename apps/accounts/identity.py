"""Who is calling: one shape for every way of authenticating."""

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Caller:
    """An authenticated API caller (token subject, API key owner or signed-in user).

    Quacks enough like a Django user for DRF's permissions (`is_authenticated`).
    """

    user_id: str
    auth_method: str
    credits_per_minute: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    is_staff: bool = False
    scope: str | None = None
    organization: str | None = None
    # The credit pool this caller draws from (default: user:<user_id>).
    pool_key: str | None = None
    # True for an API key with its own (or its organization's) pool: applied even when RATE_LIMIT_ENABLED is off.
    pool_requested: bool = False
    # An API key's daily quota (credits per UTC day) and the counter it is kept in.
    daily_quota: int | None = None
    quota_key: str | None = None
    api_key: Any = None
    # The pools and daily quotas ([(key, limit)]) of the keys above an API key (the key that created
    # it, and so on up): its requests are charged to those too, so children cannot multiply them.
    ancestor_pools: tuple[tuple[str, int], ...] = ()
    ancestor_quotas: tuple[tuple[str, int], ...] = ()
    # Organization roles granted by the identity provider's claim ({slug: role}).
    organization_roles: dict[str, str] = field(default_factory=dict)

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self) -> str:
        return self.user_id

    def __str__(self) -> str:
        return f"{self.auth_method}:{self.user_id}"


# Django's user name column holds 150 characters: "idp:" and a subject of at most 146.
USERNAME_MAX_LENGTH = 150
IDP_PREFIX = "idp:"
# Long subjects are named by their SHA-256 under a prefix of its own: "idp:" + any subject is reachable
# by a short subject, so a hash under "idp:" could be claimed by a subject spelling it out.
IDP_HASHED_PREFIX = "idph:"


def idp_username(subject: str) -> str:
    """The local user name of an identity-provider subject: a namespace of its own, so a subject
    can never be a local account (or draw from its credit pool).

    Never a truncation: two subjects sharing their first 146 characters would share a user, its
    keys and its pool. A subject too long for the column is named by its SHA-256 instead.
    """
    name = f"{IDP_PREFIX}{subject}"
    if len(name) <= USERNAME_MAX_LENGTH:
        return name
    return f"{IDP_HASHED_PREFIX}{hashlib.sha256(subject.encode('utf-8', 'surrogatepass')).hexdigest()}"


def idp_label(subject: str) -> str:
    """The subject as logs and the audit name it: itself, or its hashed user name when too long to store."""
    name = idp_username(subject)
    return name if name.startswith(IDP_HASHED_PREFIX) else subject


def caller_of(user: Any) -> Caller | None:
    """The Caller behind DRF's `request.user`, or None for anonymous requests."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if isinstance(user, Caller):
        return user
    # A Django user signed in through the admin (password or OIDC session).
    return Caller(
        user_id=user.get_username(),
        auth_method="session",
        is_staff=bool(user.is_staff),
    )
