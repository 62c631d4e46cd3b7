"""Who is calling, and from where: one shape for every way of authenticating, and the client's address.

API plumbing every layer shares: the apps' authentication classes make a `Caller`, and the limits,
the views, the request log and the metrics read it back with `caller_of`; `client_ip` is the one
rule for believing X-Forwarded-For, so the limits, the logs and /metrics see the same address.
"""

import ipaddress
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
