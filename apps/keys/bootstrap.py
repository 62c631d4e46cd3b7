"""Keys from KEEPER_API_KEYS, merged into the database at start-up (stored hashed, like any key).

Merging adds listed keys and updates their hash and scope; it never reactivates a
key that was revoked or suspended since. Bootstrap keys no longer listed are revoked.
Every change is audited.
"""

import logging
import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from apps.keys import secrets as key_secrets
from apps.keys.choices import AuditAction, HashKind, KeySource, KeyStatus, Scope
from keeper.env import validate_bootstrap_keys

logger = logging.getLogger(__name__)

BOOTSTRAP_OWNER = "keeper-bootstrap"
_merged = False
_lock = threading.Lock()


def _hash_fields(value: str, existing) -> dict:
    parsed = key_secrets.parse(value)
    if parsed is not None:
        return {
            "key_id": parsed.key_id,
            "prefix": f"{key_secrets.PREFIX}_{parsed.key_id}",
            "secret_hash": key_secrets.hmac_hash(value),
            "hash_kind": HashKind.HMAC,
            "lookup_bucket": "",
        }
    return {
        "key_id": existing.key_id if existing else key_secrets.new_key_id(),
        "prefix": "imported",
        "secret_hash": key_secrets.scrypt_hash(value),
        "hash_kind": HashKind.SCRYPT,
        "lookup_bucket": key_secrets.imported_bucket(value),
    }


def _unchanged(existing, value: str, scope: str) -> bool:
    if existing.scope != scope:
        return False
    if existing.hash_kind == HashKind.HMAC:
        return key_secrets.constant_time_equal(key_secrets.hmac_hash(value), existing.secret_hash)
    return key_secrets.scrypt_matches(value, existing.secret_hash)


def merge_bootstrap_keys() -> int:
    """Create or update the listed bootstrap keys and revoke unlisted ones; returns how many changed."""
    from apps.keys.models import ApiKey
    from apps.keys.services import Actor, _audit, key_revoke

    entries = validate_bootstrap_keys(settings.KEEPER_API_KEYS)
    if not entries and not ApiKey.objects.filter(source=KeySource.BOOTSTRAP).exists():
        return 0
    actor = Actor("bootstrap:KEEPER_API_KEYS")
    User = get_user_model()
    changed = 0
    with transaction.atomic():
        owner, _ = User.objects.get_or_create(username=BOOTSTRAP_OWNER, defaults={"password": make_password(None)})
        for entry in entries:
            value, name, scope = entry["key"], entry["name"], entry.get("scope", Scope.READ)
            existing = ApiKey.objects.filter(owner=owner, name=name).first()
            if existing is not None and _unchanged(existing, value, scope):
                continue
            fields = {**_hash_fields(value, existing), "last_chars": value[-key_secrets.VISIBLE_TAIL :], "scope": scope}
            if existing is None:
                key = ApiKey.objects.create(
                    owner=owner, name=name, source=KeySource.BOOTSTRAP, status=KeyStatus.ACTIVE, **fields
                )
                _audit(key, AuditAction.CREATE, actor, changes={"scope": [None, scope]})
            else:
                before_scope = existing.scope
                for field, new in fields.items():
                    setattr(existing, field, new)
                existing.save()
                _audit(existing, AuditAction.UPDATE, actor, changes={"scope": [before_scope, scope], "key": ["…", "…"]})
            changed += 1
        listed = {entry["name"] for entry in entries}
        for stale in ApiKey.objects.filter(owner=owner, source=KeySource.BOOTSTRAP).exclude(name__in=listed):
            if stale.status != KeyStatus.REVOKED:
                key_revoke(stale, actor=actor, reason="no longer listed in KEEPER_API_KEYS")
                changed += 1
    if changed:
        logger.info("Bootstrap API keys: %d change(s) from KEEPER_API_KEYS", changed)
    return changed


def ensure_merged() -> None:
    """Once per process, before the first key is checked."""
    global _merged
    if _merged:
        return
    if not settings.KEEPER_API_KEYS:
        # Nothing to add; bootstrap keys dropped from the list are revoked after `migrate`.
        _merged = True
        return
    with _lock:
        if not _merged:
            merge_bootstrap_keys()
            _merged = True


def merge_after_migrate(sender, **kwargs) -> None:
    merge_bootstrap_keys()
