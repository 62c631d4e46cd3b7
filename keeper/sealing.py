"""Secrets Keeper must use again later, stored only encrypted: capability token signing keys
(apps/keys/signing.py) and webhook signing secrets (keeper/events).

AES-256-GCM under a key derived with HKDF-SHA256 from KEEPER_TOKEN_KEY_SECRET, one derived key per
`purpose` (its HKDF salt), so a ciphertext of one kind never decrypts as another. Each ciphertext is
bound to its row (`bound_to`, the associated data: a kid, an endpoint id), so one copied to another
row does not decrypt either. Stored as "v1.<urlsafe base64 of nonce + ciphertext>".
"""

import base64
import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_VERSION = "v1"


class Unsealable(ValueError):
    """The stored value does not decrypt (KEEPER_TOKEN_KEY_SECRET changed, another row's value, or damaged)."""


@lru_cache(maxsize=8)
def _cipher(secret: str, purpose: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=purpose, info=b"aes-256-gcm").derive(secret.encode())
    return AESGCM(key)


def seal(plaintext: bytes, *, purpose: bytes, bound_to: str) -> str:
    """`plaintext` encrypted for storage; only `unseal` with the same purpose and `bound_to` reads it."""
    nonce = secrets.token_bytes(12)
    sealed = _cipher(settings.KEEPER_TOKEN_KEY_SECRET, purpose).encrypt(nonce, plaintext, bound_to.encode())
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(stored: str, *, purpose: bytes, bound_to: str) -> bytes:
    """The plaintext `seal` stored; Unsealable when it does not decrypt."""
    version, _, payload = stored.partition(".")
    if version != _VERSION:
        raise Unsealable(f"unknown ciphertext version {version!r}")
    try:
        raw = base64.urlsafe_b64decode(payload)
        return _cipher(settings.KEEPER_TOKEN_KEY_SECRET, purpose).decrypt(raw[:12], raw[12:], bound_to.encode())
    except (InvalidTag, ValueError) as exc:
        raise Unsealable("the stored value does not decrypt") from exc
