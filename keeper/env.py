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
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ImproperlyConfigured(f"KEEPER_API_KEYS[{index}] needs a string key and a name")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or name != name.strip() or len(name) > 100:
            raise ImproperlyConfigured(
                f"KEEPER_API_KEYS[{index}]: the name must be 1 to 100 characters, without surrounding spaces"
            )
        label = f"KEEPER_API_KEYS[{index}] ({name})"
        unknown = sorted(set(entry) - _BOOTSTRAP_FIELDS)
        if unknown:
            raise ImproperlyConfigured(f"{label}: unknown field(s) {', '.join(unknown)}")
        key = entry["key"]
        if not all("!" <= character <= "~" for character in key):
            raise ImproperlyConfigured(f"{label}: the key must be printable ASCII, without spaces")
        if len(key) < BOOTSTRAP_MIN_KEY_LENGTH:
            raise ImproperlyConfigured(f"{label}: the key is shorter than {BOOTSTRAP_MIN_KEY_LENGTH} characters")
        if entry.get("scope", "read") not in ("read", "write", "admin"):
            raise ImproperlyConfigured(f"{label}: scope must be read, write or admin")
        if name in names:
            raise ImproperlyConfigured(f"{label}: the name is also used by KEEPER_API_KEYS[{names[name]}]")
        if key in keys:
            raise ImproperlyConfigured(f"{label}: the same key as KEEPER_API_KEYS[{keys[key]}]")
        names[name], keys[key] = index, index
    return entries
