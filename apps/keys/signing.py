"""The keys that sign capability tokens: generated on first use, stored encrypted, rotated, published.

- ES256 (ECDSA on P-256 with SHA-256): every JWT library and API gateway verifies it, and on this
  project's machines OpenSSL verifies it faster than Ed25519 (bench/bench_tokens.py).
- A private key is stored only as AES-256-GCM ciphertext (keeper/sealing.py), under a key derived with HKDF-SHA256 from
  KEEPER_TOKEN_KEY_SECRET and with the kid as associated data (a ciphertext copied to another row
  does not decrypt). It is decrypted here, to sign, and never logged, shown or returned.
- `signing_key_rotate` adds a key that is published at once and signs from ACTIVATION_DELAY_SECONDS
  later, so that verifiers (and HTTP caches) holding a key set up to that old know the new kid
  before any token carries it. The previous key stays published until every token it signed has
  expired (MAX_TOKEN_TTL_SECONDS after its successor took over, plus a margin for clocks), then is
  dropped: left out of the key set at once, deleted by the next rotation or `signing_keys_prune`.
- Each process keeps the key set for KEY_SET_RELOAD_SECONDS; it reloads at once (at most once a
  second) for a kid it does not know. New keys are created a minute before they sign, so every
  process knows them when they take over.
"""

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import transaction
from django.utils import timezone
from jwt.algorithms import ECAlgorithm

from apps.keys.models import SigningKey
from keeper.api.exceptions import ServiceUnavailable
from keeper.sealing import Unsealable, seal, unseal

logger = logging.getLogger(__name__)

ALGORITHM = "ES256"
# Every kid starts so: Keeper tells its own tokens from an identity provider's JWTs by it.
KID_PREFIX = "keeper-"
# The longest a capability token lives (`ttl_seconds` of POST /keys/validate is at most this).
MAX_TOKEN_TTL_SECONDS = 3600
ACTIVATION_DELAY_SECONDS = 60
# A superseded key stays published this long: its last token's lifetime, and a margin for clocks.
SUPERSEDED_KEY_PUBLISHED_SECONDS = MAX_TOKEN_TTL_SECONDS + 120
KEY_SET_RELOAD_SECONDS = 30.0
UNKNOWN_KID_RELOAD_SECONDS = 1.0


class SigningKeyUnavailable(ServiceUnavailable):
    default_detail = (
        "Capability tokens cannot be signed: the signing key does not decrypt with KEEPER_TOKEN_KEY_SECRET "
        "(was it changed?). An operator must run `manage.py rotate_signing_key`."
    )
    default_code = "signing_key_unavailable"
    retry_after = 60


# --- Encryption at rest (keeper/sealing.py) -------------------------------------

# The HKDF salt of the signing keys' encryption: every stored key was sealed with it.
_SEALING_PURPOSE = b"keeper/token-signing-keys"


def _encrypt(private_der: bytes, kid: str) -> str:
    return seal(private_der, purpose=_SEALING_PURPOSE, bound_to=kid)


def _decrypt(stored: str, kid: str) -> bytes:
    return unseal(stored, purpose=_SEALING_PURPOSE, bound_to=kid)


# --- The key set ----------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    kid: str
    activates_at: float
    # When the next key took (or takes) over signing; None while this one is the newest.
    superseded_at: float | None
    jwk: dict
    key: ec.EllipticCurvePublicKey

    def published(self, now: float) -> bool:
        return self.superseded_at is None or now < self.superseded_at + SUPERSEDED_KEY_PUBLISHED_SECONDS

    def as_jwk(self) -> dict:
        return {**self.jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def _with_successors(rows: list[SigningKey]) -> list[tuple[SigningKey, float | None]]:
    """Each key with the time its successor (the next by activation) takes over, oldest first."""
    rows = sorted(rows, key=lambda row: (row.activates_at, row.pk))
    nexts = [row.activates_at.timestamp() for row in rows[1:]] + [None]
    return list(zip(rows, nexts))


class KeySet:
    """This process's copy of the signing keys (public halves; private ones decrypted when first used)."""

    def __init__(self) -> None:
        self._keys: dict[str, PublicKey] = {}
        self._rows: dict[str, SigningKey] = {}
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")
            self._private.clear()

    def _load(self) -> None:
        rows = list(SigningKey.objects.all())
        keys = {
            row.kid: PublicKey(
                row.kid, row.activates_at.timestamp(), superseded, row.public_jwk, ECAlgorithm.from_jwk(row.public_jwk)
            )
            for row, superseded in _with_successors(rows)
        }
        with self._lock:
            self._keys, self._rows = keys, {row.kid: row for row in rows}
            self._private = {kid: key for kid, key in self._private.items() if kid in keys}
            self._loaded_at = time.monotonic()

    def _fresh(self, max_age: float = KEY_SET_RELOAD_SECONDS) -> dict[str, PublicKey]:
        if time.monotonic() - self._loaded_at >= max_age:
            self._load()
        return self._keys

    def public_key(self, kid: str) -> PublicKey | None:
        """The published key `kid`, or None (unknown, or dropped)."""
        key = self._fresh().get(kid)
        if key is None:
            key = self._fresh(UNKNOWN_KID_RELOAD_SECONDS).get(kid)
        return key if key is not None and key.published(time.time()) else None

    def published(self, *, reload: bool = False) -> list[PublicKey]:
        """The keys of the JWKS, newest first; the first key is made here if there is none yet.

        `reload`: read the database now. The JWKS endpoint does, so that a key is published the moment
        it is made, a whole ACTIVATION_DELAY_SECONDS (its max-age) before it signs.
        """
        if not self._fresh(0.0 if reload else KEY_SET_RELOAD_SECONDS):
            self._create_first()
        now = time.time()
        return sorted((k for k in self._keys.values() if k.published(now)), key=lambda k: -k.activates_at)

    def signer(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """(kid, private key) of the key that signs now; the first key is made here if there is none yet."""
        active = [key for key in self._fresh().values() if key.activates_at <= time.time()]
        if not active:
            self._create_first()
            active = [key for key in self._keys.values() if key.activates_at <= time.time()]
        kid = max(active, key=lambda key: key.activates_at).kid
        private = self._private.get(kid)
        if private is None:
            try:
                der = _decrypt(self._rows[kid].private_key_encrypted, kid)
            except Unsealable:
                logger.error("Signing key %s does not decrypt with KEEPER_TOKEN_KEY_SECRET; rotate it", kid)
                raise SigningKeyUnavailable() from None
            private = serialization.load_der_private_key(der, password=None)
            self._private[kid] = private
        return kid, private

    def _create_first(self) -> None:
        """A key that signs from now, unless one does already (first use, or every key deleted by hand)."""
        now = timezone.now()
        with transaction.atomic():
            # On SQLite the transaction holds the write lock, so concurrent first uses make one key;
            # elsewhere two may be made at once, which is harmless (both are published, the newer signs).
            if not SigningKey.objects.filter(activates_at__lte=now).exists():
                _new_key(now)
                logger.info("Created a capability token signing key")
        self._load()


key_set = KeySet()


# --- Writes ---------------------------------------------------------------------


def _new_key(activates_at: datetime) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    kid = f"{KID_PREFIX}{activates_at:%Y%m%d}-{secrets.token_hex(4)}"
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey.objects.create(
        kid=kid,
        algorithm=ALGORITHM,
        public_jwk=ECAlgorithm.to_jwk(private.public_key(), as_dict=True),
        private_key_encrypted=_encrypt(der, kid),
        activates_at=activates_at,
    )


def _decrypts(row: SigningKey) -> bool:
    try:
        _decrypt(row.private_key_encrypted, row.kid)
    except Unsealable:
        return False
    return True


@dataclass(frozen=True)
class Rotation:
    key: SigningKey
    dropped: list[str]


def signing_keys_prune(now: datetime | None = None) -> list[str]:
    """Delete the keys whose last token has expired; their kids."""
    moment = (now or timezone.now()).timestamp()
    dropped = [
        row
        for row, superseded in _with_successors(list(SigningKey.objects.all()))
        if superseded is not None and moment >= superseded + SUPERSEDED_KEY_PUBLISHED_SECONDS
    ]
    if dropped:
        SigningKey.objects.filter(pk__in=[row.pk for row in dropped]).delete()
        key_set.forget()
    return [row.kid for row in dropped]


def signing_key_rotate(*, compromised: bool = False, now: datetime | None = None) -> Rotation:
    """Add the key that signs from a minute from now; drop the keys no valid token needs.

    `compromised`: the previous keys may be known to someone else. The new key signs at once and
    every other key is dropped now, so every token they signed fails (at Keeper within
    KEY_SET_RELOAD_SECONDS in every process; elsewhere when verifiers reload the key set).
    """
    now = now or timezone.now()
    with transaction.atomic():
        if compromised:
            dropped = list(SigningKey.objects.values_list("kid", flat=True))
            SigningKey.objects.all().delete()
            key = _new_key(now)
        else:
            # No usable key signs now (a first rotation, or KEEPER_TOKEN_KEY_SECRET changed): no token can
            # carry a kid unknown to verifiers before this one signs, so it signs at once.
            current = SigningKey.objects.filter(activates_at__lte=now).first()
            delay = ACTIVATION_DELAY_SECONDS if current is not None and _decrypts(current) else 0
            key = _new_key(now + timedelta(seconds=delay))
            dropped = signing_keys_prune(now)
    key_set.forget()
    return Rotation(key, dropped)


def signing_key_state(row: SigningKey, now: datetime | None = None) -> str:
    """Where a key stands, for people: signs from, signing, or published until its last token expired."""
    now = now or timezone.now()
    successor = SigningKey.objects.filter(activates_at__gt=row.activates_at).order_by("activates_at").first()
    if row.activates_at > now:
        return f"published; signs from {row.activates_at:%Y-%m-%d %H:%M:%S} UTC"
    if successor is None or successor.activates_at > now:
        return "signing"
    until = successor.activates_at + timedelta(seconds=SUPERSEDED_KEY_PUBLISHED_SECONDS)
    if until > now:
        return f"superseded; published until {until:%Y-%m-%d %H:%M:%S} UTC"
    return "dropped (deleted by the next prune)"
