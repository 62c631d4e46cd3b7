"""Bearer token verification: RFC 7662 introspection, CEL rules, and a two-level cache.

L1 is an in-process LRU with TTL (each process caches what the identity provider
said, nothing shared is decided here); L2 is Redis when REDIS_URL is set, so a
token verified by one process is known to all. Cache keys are HMACs of the
token with AUTH_TOKEN_CACHE_SALT, never the token.
"""

import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import requests
from django.conf import settings
from django.core.cache import caches

from apps.accounts.cel import CelEvaluationError, CelRule
from keeper.api.parsers import MAX_JSON_DEPTH, json_depth
from keeper.observability import metrics

logger = logging.getLogger(__name__)

CREDITS_CLAIM = "api_credits_per_minute"
# The largest pool a key's or an organization's column holds; a claim above it is unusable, like a negative one.
MAX_CREDITS_PER_MINUTE = 2**31 - 1
# An introspection answer is a few hundred bytes; reading more would let the provider fill a worker's memory.
MAX_INTROSPECTION_BYTES = 1024 * 1024


class VerifierUnavailable(Exception):
    """A service a bearer token's verdict needs did not answer usably (down, timeout, 5xx, garbage)."""


class IdentityProviderUnavailable(VerifierUnavailable):
    """The introspection endpoint did not answer usably (down, timeout, 5xx, garbage)."""


@dataclass
class TokenVerdict:
    """What Keeper concluded about a token, as cached."""

    valid: bool
    reason: str = ""
    user_id: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    credits_per_minute: int | None = None
    expires_at: float | None = None

    @property
    def is_staff(self) -> bool:
        return claims_grant_staff({**self.claims, **self.extra})


def claims_grant_staff(claims: dict[str, Any]) -> bool:
    """Staff when KEEPER_STAFF_CLAIM is true, or a list/space-separated string holding KEEPER_STAFF_GROUP."""
    value = claims.get(settings.KEEPER_STAFF_CLAIM)
    if value is True:
        return True
    if isinstance(value, str):
        value = value.split()
    return isinstance(value, list) and settings.KEEPER_STAFF_GROUP in value


class LocalTokenCache:
    """Bounded LRU with per-entry expiry, for one process."""

    def __init__(self, max_size: int):
        self.max_size = max_size
        self._entries: OrderedDict[str, tuple[float, TokenVerdict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> TokenVerdict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, verdict = entry
            if expires <= time.time():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return verdict

    def set(self, key: str, verdict: TokenVerdict, ttl: float) -> None:
        if ttl <= 0 or self.max_size <= 0:
            return
        with self._lock:
            self._entries[key] = (time.time() + ttl, verdict)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class SharedTokenCache:
    """L2 in Redis through the django-redis cache; a Redis failure is a miss, never an error."""

    prefix = "auth:token:"

    def get(self, key: str) -> TokenVerdict | None:
        try:
            data = caches["default"].get(self.prefix + key)
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to a miss
            logger.warning("Token cache (Redis) unavailable: %s", exc.__class__.__name__)
            return None
        if not isinstance(data, dict):
            return None
        verdict = TokenVerdict(**data)
        if verdict.expires_at is not None and verdict.expires_at <= time.time():
            return None
        return verdict

    def set(self, key: str, verdict: TokenVerdict, ttl: float) -> None:
        if ttl < 1:
            return
        try:
            caches["default"].set(self.prefix + key, asdict(verdict), timeout=int(ttl))
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to not caching
            logger.warning("Token cache (Redis) unavailable: %s", exc.__class__.__name__)


class IntrospectionClient:
    """POSTs the token to the RFC 7662 endpoint with HTTP Basic client authentication."""

    def __init__(self, url: str, client_id: str, client_secret: str, timeout: float):
        self.url = url
        self.auth = (client_id, client_secret)
        self.timeout = timeout
        self.session = requests.Session()

    def introspect(self, token: str) -> dict[str, Any]:
        try:
            with self.session.post(
                self.url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self.auth,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                stream=True,
            ) as response:
                if response.status_code != 200:
                    raise IdentityProviderUnavailable(f"introspection answered HTTP {response.status_code}")
                body = _read_at_most(response, MAX_INTROSPECTION_BYTES)
        except requests.RequestException as exc:
            raise IdentityProviderUnavailable(f"introspection request failed: {exc.__class__.__name__}") from exc
        return provider_claims(body)


def _read_at_most(
    response: requests.Response,
    limit: int,
    error: type[VerifierUnavailable] = IdentityProviderUnavailable,
    what: str = "introspection",
) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) > limit:
            raise error(f"{what} answered more than {limit} bytes")
    return bytes(body)


def provider_claims(body: bytes) -> dict[str, Any]:
    """The claims of an introspection answer, strictly (see json_object)."""
    return json_object(body, IdentityProviderUnavailable, "introspection")


def json_object(body: bytes, error: type[VerifierUnavailable], what: str) -> dict[str, Any]:
    """A service's answer, strictly: RFC 8259 JSON, an object, nested at most MAX_JSON_DEPTH; else `error`.

    Python's json module would accept NaN and Infinity (which no pool or expiry can hold) and
    recurse until RecursionError on deep nesting; orjson refuses both (it stops at 1,024 levels),
    and the depth bound keeps every later walk over the claims (CEL, the cache's pickling) shallow.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise error(f"{what} answered with invalid JSON") from exc
    if not isinstance(data, dict):
        raise error(f"{what} answered with a non-object")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise error(f"{what} answered claims nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def token_cache_key(salt: bytes, token: str, domain: str = "") -> str:
    """The cache key of a token: an HMAC, never the token; `domain` keeps one verifier's verdicts from another's."""
    return hmac.new(salt, (domain + token).encode(), hashlib.sha256).hexdigest()


class ClaimRules:
    """The CEL rules and the claims Keeper reads (credit pool), applied to the verified claims of any verifier."""

    def __init__(self):
        self.validation_rule = (
            CelRule(settings.AUTH_TOKEN_VALIDATION_CEL, "AUTH_TOKEN_VALIDATION_CEL")
            if settings.AUTH_TOKEN_VALIDATION_CEL
            else None
        )
        self.extra_fields_rule = (
            CelRule(settings.AUTH_TOKEN_EXTRA_FIELDS_CEL, "AUTH_TOKEN_EXTRA_FIELDS_CEL")
            if settings.AUTH_TOKEN_EXTRA_FIELDS_CEL
            else None
        )

    def verdict(self, claims: dict[str, Any], subject: str, expires_at: float | None) -> TokenVerdict:
        """Valid unless the validation rule refuses (or cannot be evaluated: deny when unsure)."""
        if self.validation_rule is not None:
            try:
                accepted = self.validation_rule.evaluate(claims)
            except CelEvaluationError:
                return TokenVerdict(valid=False, reason="Token rejected by the validation rule.")
            if accepted is not True:
                return TokenVerdict(valid=False, reason="Token rejected by the validation rule.")
        extra: dict[str, Any] = {}
        if self.extra_fields_rule is not None:
            try:
                result = self.extra_fields_rule.evaluate(claims)
            except CelEvaluationError as exc:
                logger.warning("AUTH_TOKEN_EXTRA_FIELDS_CEL failed for a token of %s: %s", subject, exc)
                result = {}
            if isinstance(result, dict):
                extra = result
            else:
                logger.warning("AUTH_TOKEN_EXTRA_FIELDS_CEL returned %s, not a map", type(result).__name__)
        return TokenVerdict(
            valid=True,
            user_id=subject,
            claims=claims,
            extra=extra,
            credits_per_minute=credits_from(extra.get(CREDITS_CLAIM, claims.get(CREDITS_CLAIM))),
            expires_at=expires_at,
        )


class VerdictCache:
    """L1 (this process) and L2 (Redis, when REDIS_URL is set) verdicts of one verifier, under HMACs of the token."""

    def __init__(self, domain: str = ""):
        self.domain = domain
        self.salt = settings.AUTH_TOKEN_CACHE_SALT.encode()
        self.l1 = LocalTokenCache(settings.AUTH_TOKEN_CACHE_L1_MAX_SIZE)
        self.l2 = SharedTokenCache() if settings.REDIS_URL else None

    def cache_key(self, token: str) -> str:
        return token_cache_key(self.salt, token, self.domain)

    def accepted_here(self, token: str) -> TokenVerdict | None:
        """A valid verdict on `token` this process holds (L1 only: no Redis round trip), else None."""
        verdict = self.l1.get(self.cache_key(token))
        if verdict is None or not verdict.valid:
            return None
        metrics.token_cache_lookup("l1")
        return verdict

    def get(self, key: str) -> TokenVerdict | None:
        verdict = self.l1.get(key)
        if verdict is not None:
            metrics.token_cache_lookup("l1")
            return verdict
        if self.l2 is not None:
            verdict = self.l2.get(key)
            if verdict is not None:
                metrics.token_cache_lookup("l2")
                self.l1.set(key, verdict, self._ttl(verdict, settings.AUTH_TOKEN_CACHE_L1_TTL_SECONDS))
                return verdict
        metrics.token_cache_lookup("miss")
        return None

    def _ttl(self, verdict: TokenVerdict, configured: float) -> float:
        ttl = configured if verdict.valid else min(configured, settings.AUTH_TOKEN_CACHE_NEGATIVE_TTL_SECONDS)
        if verdict.expires_at is not None:
            ttl = min(ttl, verdict.expires_at - time.time())
        return ttl

    def remember(self, key: str, verdict: TokenVerdict) -> None:
        self.l1.set(key, verdict, self._ttl(verdict, settings.AUTH_TOKEN_CACHE_L1_TTL_SECONDS))
        if self.l2 is not None:
            self.l2.set(key, verdict, self._ttl(verdict, settings.AUTH_TOKEN_CACHE_L2_TTL_SECONDS))


class TokenVerifier(VerdictCache):
    def __init__(self):
        super().__init__()
        self.client = IntrospectionClient(
            settings.AUTH_TOKEN_INTROSPECTION_URL,
            settings.AUTH_CLIENT_ID,
            settings.AUTH_CLIENT_SECRET,
            settings.AUTH_TOKEN_INTROSPECTION_TIMEOUT_SECONDS,
        )
        self.rules = ClaimRules()

    def verify(self, token: str) -> TokenVerdict:
        """The verdict on `token`, from cache or the identity provider.

        Raises IdentityProviderUnavailable when the provider cannot be asked and
        nothing is cached.
        """
        key = self.cache_key(token)
        verdict = self.get(key)
        if verdict is not None:
            return verdict
        with metrics.identity_provider_call():
            claims = self.client.introspect(token)
        verdict = self.judge(claims)
        self.remember(key, verdict)
        return verdict

    def judge(self, claims: dict[str, Any]) -> TokenVerdict:
        """Apply RFC 7662 and the CEL rules to an introspection response. Deny when unsure."""
        if claims.get("active") is not True:
            return TokenVerdict(valid=False, reason="Token is not active.")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            return TokenVerdict(valid=False, reason="Token has no subject.")
        expires_at = claims.get("exp")
        if expires_at is not None:
            if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
                return TokenVerdict(valid=False, reason="Token has a malformed expiry.")
            if expires_at <= time.time():
                return TokenVerdict(valid=False, reason="Token has expired.")
        return self.rules.verdict(claims, subject, float(expires_at) if expires_at is not None else None)


def credits_from(value: Any) -> int | None:
    """A usable pool size from a claim or extra field, else None (the default pool).

    CEL may compute a non-finite double (1.0 / 0.0): int() raises OverflowError or ValueError on those.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        credits = int(value)
    except (ValueError, OverflowError):
        return None
    return credits if 0 < credits <= MAX_CREDITS_PER_MINUTE else None


_verifier: TokenVerifier | None = None
_verifier_lock = threading.Lock()


def get_verifier() -> TokenVerifier | None:
    """The process's verifier, or None when introspection is off (no AUTH_TOKEN_INTROSPECTION_URL)."""
    global _verifier
    if not settings.AUTH_TOKEN_INTROSPECTION_URL:
        return None
    if _verifier is None:
        with _verifier_lock:
            if _verifier is None:
                _verifier = TokenVerifier()
    return _verifier


def reset_verifier() -> None:
    global _verifier
    _verifier = None


def reset_on_setting_change(setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUTH_") or setting in ("REDIS_URL", "CACHES"):
        reset_verifier()
