"""The API key format and its hashes.

    keeper_<id>_<secret><checksum>

`id` (12 base62 chars) is the indexed lookup id, `secret` 32 base62 chars
(~190 random bits), `checksum` a 6-char base62 CRC32 of everything before it,
so secret scanners can recognise a Keeper key and a typo is refused before any
database lookup. Only an HMAC-SHA256 of the whole key with a server-side pepper
is stored. Imported keys (values chosen by their owner, entropy unknown) are
hashed with scrypt instead.
"""

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

from django.conf import settings

PREFIX = "keeper"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_PATTERN = re.compile(
    rf"^{PREFIX}_([0-9A-Za-z]{{{ID_LENGTH}}})_([0-9A-Za-z]{{{SECRET_LENGTH}}})([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)
VISIBLE_TAIL = 4
# scrypt cost for imported keys: ~50 ms here; verified once, then cached by HMAC (see services).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _base62(number: int, length: int) -> str:
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    value: str


def new_key_id() -> str:
    return _random(ID_LENGTH)


def new_key(key_id: str) -> str:
    body = f"{PREFIX}_{key_id}_{_random(SECRET_LENGTH)}"
    return body + checksum(body)


def parse(value: str) -> ParsedKey | None:
    """The lookup id of a well-formed Keeper key with a valid checksum, else None."""
    match = KEY_PATTERN.match(value)
    if match is None:
        return None
    body = value[:-CHECKSUM_LENGTH]
    if not hmac.compare_digest(checksum(body), match.group(3)):
        return None
    return ParsedKey(key_id=match.group(1), value=value)


def pepper() -> bytes:
    return settings.KEEPER_API_KEY_PEPPER.encode()


def hmac_hash(value: str) -> str:
    return hmac.new(pepper(), value.encode(), hashlib.sha256).hexdigest()


def scrypt_hash(value: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(value.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def scrypt_matches(value: str, stored: str) -> bool:
    try:
        _, salt_hex, _ = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(scrypt_hash(value, salt), stored)


def imported_bucket(value: str) -> str:
    """A 16-bit bucket to find an imported key's row without a fast full hash of a low-entropy value."""
    return hmac_hash(value)[:4]


def masked(prefix: str, tail: str) -> str:
    return f"{prefix}…{tail}"


def constant_time_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
