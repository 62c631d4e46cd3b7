"""API keys (and the capability tokens that stand for them) as callers rebuilt after their request is gone
(keeper.api.callers.load_caller): a watch re-run after a sync acts as its key does now."""

import dataclasses
from typing import Any

from apps.keys.choices import KeyStatus
from apps.keys.models import ApiKey
from keeper.api.callers import Caller, CallerLoader, CallerUnavailable

KIND = "api_key"

_STATUS_REASONS = {
    KeyStatus.REVOKED: "The API key {key} has been revoked.",
    KeyStatus.SUSPENDED: "The API key {key} is suspended.",
    KeyStatus.EXPIRED: "The API key {key} has expired.",
}


def refer(caller: Caller) -> dict[str, Any] | None:
    """The key's lookup id (never its secret) and how the caller presented it."""
    key = caller.api_key
    if key is None:
        return None
    return {"key_id": key.key_id, "auth_method": caller.auth_method}


def load(reference: dict[str, Any], path: str) -> Caller:
    """The key's Caller as the key stands now, or CallerUnavailable with the reason key_authenticate gives.

    The key's endpoint restrictions apply to `path` as on a request. Its allowed IPs do not: a re-run
    is made by Keeper itself, with no client address; the key was used from an allowed address when
    the work was asked for (POST /watches authenticated it).
    """
    from apps.keys.authentication import caller_for_key

    key = ApiKey.objects.select_related("owner", "organization").filter(key_id=reference.get("key_id")).first()
    if key is None:
        raise CallerUnavailable("The API key it was created with was deleted.")
    if not key.listed:
        raise CallerUnavailable(f"The API key {key.masked} is not listed in KEEPER_API_KEYS at present.")
    if not key.owner_active:
        raise CallerUnavailable(ApiKey.OWNER_DEACTIVATED)
    status = key.effective_status()
    if status != KeyStatus.ACTIVE:
        raise CallerUnavailable(_STATUS_REASONS[status].format(key=key.masked))
    if not key.allows_endpoint(path):
        raise CallerUnavailable(f"The API key {key.masked} may not call {path}.")
    return dataclasses.replace(caller_for_key(key), auth_method=reference.get("auth_method", "api_key"))


LOADER = CallerLoader(kind=KIND, refer=refer, load=load)
