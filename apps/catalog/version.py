"""Which catalog is being served: the last loaded sync, re-read at most every KEEPER_CATALOG_VERSION_TTL_SECONDS.

The catalog changes only when a sync lands: asking the database on every request cost a query for
every cached answer. The process that syncs forgets at once (`forget_catalog_state`, called by the
sync); the others see a new catalog within the TTL. Values derived from the catalog and memoised
the same way (the health answer) are `Memo`s too, and are forgotten with it.
"""

import threading
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

from django.conf import settings

from apps.catalog import choices
from apps.catalog.models import SyncRun

_MEMOS: list["Memo"] = []


class Memo:
    """A value re-read at most every KEEPER_CATALOG_VERSION_TTL_SECONDS in each process."""

    def __init__(self, read: Callable[[], Any]):
        self._read = read
        self._value: Any = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()
        _MEMOS.append(self)

    def __call__(self) -> Any:
        if time.monotonic() - self._read_at >= settings.KEEPER_CATALOG_VERSION_TTL_SECONDS:
            with self._lock:
                self._value = self._read()
                self._read_at = time.monotonic()
        return self._value

    def forget(self) -> None:
        self._read_at = float("-inf")


def _read_catalog_version() -> str | None:
    run = (
        SyncRun.objects.filter(status=choices.SyncStatus.SUCCEEDED)
        .order_by("-started_at", "-id")
        .values_list("id", "data_hash")
        .first()
    )
    return f"{run[0]}:{run[1]}" if run else None


catalog_version = Memo(_read_catalog_version)
catalog_version.__doc__ = "Identifies the catalog being served (the last loaded sync), or None before the first."


T = TypeVar("T")


def derived_per_catalog(compute: Callable[[], T]) -> Callable[[], T]:
    """`compute()` once per catalog version in this process (read-only data derived from the catalog,
    such as aggregates over every score; a new sync is a new version). Computed every time before the
    first sync."""

    @lru_cache(maxsize=1)
    def for_version(version: str) -> T:
        return compute()

    @wraps(compute)
    def derived() -> T:
        version = catalog_version()
        return compute() if version is None else for_version(version)

    return derived


def forget_catalog_state() -> None:
    """After a sync in this process: the next request reads the new version (other processes within the TTL)."""
    for memo in _MEMOS:
        memo.forget()
