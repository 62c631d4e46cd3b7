"""Keys from KEEPER_API_KEYS, merged into the database at start-up (stored hashed, like any key)."""

import logging
import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from apps.keys import secrets as key_secrets
from apps.keys.choices import HashKind, KeySource, KeyStatus, Scope

logger = logging.getLogger(__name__)

BOOTSTRAP_OWNER = "keeper-bootstrap"
_merged = False
_lock = threading.Lock()


def _entries() -> list[dict]:
    entries = settings.KEEPER_API_KEYS
    if not isinstance(entries, list):
        raise ImproperlyConfigured("KEEPER_API_KEYS must be a JSON array of {key, name, scope} objects")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry.get("name"):
            raise ImproperlyConfigured(f"KEEPER_API_KEYS[{index}] needs a string key and a name")
        if entry.get("scope", Scope.READ) not in Scope.values:
            raise ImproperlyConfigured(f"KEEPER_API_KEYS[{index}] has an unknown scope")
        if len(entry["key"]) < 16:
            raise ImproperlyConfigured(f"KEEPER_API_KEYS[{index}] key is shorter than 16 characters")
    return entries


def merge_bootstrap_keys() -> int:
    """Create or update the bootstrap keys; returns how many were written."""
    from apps.keys.models import ApiKey

    entries = _entries()
    if not entries:
        return 0
    User = get_user_model()
    owner, _ = User.objects.get_or_create(username=BOOTSTRAP_OWNER, defaults={"password": make_password(None)})
    written = 0
    with transaction.atomic():
        for entry in entries:
            value, name, scope = entry["key"], entry["name"], entry.get("scope", Scope.READ)
            parsed = key_secrets.parse(value)
            if parsed is not None:
                fields = {
                    "key_id": parsed.key_id,
                    "prefix": f"{key_secrets.PREFIX}_{parsed.key_id}",
                    "secret_hash": key_secrets.hmac_hash(value),
                    "hash_kind": HashKind.HMAC,
                    "lookup_bucket": "",
                }
            else:
                existing = ApiKey.objects.filter(owner=owner, name=name).first()
                if existing and key_secrets.scrypt_matches(value, existing.secret_hash) and existing.scope == scope:
                    continue
                fields = {
                    "key_id": existing.key_id if existing else key_secrets.new_key_id(),
                    "prefix": "imported",
                    "secret_hash": key_secrets.scrypt_hash(value),
                    "hash_kind": HashKind.SCRYPT,
                    "lookup_bucket": key_secrets.imported_bucket(value),
                }
            ApiKey.objects.update_or_create(
                owner=owner,
                name=name,
                defaults={
                    **fields,
                    "last_chars": value[-key_secrets.VISIBLE_TAIL :],
                    "scope": scope,
                    "status": KeyStatus.ACTIVE,
                    "source": KeySource.BOOTSTRAP,
                },
            )
            written += 1
    logger.info("Merged %d bootstrap API key(s) from KEEPER_API_KEYS", written)
    return written


def ensure_merged() -> None:
    """Once per process, before the first key is checked."""
    global _merged
    if _merged or not settings.KEEPER_API_KEYS:
        return
    with _lock:
        if not _merged:
            merge_bootstrap_keys()
            _merged = True


def merge_after_migrate(sender, **kwargs) -> None:
    if settings.KEEPER_API_KEYS:
        merge_bootstrap_keys()
