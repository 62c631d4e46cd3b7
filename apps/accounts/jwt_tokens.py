"""JWT access tokens verified locally (PyJWT): RS256 or ES256, by a key of AUTH_JWT_JWKS_URL or AUTH_JWT_PUBLIC_KEY.

Only the configured key source is ever read: a token's own `jku`, `x5u`, `jwk` or `x5c` headers are ignored,
so a token cannot make Keeper fetch a URL or trust a key it brings along. The JWKS is cached per process
(public data: nothing shared is decided from it) for AUTH_JWT_JWKS_CACHE_TTL_SECONDS, and fetched again
early for an unknown `kid` at most once per JWKS_MIN_REFETCH_SECONDS, so a flood of made-up kids costs
the JWKS server one request per interval and process.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.verification import (
    ClaimRules,
    TokenVerdict,
    VerifierUnavailable,
    _read_at_most,
    json_object,
)
from keeper.api.parsers import MAX_JSON_DEPTH, json_depth

logger = logging.getLogger(__name__)

# The only algorithms accepted, each for its own key type: never HS256 (a public key is no secret), never none.
ALGORITHM_OF_KEY = {"RSA": "RS256", "EC": "ES256"}
ALGORITHMS = frozenset(ALGORITHM_OF_KEY.values())
# Clocks of the issuer and Keeper differ a little; exp and nbf are checked with this much slack.
LEEWAY_SECONDS = 30
# An unknown kid fetches the JWKS again at most this often (per process).
JWKS_MIN_REFETCH_SECONDS = 10
# A key set that cannot be fetched again is used this long past its TTL (keys rotate slowly; the issuer may blip).
JWKS_MAX_STALE_SECONDS = 3600
# A JWKS is a few kilobytes with a handful of keys; more would let the server fill a worker's memory or CPU.
MAX_JWKS_BYTES = 256 * 1024
MAX_JWKS_KEYS = 50
MIN_RSA_KEY_BITS = 2048


class JwksUnavailable(VerifierUnavailable):
    """The JWKS could not be fetched (down, timeout, not 200, not a usable key set) and no usable copy is cached."""


@dataclass(frozen=True)
class VerificationKey:
    algorithm: str
    key: Any


def key_of_jwk(jwk: Any) -> tuple[str | None, VerificationKey] | None:
    """The (kid, key) of a JWK usable for RS256/ES256 signatures, else None (other types and uses are skipped)."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in ALGORITHM_OF_KEY:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    algorithm = ALGORITHM_OF_KEY[jwk["kty"]]
    if jwk.get("alg", algorithm) != algorithm:
        return None
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    try:
        key = jwt.PyJWK(jwk, algorithm).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    if not _strong_enough(key):
        return None
    return kid, VerificationKey(algorithm, key)


def _strong_enough(key: Any) -> bool:
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size >= MIN_RSA_KEY_BITS
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def configured_public_key(pem: str) -> VerificationKey:
    """AUTH_JWT_PUBLIC_KEY as a key: an RSA key of 2048 bits or more (RS256), or a P-256 key (ES256)."""
    # An environment variable often carries the PEM on one line, with literal \n.
    text = pem.replace("\\n", "\n").strip()
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise ImproperlyConfigured("AUTH_JWT_PUBLIC_KEY is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey) and _strong_enough(key):
        return VerificationKey("RS256", key)
    if isinstance(key, ec.EllipticCurvePublicKey) and _strong_enough(key):
        return VerificationKey("ES256", key)
    raise ImproperlyConfigured(
        f"AUTH_JWT_PUBLIC_KEY must be an RSA key of at least {MIN_RSA_KEY_BITS} bits (RS256) or a P-256 key (ES256)"
    )


class JwksKeys:
    """The signing keys at a JWKS URL, by kid: fetched when older than the TTL, and again for an unknown kid
    at most once per JWKS_MIN_REFETCH_SECONDS; a failed fetch is not retried within that interval either."""

    def __init__(self, url: str, timeout: float, ttl: float):
        self.url = url
        self.timeout = timeout
        self.ttl = ttl
        self.session = requests.Session()
        self._keys: dict[str | None, VerificationKey] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._refetched_at: float | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key `kid` names (a token without kid: the set's only key), None when the set has none.

        Raises JwksUnavailable when the set cannot be fetched and the answer depends on it: no copy within
        JWKS_MAX_STALE_SECONDS, or a kid that is not in the copy held while fetching a newer one fails.
        """
        # One fetch at a time per process; the others wait for it (bounded by the timeout) and use its keys.
        with self._lock:
            now = time.time()
            fetched = False
            if self._keys is None or now - self._fetched_at >= self.ttl:
                fetched = self._refresh(now)
            key = self._lookup(kid)
            if key is not None:
                return key
            if now - self._fetched_at >= self.ttl or self._failed_recently(now):
                raise JwksUnavailable("the token's key is not among those held, and the JWKS cannot be fetched now")
            if fetched or not self._may_refetch(now):
                return None
            self._refetched_at = now
            if not self._refresh(now):
                raise JwksUnavailable("the token's key is not among those held, and the JWKS cannot be fetched now")
            return self._lookup(kid)

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        keys = self._keys or {}
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    def _may_refetch(self, now: float) -> bool:
        return self._refetched_at is None or now - self._refetched_at >= JWKS_MIN_REFETCH_SECONDS

    def _failed_recently(self, now: float) -> bool:
        return self._failed_at is not None and now - self._failed_at < JWKS_MIN_REFETCH_SECONDS

    def _refresh(self, now: float) -> bool:
        """Fetch the set (True); on failure keep a copy younger than TTL + JWKS_MAX_STALE_SECONDS (False) or raise."""
        if self._failed_recently(now):
            if self._usable(now):
                return False
            raise JwksUnavailable(f"the JWKS could not be fetched less than {JWKS_MIN_REFETCH_SECONDS} s ago")
        try:
            self._keys = self._fetch()
        except JwksUnavailable as exc:
            self._failed_at = now
            if not self._usable(now):
                raise
            logger.warning("JWKS refresh failed, keeping the keys fetched %.0f s ago: %s", now - self._fetched_at, exc)
            return False
        self._fetched_at = now
        self._failed_at = None
        return True

    def _usable(self, now: float) -> bool:
        return self._keys is not None and now - self._fetched_at < self.ttl + JWKS_MAX_STALE_SECONDS

    def _fetch(self) -> dict[str | None, VerificationKey]:
        try:
            # No redirects: the configured URL is the one place keys come from.
            with self.session.get(
                self.url,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"the JWKS URL answered HTTP {response.status_code}")
                body = _read_at_most(response, MAX_JWKS_BYTES, JwksUnavailable, "the JWKS URL")
        except requests.RequestException as exc:
            raise JwksUnavailable(f"the JWKS request failed: {exc.__class__.__name__}") from exc
        entries = json_object(body, JwksUnavailable, "the JWKS URL").get("keys")
        if not isinstance(entries, list):
            raise JwksUnavailable("the JWKS URL answered no list of keys")
        if len(entries) > MAX_JWKS_KEYS:
            raise JwksUnavailable(f"the JWKS URL answered more than {MAX_JWKS_KEYS} keys")
        keys: dict[str | None, VerificationKey] = {}
        for entry in entries:
            found = key_of_jwk(entry)
            if found is not None:
                kid, key = found
                keys.setdefault(kid, key)
        if not keys:
            raise JwksUnavailable("the JWKS URL answered no usable RS256 or ES256 signing key")
        return keys


class JwtVerifier:
    """Checks a JWT's signature, algorithm, exp/nbf, iss, aud and azp, then the CEL rules on its claims."""

    def __init__(self):
        self.jwks = (
            JwksKeys(
                settings.AUTH_JWT_JWKS_URL,
                settings.AUTH_JWT_JWKS_TIMEOUT_SECONDS,
                settings.AUTH_JWT_JWKS_CACHE_TTL_SECONDS,
            )
            if settings.AUTH_JWT_JWKS_URL
            else None
        )
        self.public_key = configured_public_key(settings.AUTH_JWT_PUBLIC_KEY) if settings.AUTH_JWT_PUBLIC_KEY else None
        self.issuer = settings.AUTH_JWT_ISSUER
        self.audience = list(settings.AUTH_JWT_AUDIENCE)
        self.authorized_parties = frozenset(settings.AUTH_JWT_AUTHORIZED_PARTIES)
        self.rules = ClaimRules()

    def verify(self, token: str) -> TokenVerdict | None:
        """The verdict on a JWT; None when `token` is no JWT at all. Raises JwksUnavailable (see JwksKeys)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            return None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            return TokenVerdict(valid=False, reason="Token is signed with an algorithm Keeper does not accept.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            return TokenVerdict(valid=False, reason="Token has a malformed key id.")
        key = self.public_key if self.jwks is None else self.jwks.key_for(kid)
        if key is None:
            return TokenVerdict(valid=False, reason="Token is signed with an unknown key.")
        if key.algorithm != algorithm:
            return TokenVerdict(valid=False, reason="Token is signed with an algorithm its key does not use.")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience or None,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": bool(self.audience)},
            )
        except jwt.ExpiredSignatureError:
            return TokenVerdict(valid=False, reason="Token has expired.")
        except jwt.ImmatureSignatureError:
            return TokenVerdict(valid=False, reason="Token is not valid yet.")
        except jwt.InvalidAudienceError:
            return TokenVerdict(valid=False, reason="Token is not meant for this API (audience).")
        except jwt.InvalidIssuerError:
            return TokenVerdict(valid=False, reason="Token is from another issuer.")
        except jwt.MissingRequiredClaimError as exc:
            return TokenVerdict(valid=False, reason=f"Token has no {exc.claim} claim.")
        except jwt.InvalidTokenError:
            return TokenVerdict(valid=False, reason="Token is invalid.")
        return self.judge(claims)

    def judge(self, claims: dict[str, Any]) -> TokenVerdict:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            return TokenVerdict(valid=False, reason="Token has no subject.")
        if json_depth(claims) > MAX_JSON_DEPTH:
            # As for introspection answers: CEL and the cache walk the claims, so they stay shallow.
            return TokenVerdict(valid=False, reason=f"Token has claims nested deeper than {MAX_JSON_DEPTH} levels.")
        party = claims.get("azp")
        if self.authorized_parties and (not isinstance(party, str) or party not in self.authorized_parties):
            return TokenVerdict(valid=False, reason="Token was issued to a client this API does not accept (azp).")
        expires_at = claims["exp"]
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            return TokenVerdict(valid=False, reason="Token has a malformed expiry.")
        return self.rules.verdict(claims, subject, float(expires_at) + LEEWAY_SECONDS)
