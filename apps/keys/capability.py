"""Capability tokens: short-lived JWTs, signed by Keeper, saying what a validated key may do.

`POST /keys/validate` answers a valid key with one (`token_issue`). A gateway validates a key once
and forwards the token: other backends verify it offline with /.well-known/jwks.json (until its
`exp`, whatever happened to the key since), and Keeper accepts it as `Authorization: Bearer` on
the catalog API (`token_authenticate`), as the key itself, with the key's limits as they are now
(its organization's pool included), and refuses it at once when the key is revoked, suspended,
changed, rotated or deleted (apps.keys.denylist), its owner or organization deleted included.

Claims: `iss`, `aud` (KEEPER_TOKEN_ISSUER, KEEPER_TOKEN_AUDIENCE), `sub` (the key's id), `iat`,
`exp` (`ttl_seconds` later, never after the key's own expiry), `jti`, and the key's `owner`,
`organization`, `scope`, `allowed_endpoints`, `blocked_endpoints`, `allowed_ips`,
`credits_per_minute`, `remaining_credits`, `daily_quota`, `remaining_quota` (at issue time).
The `jti` starts with the issue time in milliseconds (11 hex digits), which the deny list
compares with the time of the key's last change.
"""

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone

from apps.keys import denylist
from apps.keys.choices import KeyStatus
from apps.keys.models import ApiKey
from apps.keys.signing import ALGORITHM, KID_PREFIX, MAX_TOKEN_TTL_SECONDS, key_set

DEFAULT_TTL_SECONDS = 300
MIN_TTL_SECONDS = 1
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]
# Tokens already verified in this process (a gateway sends the same one for each request it forwards).
VERIFIED_CACHE_SIZE = 10_000
_JTI_TIME_DIGITS = 11

DENIAL_MESSAGES = {
    KeyStatus.REVOKED: "This API key has been revoked.",
    KeyStatus.SUSPENDED: "This API key is suspended.",
    KeyStatus.EXPIRED: "This API key has expired.",
    "deleted": "This API key has been deleted.",
    "unlisted": "This API key is not listed in KEEPER_API_KEYS at present.",
}
CHANGED_MESSAGE = "The API key changed after this capability token was issued: validate the key for a new one."


class TokenRefused(Exception):
    """A capability token that cannot be used; `status` is the HTTP status to answer (401 or 403)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    claims: dict[str, Any]


@dataclass(frozen=True)
class KeyLimits:
    """The key's limits as POST /keys/validate reports them, at issue time."""

    credits_per_minute: int
    remaining_credits: int
    daily_quota: int | None = None
    remaining_quota: int | None = None


# --- Issuing --------------------------------------------------------------------


def _jti(issued_at: float) -> str:
    return f"{int(issued_at * 1000):0{_JTI_TIME_DIGITS}x}{secrets.token_hex(8)}"


def _issued_ms(jti: Any) -> int | None:
    try:
        return int(jti[:_JTI_TIME_DIGITS], 16) if isinstance(jti, str) and len(jti) > _JTI_TIME_DIGITS else None
    except ValueError:
        return None


def issue_time() -> float:
    """The issue time of a token to be issued: take it before reading the key (see apps.keys.denylist)."""
    return time.time()


def token_issue(key: ApiKey, *, issued_at: float, ttl_seconds: int, limits: KeyLimits) -> IssuedToken:
    """A token for `key`, as it stood at `issued_at` (read the key after taking that time: see denylist)."""
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TOKEN_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between {MIN_TTL_SECONDS} and {MAX_TOKEN_TTL_SECONDS}")
    iat = int(issued_at)
    exp = iat + ttl_seconds
    if key.expires_at is not None:
        exp = min(exp, int(key.expires_at.timestamp()))
    claims = {
        "iss": settings.KEEPER_TOKEN_ISSUER,
        "aud": settings.KEEPER_TOKEN_AUDIENCE,
        "sub": key.key_id,
        "iat": iat,
        "exp": exp,
        "jti": _jti(issued_at),
        "owner": key.owner_name,
        "organization": key.organization_name,
        "scope": key.scope,
        "allowed_endpoints": list(key.allowed_endpoints),
        "blocked_endpoints": list(key.blocked_endpoints),
        "allowed_ips": list(key.allowed_ips),
        "credits_per_minute": limits.credits_per_minute,
        "remaining_credits": limits.remaining_credits,
        "daily_quota": limits.daily_quota,
        "remaining_quota": limits.remaining_quota,
    }
    kid, private_key = key_set.signer()
    token = jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})
    return IssuedToken(token, datetime.fromtimestamp(exp, UTC), claims)


# --- Recognising ----------------------------------------------------------------


def _segment(text: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # a header nested without end is no JWT
        return None


def looks_like_capability_token(token: str) -> bool:
    """A JWT that claims to be Keeper's (its kid, or its issuer): Keeper's to judge, never the identity provider's.

    Cheap: a split and, for JWTs only, two small base64 JSON segments (none of it is trusted).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return False
    header = _segment(parts[0])
    if isinstance(header, dict) and str(header.get("kid", "")).startswith(KID_PREFIX):
        return True
    payload = _segment(parts[1])
    return isinstance(payload, dict) and payload.get("iss") == settings.KEEPER_TOKEN_ISSUER


# --- Verifying at Keeper --------------------------------------------------------


@dataclass(frozen=True)
class VerifiedToken:
    """What checking a token's signature and claims found: fixed for the token, so cached by the process."""

    claims: dict[str, Any]
    kid: str
    issued_ms: int
    expires_at: int
    audience: str
    issuer: str


@dataclass(frozen=True)
class AuthenticatedToken:
    """A verified token and its key as the database holds it for this request (never a remembered copy)."""

    token: VerifiedToken
    key: ApiKey


class _VerifiedTokens:
    """Tokens whose signature and claims this process checked, by SHA-256 of the token (never the token).

    What is cached never changes for a token (its signature and claims), and its expiry, its key
    (with its owner and organization) and the deny list are read on every use, so the cache is exact.
    """

    def __init__(self, size: int = VERIFIED_CACHE_SIZE) -> None:
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> VerifiedToken | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
            return entry

    def put(self, digest: bytes, entry: VerifiedToken) -> None:
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, digest: bytes) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_tokens = _VerifiedTokens()


def _verify(token: str) -> VerifiedToken:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRefused("Malformed capability token.") from None
    if header.get("alg") != ALGORITHM:
        raise TokenRefused(f"Capability tokens are signed with {ALGORITHM}, not {header.get('alg')!r}.")
    public = key_set.public_key(str(header.get("kid", "")))
    if public is None:
        raise TokenRefused("This capability token is signed by a key Keeper does not publish.")
    try:
        claims = jwt.decode(
            token,
            public.key,
            algorithms=[ALGORITHM],
            audience=settings.KEEPER_TOKEN_AUDIENCE,
            issuer=settings.KEEPER_TOKEN_ISSUER,
            # iat is Keeper's own (the signature says so): a host whose clock is a little behind must not refuse it.
            options={"require": REQUIRED_CLAIMS, "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("This capability token has expired.") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused(f"This capability token is not for {settings.KEEPER_TOKEN_AUDIENCE!r}.") from None
    except jwt.InvalidIssuerError:
        raise TokenRefused("This capability token was not issued by this Keeper.") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("This capability token's signature does not match its contents.") from None
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"Invalid capability token: {exc}.") from None
    issued_ms = _issued_ms(claims["jti"])
    if issued_ms is None or not isinstance(claims["exp"], int):
        raise TokenRefused("Invalid capability token: malformed jti or exp.")
    return VerifiedToken(
        claims,
        public.kid,
        issued_ms,
        claims["exp"],
        settings.KEEPER_TOKEN_AUDIENCE,
        settings.KEEPER_TOKEN_ISSUER,
    )


def token_verify(token: str) -> VerifiedToken:
    """The token's claims if Keeper signed it, for this audience, and it has not expired.

    Signature and claims are checked once per process and token, then remembered: a gateway sends
    the same token with every request it forwards, and a signature check costs more than the rest
    of the request's authentication (bench/bench_tokens.py).
    """
    digest = hashlib.sha256(token.encode()).digest()
    entry = verified_tokens.get(digest)
    if (
        entry is None
        or entry.audience != settings.KEEPER_TOKEN_AUDIENCE
        or entry.issuer != settings.KEEPER_TOKEN_ISSUER
        # A key dropped as compromised (rotate_signing_key --compromised) takes its tokens with it.
        or key_set.public_key(entry.kid) is None
    ):
        entry = _verify(token)
        verified_tokens.put(digest, entry)
    if entry.expires_at <= time.time():
        verified_tokens.drop(digest)
        raise TokenRefused("This capability token has expired.")
    return entry


def token_authenticate(token: str, *, ip: str, path: str) -> AuthenticatedToken:
    """The verified token and its key, allowed to call `path` from `ip` now, or TokenRefused saying why.

    On every request: token_verify (from the cache after the first), then one query for the key as
    it is now (its status, limits, owner and organization, so that a change to any of them, or
    their deletion by any path, counts at once) and its deny-list entry, then its restrictions.
    """
    entry = token_verify(token)
    found = ApiKey.objects.for_verification(key_id=str(entry.claims["sub"]), denials_at=timezone.now())
    if not found:
        # Deleted, or its owner or organization deleted (the key goes with them).
        raise TokenRefused(DENIAL_MESSAGES["deleted"])
    key = found[0]
    denial = denylist.loaded_denial(key)
    if denial is not None and denial.refuses(entry.issued_ms):
        raise TokenRefused(DENIAL_MESSAGES.get(denial.reason, CHANGED_MESSAGE))
    status = key.effective_status()
    if status != KeyStatus.ACTIVE or not key.listed:
        raise TokenRefused(DENIAL_MESSAGES.get(status if key.listed else "unlisted", CHANGED_MESSAGE))
    if not key.owner_active:
        raise TokenRefused(ApiKey.OWNER_DEACTIVATED)
    if not key.allows_ip(ip):
        raise TokenRefused(f"This API key may not be used from {ip}.", status=403)
    if not key.allows_endpoint(path):
        raise TokenRefused(f"This API key may not call {path}.", status=403)
    return AuthenticatedToken(entry, key)


def forget_verified_tokens() -> None:
    """Forget this process's verified tokens and its copy of the key set (tests start from nothing)."""
    verified_tokens.clear()
    key_set.forget()
