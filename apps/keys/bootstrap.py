"""Keys from KEEPER_API_KEYS, merged into the database at start-up (stored hashed, like any key).

The variable is the operator's list, and the merge makes the database follow it:
- unset: nothing changes (a `migrate` run by hand, or a worker whose environment lacks it,
  must not touch the keys that the web processes serve);
- a listed key is created, or updated (value, scope, name) and marked listed;
- a bootstrap key that leaves a list that is set is marked unlisted and refused while it is
  absent; listed again, it works again. Its status is never touched: a key that a person
  revoked or suspended stays so (the merge acts at operator rank through apps/keys/policy.py,
  but only on what the list says: value, scope, name).
Entries are validated when settings load (keeper/env.py); what needs the database (a value
that another key already has, a Keeper-format value with a wrong checksum) is refused here,
naming the entry and never its key.
"""

import logging
import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from apps.keys import policy
from apps.keys import secrets as key_secrets
from apps.keys.choices import AuditAction, HashKind, KeySource, KeyStatus, Scope
from keeper.env import validate_bootstrap_keys

logger = logging.getLogger(__name__)

BOOTSTRAP_OWNER = "keeper-bootstrap"
ACTOR = policy.Actor("bootstrap:KEEPER_API_KEYS")
_merged = False
_lock = threading.Lock()


def _matches(key, value: str) -> bool:
    if key.hash_kind == HashKind.HMAC:
        return key_secrets.constant_time_equal(key_secrets.hmac_hash(value), key.secret_hash)
    return key_secrets.scrypt_matches(value, key.secret_hash)


def _holder_of(value: str):
    """The stored key whose value is `value`, if any (bootstrap or not)."""
    from apps.keys.models import ApiKey

    parsed = key_secrets.parse(value)
    if parsed is not None:
        return ApiKey.objects.filter(key_id=parsed.key_id).select_related("owner").first()
    bucket = key_secrets.imported_bucket(value)
    candidates = ApiKey.objects.filter(hash_kind=HashKind.SCRYPT, lookup_bucket=bucket).select_related("owner")
    return next((key for key in candidates if _matches(key, value)), None)


def _hash_fields(value: str, key_id: str | None) -> dict:
    parsed = key_secrets.parse(value)
    if parsed is not None:
        return {
            "key_id": parsed.key_id,
            "prefix": f"{key_secrets.PREFIX}_{parsed.key_id}",
            "secret_hash": key_secrets.hmac_hash(value),
            "hash_kind": HashKind.HMAC,
            "lookup_bucket": "",
            "last_chars": value[-key_secrets.VISIBLE_TAIL :],
        }
    return {
        "key_id": key_id or key_secrets.new_key_id(),
        "prefix": "imported",
        "secret_hash": key_secrets.scrypt_hash(value),
        "hash_kind": HashKind.SCRYPT,
        "lookup_bucket": key_secrets.imported_bucket(value),
        "last_chars": value[-key_secrets.VISIBLE_TAIL :],
    }


def _entry_label(index: int, entry: dict) -> str:
    return f"KEEPER_API_KEYS[{index}] ({entry['name']})"


def merge_bootstrap_keys() -> int:
    """Make the bootstrap keys follow KEEPER_API_KEYS; returns how many keys changed."""
    from apps.keys.models import ApiKey
    from apps.keys.services import _audit, _forget_verified

    # Validated again: settings may have been changed since they loaded (tests, shells).
    entries = validate_bootstrap_keys(settings.KEEPER_API_KEYS)
    if entries is None:
        return 0
    changed = 0
    with transaction.atomic():
        owner, _ = get_user_model().objects.get_or_create(
            username=BOOTSTRAP_OWNER, defaults={"password": make_password(None)}
        )
        stored = {key.pk: key for key in ApiKey.objects.filter(owner=owner, source=KeySource.BOOTSTRAP)}
        kept: set[int] = set()
        for index, entry in enumerate(entries):
            value, name, scope = entry["key"], entry["name"], entry.get("scope", Scope.READ)
            label = _entry_label(index, entry)
            if value.startswith(key_secrets.PREFIX + "_") and key_secrets.parse(value) is None:
                raise ImproperlyConfigured(f"{label}: a Keeper-format key with a wrong checksum (a typo?)")
            holder = _holder_of(value)
            if holder is not None and holder.pk not in stored:
                raise ImproperlyConfigured(f"{label}: this key is already in use by another API key")
            by_name = next((key for key in stored.values() if key.name == name), None)
            key = holder or by_name
            if holder is not None and by_name is not None and holder.pk != by_name.pk:
                raise ImproperlyConfigured(f"{label}: the name belongs to one bootstrap key and the value to another")
            if key is None:
                key = ApiKey.objects.create(
                    owner=owner,
                    name=name,
                    scope=scope,
                    source=KeySource.BOOTSTRAP,
                    status=KeyStatus.ACTIVE,
                    decided_by={"scope": policy.Rank.OPERATOR.label},
                    **_hash_fields(value, None),
                )
                _audit(key, AuditAction.CREATE, ACTOR, changes={"scope": [None, scope]})
                stored[key.pk] = key
                changed += 1
            elif _update(key, value, name, scope, same_value=holder is not None):
                changed += 1
            kept.add(key.pk)
        for key in stored.values():
            if key.pk not in kept and key.listed:
                key.listed = False
                key.save(update_fields=["listed", "updated_at"])
                _audit(key, AuditAction.UPDATE, ACTOR, changes={"listed": [True, False]}, detail="left KEEPER_API_KEYS")
                _forget_verified(key, "unlisted")
                changed += 1
    if changed:
        logger.info("Bootstrap API keys: %d change(s) from KEEPER_API_KEYS", changed)
    return changed


def _update(key, value: str, name: str, scope: str, *, same_value: bool) -> bool:
    """Bring one stored bootstrap key in line with its entry; True if anything changed."""
    from apps.keys.services import _audit, _forget_verified

    diff: dict[str, list] = {}
    fields: list[str] = []
    if key.scope != scope:
        policy.check_change(ACTOR, key, policy.Change.SCOPE, ["scope"])
        diff["scope"] = [key.scope, scope]
        key.scope = scope
        fields += ["scope", *policy.record_decisions(key, policy.Rank.OPERATOR, ["scope"])]
    if key.name != name:
        diff["name"] = [key.name, name]
        key.name = name
        fields.append("name")
    if not same_value:
        diff["key"] = ["…", "…"]
        for field, new in _hash_fields(value, key.key_id).items():
            setattr(key, field, new)
            fields.append(field)
    if not key.listed:
        diff["listed"] = [False, True]
        key.listed = True
        fields.append("listed")
    if not fields:
        return False
    key.save(update_fields=[*dict.fromkeys(fields), "updated_at"])
    _audit(key, AuditAction.UPDATE, ACTOR, changes=diff, detail="KEEPER_API_KEYS")
    _forget_verified(key)
    return True


def ensure_merged() -> None:
    """Once per process, before the first key is checked."""
    global _merged
    if _merged:
        return
    with _lock:
        if not _merged:
            merge_bootstrap_keys()
            _merged = True


def merge_after_migrate(sender, **kwargs) -> None:
    merge_bootstrap_keys()
