"""API key writes and checks: issue, change, rotate, revoke, delete, verify; each change audited."""

import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.identity import idp_username
from apps.accounts.models import Organization
from apps.keys import capability, denylist, endpoints, policy
from apps.keys import secrets as key_secrets
from apps.keys.bookkeeping import key_bookkeeping
from apps.keys.choices import AuditAction, HashKind, KeySource, KeyStatus, Scope
from apps.keys.models import MAX_KEY_DEPTH, ApiKey, AuditEvent, KeyUsageDay
from apps.keys.policy import Actor, KeyConflict
from keeper import writes
from keeper.events.models import Event
from keeper.events.services import record_event
from keeper.events.types import EventType

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = (
    "name",
    "description",
    "scope",
    "allowed_endpoints",
    "blocked_endpoints",
    "allowed_ips",
    "credits_per_minute",
    "daily_quota",
    "expires_at",
    "organization",
)
MAX_GRACE_SECONDS = 30 * 24 * 3600
# key.quota_warning: this share of a key's daily quota used (issue 18).
QUOTA_WARNING_PERCENT = 80
MIN_IMPORTED_LENGTH = 16
UNKNOWN_KEY = "Invalid API key."
NAME_TAKEN = "Another key of this owner has that name."


@dataclass(frozen=True)
class IssuedKey:
    """A key and its plaintext value: the only moment the value exists outside its owner's hands."""

    api_key: ApiKey
    value: str


class KeyRejected(Exception):
    """A presented key cannot be used; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 401, key: ApiKey | None = None):
        super().__init__(message)
        self.status = status
        self.key = key


# --- Validation -----------------------------------------------------------------


def validate_ip_list(values: list[str]) -> list[str]:
    """IPs or CIDR ranges; a range with host bits set (1.2.3.4/8) is refused rather than silently changed."""
    normalized = []
    for value in values:
        text = str(value).strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValidationError({"allowed_ips": f"{value!r} is not an IP address or CIDR range."}) from None
        if "/" in text and str(network.network_address) != text.split("/")[0]:
            raise ValidationError({"allowed_ips": f"{value!r} has host bits set: did you mean {network}?"})
        normalized.append(str(network))
    return normalized


def validate_patterns(field: str, values: list[str]) -> list[str]:
    for value in values:
        problem = endpoints.pattern_problem(value)
        if problem:
            raise ValidationError({field: problem})
    return values


def validate_imported_value(value: str) -> None:
    """An imported key must be usable as it is: printable ASCII, and not a (mistyped) Keeper key."""
    if value.startswith(key_secrets.PREFIX + "_"):
        if key_secrets.parse(value) is None:
            raise ValidationError({"key": "This looks like a Keeper key with a wrong checksum (a typo?)."})
        raise ValidationError({"key": "Keeper-generated keys cannot be imported; rotate the key instead."})
    if len(value) < MIN_IMPORTED_LENGTH:
        raise ValidationError({"key": f"An imported key must be at least {MIN_IMPORTED_LENGTH} characters."})
    if not all("!" <= character <= "~" for character in value):
        raise ValidationError(
            {"key": "An imported key may hold only printable ASCII characters, without spaces (HTTP headers carry it)."}
        )


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    if "allowed_ips" in fields:
        fields["allowed_ips"] = validate_ip_list(fields["allowed_ips"] or [])
    for name in ("allowed_endpoints", "blocked_endpoints"):
        if name in fields:
            fields[name] = validate_patterns(name, fields[name] or [])
    if "scope" in fields and fields["scope"] not in Scope.values:
        raise ValidationError({"scope": f"Must be one of {', '.join(Scope.values)}."})
    expires_at = fields.get("expires_at")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Must be in the future."})
    return fields


def _audit(key: ApiKey | None, action: str, actor: Actor, *, changes=None, detail: str = "", key_ref: str = ""):
    event = _audit_event(key, action, actor, changes=changes, detail=detail, key_ref=key_ref)
    event.save(force_insert=True)
    return event


def _audit_event(
    key: ApiKey | None, action: str, actor: Actor, *, changes=None, detail: str = "", key_ref: str = ""
) -> AuditEvent:
    return AuditEvent(
        key=key,
        key_ref=key_ref or (key.masked if key else ""),
        owner_username=key.owner_name if key else "",
        action=action,
        actor=actor.name,
        ip=actor.ip,
        changes=changes or {},
        detail=detail,
    )


def _key_event(key: ApiKey, type: EventType, **figures: Any) -> Event:
    """Tell the key's owner (Caller.owner: the local user name a key acts as) about a change of `key`, in the
    caller's transaction. What names the key and the figures given; never a secret or a hash."""
    data = {
        "key_id": key.key_id,
        "prefix": key.prefix,
        "masked": key.masked,
        "name": key.name,
        "owner": key.owner_name,
        "organization": key.organization_name,
        **{name: _json_value(value) for name, value in figures.items()},
    }
    return record_event(key.owner_name, type, data, subject=f"key:{key.key_id}")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Organization):
        return value.slug
    return value


# --- Writes ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPlan:
    """A create or an update that passed every rule: the fields to write, decided at `rank`."""

    rank: policy.Rank
    fields: dict[str, Any]
    parent_id: int | None = None


def key_create_check(
    *, owner, actor: Actor, scope: str = Scope.READ, custom_value: str | None = None, **fields: Any
) -> KeyPlan:
    """The rules of key_create, without writing: a ValidationError (KeyConflict) or policy.NotAllowed
    says what is refused. The admin's form runs it in clean(), so a refusal shows on its field."""
    organization = fields.get("organization")
    rank = policy.check_create(actor, owner_id=owner.pk, organization_id=organization.pk if organization else None)
    if not owner.is_active:
        raise policy.NotAllowed(f"{owner.get_username()} is deactivated: no API key can be created for them.")
    policy.check_organization(actor, organization)
    # A key's children draw from its limits too (ApiKey.parent); staff and the operator are above them.
    parent_id = actor.ceiling.key if actor.bounded else None
    if parent_id is not None and ApiKey(parent_id=parent_id).depth() > MAX_KEY_DEPTH:
        raise KeyConflict({"parent": f"Keys created by keys nest at most {MAX_KEY_DEPTH} deep; use a key above."})
    fields = _clean({"scope": scope, **fields})
    if custom_value is not None:
        validate_imported_value(custom_value)
    return KeyPlan(rank, policy.within_ceiling(actor, fields, creating=True, organization=organization), parent_id)


def key_create(
    *,
    owner,
    name: str,
    actor: Actor,
    scope: str = Scope.READ,
    custom_value: str | None = None,
    source: str | None = None,
    **fields: Any,
) -> IssuedKey:
    """Issue a key (or import `custom_value`, hashed with scrypt since its entropy is unknown).

    The policy decides whether `actor` may, and bounds (or fills in) the limits by its own.
    """
    plan = key_create_check(owner=owner, actor=actor, scope=scope, custom_value=custom_value, **fields)
    fields = plan.fields
    key_id = key_secrets.new_key_id()
    if custom_value is None:
        value = key_secrets.new_key(key_id)
        hashed = {"secret_hash": key_secrets.hmac_hash(value), "hash_kind": HashKind.HMAC}
        prefix = f"{key_secrets.PREFIX}_{key_id}"
    else:
        value = custom_value
        hashed = {
            "secret_hash": key_secrets.scrypt_hash(value),
            "hash_kind": HashKind.SCRYPT,
            "lookup_bucket": key_secrets.imported_bucket(value),
        }
        prefix = "imported"
    decided = {part: plan.rank.label for part in fields if part in policy.FIELD_CHANGES}
    try:
        with transaction.atomic():
            key = ApiKey.objects.create(
                key_id=key_id,
                prefix=prefix,
                last_chars=value[-key_secrets.VISIBLE_TAIL :],
                owner=owner,
                name=name,
                parent_id=plan.parent_id,
                source=source or (KeySource.GENERATED if custom_value is None else KeySource.IMPORTED),
                decided_by=decided,
                **hashed,
                **fields,
            )
            _audit(key, AuditAction.CREATE, actor, changes={k: [None, _json_value(v)] for k, v in fields.items()})
    except IntegrityError:
        raise KeyConflict({"name": f"You already have a key named {name!r}."}) from None
    return IssuedKey(key, value)


def key_update_check(key: ApiKey, *, actor: Actor, **changes: Any) -> KeyPlan:
    """The rules of key_update, without writing (as key_create_check): the fields that change."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "Not editable." for name in unknown})
    changes = _clean(changes)
    changed = {field: value for field, value in changes.items() if getattr(key, field) != value}
    if not changed:
        return KeyPlan(policy.Rank.NONE, {})
    rank = policy.Rank.NONE
    for change in dict.fromkeys(policy.FIELD_CHANGES[field] for field in changed):
        parts = [field for field in changed if policy.FIELD_CHANGES[field] is change]
        rank = policy.check_change(actor, key, change, parts)
    if "organization" in changed:
        policy.check_organization(actor, changed["organization"])
    organization = changed.get("organization", key.organization if key.organization_id else None)
    changed = policy.within_ceiling(actor, changed, creating=False, organization=organization)
    # Asked before the write too, so a form can show it; the unique index still decides a race (key_update).
    if (
        "name" in changed
        and ApiKey.objects.filter(owner_id=key.owner_id, name=changed["name"]).exclude(pk=key.pk).exists()
    ):
        raise KeyConflict({"name": NAME_TAKEN})
    return KeyPlan(rank, changed)


def key_update(key: ApiKey, *, actor: Actor, **changes: Any) -> ApiKey:
    plan = key_update_check(key, actor=actor, **changes)
    if not plan.fields:
        return key
    diff = {}
    for field, value in plan.fields.items():
        diff[field] = [_json_value(getattr(key, field)), _json_value(value)]
        setattr(key, field, value)
    fields = [*diff, *policy.record_decisions(key, plan.rank, list(diff))]
    if "expires_at" in diff:
        key.expiry_warned_at = None
        fields.append("expiry_warned_at")
    try:
        with transaction.atomic():
            # Only the changed columns: a concurrent revoke or last_used_at write must not be undone.
            key.save(update_fields=[*fields, "updated_at"])
            _audit(key, AuditAction.UPDATE, actor, changes=diff)
    except IntegrityError:
        raise KeyConflict({"name": NAME_TAKEN}) from None
    if set(diff) - {"name", "description"}:
        _forget_verified(key)
    return key


def key_rotate(key: ApiKey, *, actor: Actor, grace_seconds: int = 0) -> IssuedKey:
    """A new secret for the same key (id, settings, history); the old one works for `grace_seconds`."""
    policy.check_change(actor, key, policy.Change.ROTATE)
    if key.hash_kind != HashKind.HMAC:
        raise KeyConflict({"key": "Imported keys cannot be rotated; issue a new key instead."})
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationError({"grace_period_seconds": f"Must be between 0 and {MAX_GRACE_SECONDS}."})
    value = key_secrets.new_key(key.key_id)
    with transaction.atomic():
        if grace_seconds:
            key.previous_secret_hash = key.secret_hash
            key.previous_valid_until = timezone.now() + timedelta(seconds=grace_seconds)
        else:
            key.previous_secret_hash = ""
            key.previous_valid_until = None
        key.secret_hash = key_secrets.hmac_hash(value)
        key.last_chars = value[-key_secrets.VISIBLE_TAIL :]
        key.save(
            update_fields=["secret_hash", "last_chars", "previous_secret_hash", "previous_valid_until", "updated_at"]
        )
        _audit(key, AuditAction.ROTATE, actor, detail=f"grace period {grace_seconds}s")
        _key_event(
            key,
            EventType.KEY_ROTATED,
            grace_period_seconds=grace_seconds,
            previous_valid_until=key.previous_valid_until,
            actor=actor.name,
        )
    _forget_verified(key, "rotated")
    return IssuedKey(key, value)


# The status changes callers are told about (key.reactivated is not an event type).
STATUS_EVENTS = {
    KeyStatus.SUSPENDED: EventType.KEY_SUSPENDED,
    KeyStatus.REVOKED: EventType.KEY_REVOKED,
    KeyStatus.EXPIRED: EventType.KEY_EXPIRED,
}


def _set_status(key: ApiKey, status: str, action: str, actor: Actor, rank: policy.Rank, reason: str = "") -> ApiKey:
    before = key.status
    with transaction.atomic():
        key.status = status
        if status == KeyStatus.REVOKED:
            key.previous_secret_hash = ""
            key.previous_valid_until = None
        decided = policy.record_decisions(key, rank, [policy.STATUS])
        key.save(update_fields=["status", "previous_secret_hash", "previous_valid_until", *decided, "updated_at"])
        _audit(key, action, actor, changes={"status": [before, status]}, detail=reason)
        if status in STATUS_EVENTS:
            figures = {"expires_at": key.expires_at} if status == KeyStatus.EXPIRED else {"reason": reason}
            _key_event(key, STATUS_EVENTS[status], previous_status=before, actor=actor.name, **figures)
    _forget_verified(key, status)
    return key


def key_revoke(key: ApiKey, *, actor: Actor, reason: str = "") -> ApiKey:
    rank = policy.check_change(actor, key, policy.Change.REVOKE)
    if key.status == KeyStatus.REVOKED:
        return key
    return _set_status(key, KeyStatus.REVOKED, AuditAction.REVOKE, actor, rank, reason)


def key_suspend(key: ApiKey, *, actor: Actor, reason: str = "") -> ApiKey:
    if key.status != KeyStatus.ACTIVE:
        raise KeyConflict({"status": f"Only active keys can be suspended (this one is {key.status})."})
    rank = policy.check_change(actor, key, policy.Change.SUSPEND)
    return _set_status(key, KeyStatus.SUSPENDED, AuditAction.SUSPEND, actor, rank, reason)


def key_reactivate(key: ApiKey, *, actor: Actor) -> ApiKey:
    if key.status != KeyStatus.SUSPENDED:
        raise KeyConflict({"status": f"Only suspended keys can be reactivated (this one is {key.status})."})
    rank = policy.check_change(actor, key, policy.Change.REACTIVATE, [policy.STATUS])
    return _set_status(key, KeyStatus.ACTIVE, AuditAction.REACTIVATE, actor, rank)


def key_delete(key: ApiKey, *, actor: Actor) -> None:
    # A suspension stands until its decider lifts it: the owner cannot delete it away meanwhile.
    policy.check_change(actor, key, policy.Change.DELETE, [policy.STATUS] if key.status == KeyStatus.SUSPENDED else [])
    children = list(key.children.values_list("name", flat=True)[:4])
    if children:
        named = ", ".join(repr(name) for name in children[:3]) + (", ..." if len(children) > 3 else "")
        raise KeyConflict({"key": f"Keys created with this key draw from its limits ({named}): delete them first."})
    with transaction.atomic():
        _audit(key, AuditAction.DELETE, actor, key_ref=key.masked)
        _forget_verified(key, "deleted")
        key.delete()


def keys_mark_expired(now=None) -> int:
    """Move keys past their expiry to EXPIRED (they are refused before that already)."""
    expired = 0
    for pk in ApiKey.objects.past_expiry(now).values_list("pk", flat=True):
        with transaction.atomic():
            # Locked and asked again: two runs at once (the schedule and a Celery beat) expire a key once.
            key = ApiKey.objects.past_expiry(now).select_for_update().filter(pk=pk).first()
            if key is None:
                continue
            _set_status(key, KeyStatus.EXPIRED, AuditAction.EXPIRE, Actor("system"), policy.Rank.OPERATOR)
        expired += 1
    return expired


def keys_warn_expiring(now=None) -> list[ApiKey]:
    """Record (and log) keys expiring within KEEPER_KEY_EXPIRY_WARNING_DAYS that were not warned yet."""
    now = now or timezone.now()
    keys = list(
        ApiKey.objects.expiring_within(settings.KEEPER_KEY_EXPIRY_WARNING_DAYS, now)
        .filter(expiry_warned_at__isnull=True)
        .select_related("owner")
    )
    warned = []
    for key in keys:
        with transaction.atomic():
            # Conditional: of two runs at once, one warns (and records the event).
            if not ApiKey.objects.filter(pk=key.pk, expiry_warned_at__isnull=True).update(expiry_warned_at=now):
                continue
            key.expiry_warned_at = now
            _audit(key, AuditAction.EXPIRY_WARNING, Actor("system"), detail=f"expires at {key.expires_at}")
            _key_event(
                key,
                EventType.KEY_EXPIRING,
                expires_at=key.expires_at,
                warning_days=settings.KEEPER_KEY_EXPIRY_WARNING_DAYS,
            )
        logger.warning("API key %s of %s expires at %s", key.masked, key.owner.get_username(), key.expires_at)
        warned.append(key)
    return warned


def keys_record_quota_events(refused: Mapping[int, bool], *, now: datetime | None = None) -> list[Event]:
    """key.quota_warning (QUOTA_WARNING_PERCENT of the daily quota used) and key.quota_exhausted (nothing
    left, or the key's own quota refused a request: `refused[pk]`), each at most once per key and UTC day,
    for the keys of `refused` (by primary key) and the keys above them whose quotas their requests spend.

    Called by the usage flush (apps/keys/usage.py), behind the requests: it reads the quota counters
    every process shares (Redis or the database), so what it sees is exact whichever process asks.
    """
    from apps.keys.throttles import quota_counter_key
    from apps.throttling.services import limiters

    now = now or timezone.now()
    keys = ApiKey.objects.filter(pk__in=list(refused)).filter(Q(daily_quota__isnull=False) | Q(parent__isnull=False))
    checked: dict[int, tuple[ApiKey, bool]] = {}
    for key in keys.select_related("owner", "organization"):
        if key.daily_quota:
            checked[key.pk] = (key, refused[key.pk] or checked.get(key.pk, (key, False))[1])
        for above in key.limited_ancestors():
            if above.daily_quota and above.pk not in checked:
                checked[above.pk] = (above, False)
    events = []
    for key, was_refused in checked.values():
        quota = key.daily_quota
        remaining = limiters().counter_remaining(quota_counter_key(key, now), quota)
        figures = {
            "daily_quota": quota,
            "used": quota - remaining,
            "remaining": remaining,
            "day": now.date().isoformat(),
        }
        exhausted = was_refused or remaining == 0
        if exhausted or (quota - remaining) * 100 >= quota * QUOTA_WARNING_PERCENT:
            events += _quota_event(key, EventType.KEY_QUOTA_WARNING, "quota_warned_at", now, figures)
        if exhausted:
            events += _quota_event(key, EventType.KEY_QUOTA_EXHAUSTED, "quota_exhausted_at", now, figures)
    return events


def _quota_event(key: ApiKey, type: EventType, marker: str, now: datetime, figures: dict) -> list[Event]:
    """The event, unless the day's marker says it was recorded: the marker is set by a conditional update
    in the event's transaction, so of concurrent flushes (workers, processes) exactly one records it."""
    day = now.date()
    with transaction.atomic():
        KeyUsageDay.objects.get_or_create(key=key, day=day)
        if not KeyUsageDay.objects.filter(key=key, day=day, **{f"{marker}__isnull": True}).update(**{marker: now}):
            return []
        data = (
            {**figures, "threshold_percent": QUOTA_WARNING_PERCENT} if type == EventType.KEY_QUOTA_WARNING else figures
        )
        return [_key_event(key, type, **data)]


# --- Verification ---------------------------------------------------------------


class _VerifiedImports:
    """Imported keys verified by scrypt, remembered briefly by HMAC so each request is not a KDF run."""

    TTL = 60.0

    def __init__(self):
        self._entries: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, fingerprint: str) -> int | None:
        with self._lock:
            entry = self._entries.get(fingerprint)
            if entry and entry[0] > time.monotonic():
                return entry[1]
            self._entries.pop(fingerprint, None)
            return None

    def put(self, fingerprint: str, key_pk: int) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[fingerprint] = (time.monotonic() + self.TTL, key_pk)

    def forget(self, key_pk: int) -> None:
        with self._lock:
            for fingerprint in [f for f, (_, pk) in self._entries.items() if pk == key_pk]:
                del self._entries[fingerprint]


_verified_imports = _VerifiedImports()


def _forget_verified(key: ApiKey, reason: str = "changed") -> None:
    _verified_imports.forget(key.pk)
    # Its capability tokens too, in every process at once (apps/keys/denylist.py).
    denylist.key_tokens_refuse(key.key_id, reason)


def _find_key(value: str) -> ApiKey | None:
    keys = ApiKey.objects
    parsed = key_secrets.parse(value)
    if parsed is not None:
        found = keys.for_verification(key_id=parsed.key_id)
        if not found:
            return None
        key = found[0]
        digest = key_secrets.hmac_hash(value)
        if key_secrets.constant_time_equal(digest, key.secret_hash):
            return key
        if (
            key.previous_secret_hash
            and key.previous_valid_until
            and key.previous_valid_until > timezone.now()
            and key_secrets.constant_time_equal(digest, key.previous_secret_hash)
        ):
            return key
        return None
    if value.startswith(key_secrets.PREFIX + "_"):
        raise KeyRejected("Malformed API key: the checksum does not match (a typo?).")
    fingerprint = key_secrets.hmac_hash(value)
    cached = _verified_imports.get(fingerprint)
    if cached is not None:
        found = keys.for_verification(id=cached, hash_kind=HashKind.SCRYPT)
        return found[0] if found else None
    for key in keys.for_verification(hash_kind=HashKind.SCRYPT, lookup_bucket=key_secrets.imported_bucket(value)):
        if key_secrets.scrypt_matches(value, key.secret_hash):
            _verified_imports.put(fingerprint, key.pk)
            return key
    return None


def key_authenticate(value: str, *, ip: str, path: str, touch: bool = True) -> ApiKey:
    """The usable key for `value` calling `path` from `ip`, or KeyRejected saying why.

    `touch=False` checks without using the key (no last_used_at, no audit of a refused use).
    """
    key = _find_key(value)
    if key is None:
        raise KeyRejected(UNKNOWN_KEY)
    now = timezone.now()
    if not key.listed:
        raise KeyRejected("This API key is not listed in KEEPER_API_KEYS at present.", key=key)
    if not key.owner_active:
        raise KeyRejected(ApiKey.OWNER_DEACTIVATED, key=key)
    status = key.effective_status(now)
    if status != KeyStatus.ACTIVE:
        if status == KeyStatus.REVOKED and touch:
            _audit_refused_use(key, Actor(f"key:{key.masked}", ip))
        reason = {
            KeyStatus.REVOKED: "This API key has been revoked.",
            KeyStatus.SUSPENDED: "This API key is suspended.",
            KeyStatus.EXPIRED: f"This API key expired at {key.expires_at:%Y-%m-%dT%H:%M:%SZ}."
            if key.expires_at
            else "This API key has expired.",
        }[status]
        raise KeyRejected(reason, key=key)
    if not key.allows_ip(ip):
        raise KeyRejected(f"This API key may not be used from {ip}.", status=403, key=key)
    if not key.allows_endpoint(path):
        raise KeyRejected(f"This API key may not call {path}.", status=403, key=key)
    if touch:
        _touch(key, now)
    return key


def key_check(value: str, *, ip: str, path: str) -> ApiKey:
    """key_authenticate without marking the key used (for POST /keys/validate)."""
    return key_authenticate(value, ip=ip, path=path, touch=False)


@dataclass(frozen=True)
class KeyValidation:
    """What POST /keys/validate answers: whether a key is usable, what remains of its limits, and for a
    usable key a capability token to forward instead of it. All empty for a key the caller may not see."""

    valid: bool
    reason: str = ""
    key: ApiKey | None = None
    credits_per_minute: int | None = None
    remaining_credits: int | None = None
    daily_quota: int | None = None
    remaining_quota: int | None = None
    capability_token: str | None = None
    capability_token_expires_at: datetime | None = None


def key_validate(value: str, *, visible: QuerySet, ip: str, path: str, ttl_seconds: int) -> KeyValidation:
    """Whether the key `value` may call `path` from `ip` (without marking it used), for a caller who sees
    the keys of `visible`: a key outside them is answered exactly as an unknown one, nothing about its state."""
    # Before the key is read: a revocation committed after this read refuses the token (apps.keys.denylist).
    issued_at = capability.issue_time()
    try:
        key, reason = key_check(value, ip=ip, path=path), ""
    except KeyRejected as exc:
        key, reason = exc.key, str(exc)
    if key is None or not visible.filter(pk=key.pk).exists():
        return KeyValidation(valid=False, reason=UNKNOWN_KEY)
    limit = key.pool_size or settings.RATE_LIMIT_CREDITS_PER_MINUTE
    remaining = credits_remaining(key)
    daily_quota = key.daily_quota or None
    remaining_quota = quota_remaining(key) if daily_quota else None
    if reason:
        return KeyValidation(False, reason, key, limit, remaining, daily_quota, remaining_quota)
    limits = capability.KeyLimits(limit, remaining, daily_quota, remaining_quota)
    token = capability.token_issue(key, issued_at=issued_at, ttl_seconds=ttl_seconds, limits=limits)
    return KeyValidation(True, "", key, limit, remaining, daily_quota, remaining_quota, token.token, token.expires_at)


def quota_remaining(key: ApiKey) -> int | None:
    """Credits left of the key's daily quota today (UTC), as every process counts it (Redis or the database);
    no more than is left of the quota of any key above it, which its requests spend too."""
    from apps.keys.throttles import quota_counter_key
    from apps.throttling.services import limiters

    if not key.daily_quota:
        return None
    quotas = [(quota_counter_key(k), k.daily_quota) for k in [key, *key.limited_ancestors()] if k.daily_quota]
    return min(limiters().counter_remaining(counter, quota) for counter, quota in quotas)


def credits_remaining(key: ApiKey) -> int:
    """Credits the key may still spend this minute: what is left of its pool, and of the pool of any key above it."""
    from apps.throttling.services import limiters

    pools = [(key.pool_key, key.pool_size or settings.RATE_LIMIT_CREDITS_PER_MINUTE)]
    above = key.limited_ancestors()
    pools += [(ancestor.pool_key, ancestor.credits_per_minute) for ancestor in above if ancestor.credits_per_minute]
    return min(limiters().consume(pool, 0, size).remaining for pool, size in pools)


def _audit_refused_use(key: ApiKey, actor: Actor) -> None:
    if writes.deferring():
        # Written behind the request: it must not wait on the database's write lock (keeper/writes.py).
        key_bookkeeping.audit(_audit_event(key, AuditAction.DENIED, actor, detail="use of a revoked key"))
    else:
        _audit(key, AuditAction.DENIED, actor, detail="use of a revoked key")


def _touch(key: ApiKey, now: datetime) -> None:
    interval = timedelta(seconds=settings.KEEPER_KEY_LAST_USED_INTERVAL_SECONDS)
    if writes.deferring() and (key.last_used_at is None or key.last_used_at <= now - interval):
        # Written behind the request (keeper/writes.py), with the same condition.
        key_bookkeeping.touch(key.pk, now, stale_before=now - interval)
        key.last_used_at = now
    elif key.last_used_at is None or key.last_used_at <= now - interval:
        # Conditional, so concurrent requests write it once.
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - interval)
        ).update(last_used_at=now)
        key.last_used_at = now


def owner_for_subject(subject: str):
    """The Django user that owns the keys of an identity-provider subject (created on first use)."""
    User = get_user_model()
    # A separate namespace, so a token subject can never take over a local account's keys.
    user, _ = User.objects.get_or_create(username=idp_username(subject), defaults={"password": make_password(None)})
    return user
