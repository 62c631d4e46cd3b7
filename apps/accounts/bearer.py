"""Which verifier judges a bearer token that is not Keeper's own: the newest Spare Cores API's four ways.

- static tokens (AUTH_STATIC_TOKENS), compared in constant time, first;
- then the remote verifiers, in the newest Spare Cores API's order: those whose regex matches the token
  (AUTH_API_KEY_TOKEN_REGEX, AUTH_JWT_TOKEN_REGEX, AUTH_TOKEN_INTROSPECTION_REGEX, in that order), then
  those without a regex (same order); a verifier whose regex does not match never sees the token.

The first valid verdict wins. A verifier that cannot be asked (its service down) does not stop the others;
when none accepts the token and one could not be asked, the answer is 503 (the token may be valid: deny
without calling it invalid), else 401.

Static tokens come first here, last upstream: a static token is a secret Keeper holds, so checking it
first never sends it to the identity provider or the key service, and it keeps working while they are
down. Only a token valid both as a static token and elsewhere is judged differently (never in practice).

Everything is checked when the process starts (apps.py): a bad regex, a half configuration or a
malformed AUTH_STATIC_TOKENS is an ImproperlyConfigured then, never a 500 per request.
"""

import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.jwt_tokens import JwtVerifier
from apps.accounts.key_service import RemoteKeyVerifier
from apps.accounts.verification import (
    MAX_CREDITS_PER_MINUTE,
    TokenVerdict,
    VerifierUnavailable,
    get_verifier,
)
from keeper.env import secret_list_entry

logger = logging.getLogger(__name__)

# As for KEEPER_API_KEYS: a static token is a long-lived secret, long enough not to be guessed.
STATIC_TOKEN_MIN_LENGTH = 32
STATIC_TOKEN_FIELDS = frozenset({"token", "subject", "api_credits_per_minute"})
# Keeper API keys travel as bearer tokens too: they are apps.keys' to judge, never these verifiers'.
API_KEY_PREFIX = "keeper_"
GENERIC_REFUSAL = "Invalid or expired token."


def _compiled(setting: str) -> re.Pattern[str] | None:
    pattern = getattr(settings, setting)
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ImproperlyConfigured(f"{setting} is not a valid regular expression: {exc}") from None


def _http_url(setting: str) -> None:
    value = getattr(settings, setting)
    if value and not value.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{setting} must be an http(s) URL")


def _needs(setting: str, *dependents: str) -> None:
    """Refuse settings that do nothing without `setting` (a half configuration is a mistake, not a choice)."""
    if not getattr(settings, setting):
        for name in dependents:
            if getattr(settings, name):
                raise ImproperlyConfigured(f"{name} is set but {setting} is not")


def check_bearer_settings() -> None:
    """ImproperlyConfigured on a half configuration of the JWT, API key service or introspection verifiers."""
    if settings.AUTH_JWT_JWKS_URL and settings.AUTH_JWT_PUBLIC_KEY:
        raise ImproperlyConfigured("Set AUTH_JWT_JWKS_URL or AUTH_JWT_PUBLIC_KEY, not both")
    jwt_configured = settings.AUTH_JWT_JWKS_URL or settings.AUTH_JWT_PUBLIC_KEY
    if not jwt_configured:
        for name in ("AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE", "AUTH_JWT_AUTHORIZED_PARTIES", "AUTH_JWT_TOKEN_REGEX"):
            if getattr(settings, name):
                raise ImproperlyConfigured(f"{name} is set but neither AUTH_JWT_JWKS_URL nor AUTH_JWT_PUBLIC_KEY is")
    _needs("AUTH_API_KEY_VERIFY_URL", "AUTH_API_KEY_VERIFY_BEARER", "AUTH_API_KEY_TOKEN_REGEX")
    _needs("AUTH_TOKEN_INTROSPECTION_URL", "AUTH_TOKEN_INTROSPECTION_REGEX")
    for name in ("AUTH_JWT_JWKS_URL", "AUTH_API_KEY_VERIFY_URL"):
        _http_url(name)


class StaticTokens:
    """AUTH_STATIC_TOKENS: a JSON array of {token, subject, api_credits_per_minute?}, held as SHA-256 digests."""

    def __init__(self, raw: str | None):
        self._entries: list[tuple[bytes, TokenVerdict]] = []
        if not raw:
            return
        try:
            entries = json.loads(raw)
        except ValueError:
            raise ImproperlyConfigured("AUTH_STATIC_TOKENS must be a JSON array") from None
        if not isinstance(entries, list):
            raise ImproperlyConfigured("AUTH_STATIC_TOKENS must be a JSON array of {token, subject} objects")
        seen: set[bytes] = set()
        for index, entry in enumerate(entries):
            digest, verdict = self._entry(index, entry)
            if digest in seen:
                label = f"AUTH_STATIC_TOKENS[{index}] ({verdict.user_id})"
                raise ImproperlyConfigured(f"{label}: the token is listed twice")
            seen.add(digest)
            self._entries.append((digest, verdict))

    @staticmethod
    def _entry(index: int, entry: Any) -> tuple[bytes, TokenVerdict]:
        # Messages name the entry (index, subject), never its token.
        token, subject, label = secret_list_entry(
            "AUTH_STATIC_TOKENS",
            index,
            entry,
            secret="token",
            name="subject",
            fields=STATIC_TOKEN_FIELDS,
            min_length=STATIC_TOKEN_MIN_LENGTH,
        )
        if token.startswith(API_KEY_PREFIX):
            raise ImproperlyConfigured(f"{label}: tokens starting with {API_KEY_PREFIX} are Keeper's API keys")
        credits = entry.get("api_credits_per_minute")
        if credits is not None and (
            isinstance(credits, bool) or not isinstance(credits, int) or not 0 < credits <= MAX_CREDITS_PER_MINUTE
        ):
            raise ImproperlyConfigured(
                f"{label}: api_credits_per_minute must be an integer from 1 to {MAX_CREDITS_PER_MINUTE}"
            )
        verdict = TokenVerdict(valid=True, user_id=subject, claims={"sub": subject}, credits_per_minute=credits)
        return hashlib.sha256(token.encode()).digest(), verdict

    def __bool__(self) -> bool:
        return bool(self._entries)

    def match(self, token: str) -> TokenVerdict | None:
        """The entry of `token`, comparing its digest with every entry's in constant time (no early exit)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = None
        for candidate, verdict in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = verdict
        return found


@dataclass(frozen=True)
class Method:
    name: str
    pattern: re.Pattern[str] | None
    verify: Callable[[str], TokenVerdict | None]
    # A valid verdict this process already holds (its L1 cache), without asking anyone.
    accepted_here: Callable[[str], TokenVerdict | None] = lambda token: None


class BearerVerifiers:
    def __init__(self):
        check_bearer_settings()
        self.static = StaticTokens(settings.AUTH_STATIC_TOKENS)
        self.jwt = JwtVerifier() if settings.AUTH_JWT_JWKS_URL or settings.AUTH_JWT_PUBLIC_KEY else None
        self.key_service = RemoteKeyVerifier() if settings.AUTH_API_KEY_VERIFY_URL else None
        methods = []
        if self.key_service is not None:
            methods.append(
                Method(
                    "api_key",
                    _compiled("AUTH_API_KEY_TOKEN_REGEX"),
                    self.key_service.verify,
                    self.key_service.accepted_here,
                )
            )
        if self.jwt is not None:
            methods.append(Method("jwt", _compiled("AUTH_JWT_TOKEN_REGEX"), self.jwt.verify))
        # Introspection stays get_verifier()'s, which reads AUTH_TOKEN_INTROSPECTION_URL on each call (as before
        # these verifiers existed): on when the URL is set, even if set after this object was built.
        methods.append(
            Method("introspection", _compiled("AUTH_TOKEN_INTROSPECTION_REGEX"), _introspect, _introspected_here)
        )
        self.methods = methods

    @property
    def enabled(self) -> bool:
        return bool(self.static or self.jwt or self.key_service or get_verifier())

    def route(self, token: str) -> list[Method]:
        """The verifiers that see `token`, in order: regex matched first, then those without a regex."""
        matched = [method for method in self.methods if method.pattern is not None and method.pattern.search(token)]
        return matched + [method for method in self.methods if method.pattern is None]

    def verify(self, token: str) -> TokenVerdict:
        """The first valid verdict; else VerifierUnavailable if a verifier could not be asked; else a rejection."""
        verdict = self.static.match(token)
        if verdict is not None:
            return verdict
        routed = self.route(token)
        # A token a later verifier accepted recently is not sent to the earlier ones again first: with them
        # down or slow, each of its requests would wait for them.
        for method in routed:
            verdict = method.accepted_here(token)
            if verdict is not None:
                return verdict
        unavailable: VerifierUnavailable | None = None
        rejections: dict[str, TokenVerdict] = {}
        for method in routed:
            try:
                verdict = method.verify(token)
            except VerifierUnavailable as exc:
                logger.error("Token verification by %s failed: %s", method.name, exc)
                unavailable = unavailable or exc
                continue
            if verdict is None:
                continue
            if verdict.valid:
                return verdict
            rejections[method.name] = verdict
        if unavailable is not None:
            raise unavailable
        # A token that is a JWT was most likely meant as one: its reason says most.
        rejection = rejections.get("jwt") or next(iter(rejections.values()), None)
        return rejection or TokenVerdict(valid=False, reason=GENERIC_REFUSAL)


def _introspect(token: str) -> TokenVerdict | None:
    verifier = get_verifier()
    return None if verifier is None else verifier.verify(token)


def _introspected_here(token: str) -> TokenVerdict | None:
    verifier = get_verifier()
    return None if verifier is None else verifier.accepted_here(token)


_verifiers: BearerVerifiers | None = None
_verifiers_lock = threading.Lock()


def get_bearer_verifiers() -> BearerVerifiers:
    """The process's bearer verifiers, built (and the configuration checked) once."""
    global _verifiers
    if _verifiers is None:
        with _verifiers_lock:
            if _verifiers is None:
                _verifiers = BearerVerifiers()
    return _verifiers


def reset_bearer_verifiers() -> None:
    global _verifiers
    _verifiers = None


def reset_on_setting_change(setting: str, **kwargs: Any) -> None:
    if setting.startswith("AUTH_") or setting in ("REDIS_URL", "CACHES"):
        reset_bearer_verifiers()
