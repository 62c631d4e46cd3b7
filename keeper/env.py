"""Strict readers for environment variables, used only by keeper/settings.py.

Each helper fails loudly (ImproperlyConfigured) on a value it cannot parse, so a
typo in the deployment stops start-up instead of silently falling back.
"""

import base64
import binascii
import json
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env_str(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_json_b64(name: str, default: Any) -> Any:
    """Base64-encoded JSON. The value may hold secrets: errors never quote it."""
    value = env_str(name)
    if value is None:
        return default
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} must be base64-encoded JSON") from None


BOOTSTRAP_MIN_KEY_LENGTH = 32
_BOOTSTRAP_FIELDS = {"key", "name", "scope"}


def secret_list_entry(
    setting: str,
    index: int,
    entry: Any,
    *,
    secret: str,
    name: str,
    fields: set[str] | frozenset[str],
    min_length: int,
    max_name_length: int | None = None,
) -> tuple[str, str, str]:
    """One entry of a JSON list of secrets in the environment (KEEPER_API_KEYS, AUTH_STATIC_TOKENS): an object
    with the string `secret` (printable ASCII, no spaces, at least `min_length` long), the string `name` (no
    surrounding spaces) and no field beyond `fields`. Returns (the secret, the name, the entry's label);
    ImproperlyConfigured otherwise. Messages name the entry (its index and name), never its secret."""
    if not isinstance(entry, dict) or not isinstance(entry.get(secret), str):
        raise ImproperlyConfigured(f"{setting}[{index}] needs a string {secret} and a {name}")
    value = entry.get(name)
    too_long = max_name_length is not None and isinstance(value, str) and len(value) > max_name_length
    if not isinstance(value, str) or not value.strip() or value != value.strip() or too_long:
        size = f"1 to {max_name_length} characters" if max_name_length else "a non-empty string"
        raise ImproperlyConfigured(f"{setting}[{index}]: the {name} must be {size}, without surrounding spaces")
    label = f"{setting}[{index}] ({value})"
    unknown = sorted(set(entry) - set(fields))
    if unknown:
        raise ImproperlyConfigured(f"{label}: unknown field(s) {', '.join(unknown)}")
    text = entry[secret]
    if not all("!" <= character <= "~" for character in text):
        raise ImproperlyConfigured(f"{label}: the {secret} must be printable ASCII, without spaces")
    if len(text) < min_length:
        raise ImproperlyConfigured(f"{label}: the {secret} is shorter than {min_length} characters")
    return text, value, label


def validate_bootstrap_keys(entries: Any) -> list[dict] | None:
    """KEEPER_API_KEYS entries: [{"key": str, "name": str, "scope": read|write|admin}]; None when unset.

    A key is at least 32 printable ASCII characters without spaces; keys and names are unique.
    Messages name the entry (its index and name), never its key.
    """
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise ImproperlyConfigured("KEEPER_API_KEYS must be a JSON array of {key, name, scope} objects")
    names: dict[str, int] = {}
    keys: dict[str, int] = {}
    for index, entry in enumerate(entries):
        key, name, label = secret_list_entry(
            "KEEPER_API_KEYS",
            index,
            entry,
            secret="key",
            name="name",
            fields=_BOOTSTRAP_FIELDS,
            min_length=BOOTSTRAP_MIN_KEY_LENGTH,
            max_name_length=100,
        )
        if entry.get("scope", "read") not in ("read", "write", "admin"):
            raise ImproperlyConfigured(f"{label}: scope must be read, write or admin")
        if name in names:
            raise ImproperlyConfigured(f"{label}: the name is also used by KEEPER_API_KEYS[{names[name]}]")
        if key in keys:
            raise ImproperlyConfigured(f"{label}: the same key as KEEPER_API_KEYS[{keys[key]}]")
        names[name], keys[key] = index, index
    return entries
