"""Who is calling: one shape for every way of authenticating."""

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


def idp_username(subject: str) -> str:
    """The local user name of an identity-provider subject: a namespace of its own, so a subject
    can never be a local account (or draw from its credit pool)."""
    return f"idp:{subject}"[:150]


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
