"""Who is calling, and from where: one shape for every way of authenticating, and the client's address.

API plumbing every layer shares: the apps' authentication classes make a `Caller`, and the limits,
the views, the request log and the metrics read it back with `caller_of`; `client_ip` is the one
rule for believing X-Forwarded-For, so the limits, the logs and /metrics see the same address.
"""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


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
    # The local user name this caller acts as, when it differs from user_id (a token's subject "alice"
    # is the local user "idp:alice", who owns the keys that subject created).
    local_username: str | None = None

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self) -> str:
        return self.user_id

    @property
    def owner(self) -> str:
        """Whose things (watches, webhooks, events) this caller sees: the local user name it acts as, the
        same for a person's keys, capability tokens, admin session and (namespaced) identity-provider tokens."""
        return self.local_username or self.user_id

    def __str__(self) -> str:
        return f"{self.auth_method}:{self.user_id}"


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


class IsAuthenticatedCaller(BasePermission):
    """Any authenticated caller; anonymous callers get a 401."""

    def has_permission(self, request: Request, view) -> bool:
        return caller_of(request.user) is not None


class IsStaffCaller(BasePermission):
    """Staff users, staff tokens and admin-scoped API keys; others get a 403, anonymous a 401."""

    message = "Only staff may do this."

    def has_permission(self, request: Request, view) -> bool:
        caller = caller_of(request.user)
        return caller is not None and (caller.is_staff or caller.scope == "admin")


def presents_credentials(request: HttpRequest) -> bool:
    """Whether the request carries anything an authentication class reads: an Authorization or X-API-Key
    header, or the session cookie. Read from the headers only: no lookup, no session load."""
    meta = request.META
    return bool(
        meta.get("HTTP_AUTHORIZATION") or meta.get("HTTP_X_API_KEY") or settings.SESSION_COOKIE_NAME in request.COOKIES
    )


class CredentialAuthentication:
    """Marks a DRF authentication class that finds no caller in a request without credentials
    (`presents_credentials` false): KeeperViewMixin then skips asking it for anonymous requests."""

    anonymous_without_credentials = True


@lru_cache(maxsize=1)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(tuple(settings.RATE_LIMIT_TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the nearest untrusted hop of X-Forwarded-For when the peer is a trusted proxy.

    Reads only `request.META`: gunicorn's access log (keeper/observability/gunicorn.py) passes its WSGI environ.
    """
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    if not settings.RATE_LIMIT_TRUSTED_PROXIES or not _is_trusted(address):
        return address
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a forged or garbled header: fall back to the proxy itself
        if not _is_trusted(hop):
            return hop
    return hops[0] if hops else address


# --- Callers rebuilt after their request is gone --------------------------------------
# Work done later on a caller's behalf (a watch re-run after each sync) must run as that caller would
# now: with its key's current limits, refused once the key is revoked. `caller_reference` stores who it
# was (never a secret); `load_caller` rebuilds the Caller from that. Apps register how for their
# credentials (apps/keys: API keys and capability tokens) in AppConfig.ready; any other caller (a
# session, an identity-provider token) is kept as a snapshot of its Caller fields.


class CallerUnavailable(Exception):
    """The caller a reference names cannot act now; the message says why (revoked key, deactivated user...)."""


@dataclass(frozen=True)
class CallerLoader:
    """How one kind of credential is referred to and rebuilt.

    `refer(caller)`: the JSON reference for a caller of this kind, or None when the caller is not one.
    `load(reference, path)`: the Caller as it stands now, allowed to call `path`, or CallerUnavailable.
    """

    kind: str
    refer: Callable[[Caller], dict[str, Any] | None]
    load: Callable[[dict[str, Any], str], Caller]


_caller_loaders: dict[str, CallerLoader] = {}

# The fields of a snapshot: what a Caller without a registered kind is rebuilt from (no secrets in a Caller).
_SNAPSHOT_FIELDS = (
    "user_id",
    "auth_method",
    "credits_per_minute",
    "is_staff",
    "scope",
    "organization",
    "pool_key",
    "pool_requested",
    "organization_roles",
    "local_username",
)


def register_caller_loader(loader: CallerLoader) -> None:
    """Register how callers of `loader.kind` are referred to and rebuilt (idempotent per kind)."""
    _caller_loaders[loader.kind] = loader


def caller_reference(caller: Caller) -> dict[str, Any]:
    """What to store to rebuild `caller` later: a registered kind's reference, else a snapshot."""
    for loader in _caller_loaders.values():
        reference = loader.refer(caller)
        if reference is not None:
            return {"kind": loader.kind, **reference}
    return {"kind": "snapshot", **{name: getattr(caller, name) for name in _SNAPSHOT_FIELDS}}


def load_caller(reference: dict[str, Any], path: str) -> Caller:
    """The Caller `reference` names, as it may act now on `path`; CallerUnavailable says why it cannot."""
    kind = reference.get("kind")
    if kind == "snapshot":
        return _load_snapshot(reference)
    loader = _caller_loaders.get(kind)  # type: ignore[arg-type]
    if loader is None:
        raise CallerUnavailable(f"Callers of kind {kind!r} cannot be rebuilt here.")
    return loader.load(reference, path)


def _load_snapshot(reference: dict[str, Any]) -> Caller:
    """A session user must still exist, be active and be staff to act as staff; any other snapshot (an
    identity-provider token: Keeper cannot ask the provider later) is refused once its local user is
    deactivated."""
    from django.contrib.auth import get_user_model

    caller = Caller(**{name: reference[name] for name in _SNAPSHOT_FIELDS if name in reference})
    users = get_user_model()
    user = users.objects.filter(**{users.USERNAME_FIELD: caller.owner}).first()
    if user is None and caller.auth_method == "session":
        raise CallerUnavailable(f"The user {caller.owner} no longer exists.")
    if user is not None and not user.is_active:
        raise CallerUnavailable(f"The user {caller.owner} is deactivated.")
    if caller.auth_method == "session":
        caller.is_staff = bool(user.is_staff)
    return caller
