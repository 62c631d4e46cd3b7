"""Catalog reads shaped for the API.

Hot endpoints read `.values()` rows and build plain dicts for the orjson
renderer: on `/servers?limit=-1` this is several times faster than a nested
ModelSerializer (see bench/bench_api.py).
"""

import threading
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet

from apps.catalog import choices
from apps.catalog.models import (
    Benchmark,
    ComplianceFramework,
    Country,
    Region,
    Server,
    Storage,
    SyncRun,
    Vendor,
    Zone,
)

TABLE_MODELS: dict[str, type[Model]] = {
    "country": Country,
    "compliance_framework": ComplianceFramework,
    "vendor": Vendor,
    "region": Region,
    "zone": Zone,
    "server": Server,
    "storage": Storage,
    "benchmark": Benchmark,
}


def table_columns(model: type[Model]) -> list[str]:
    """The upstream columns of a catalog model (no surrogate id, no derived values)."""
    from apps.catalog.importer import upstream_columns

    return upstream_columns(model)


SERVER_COLUMNS = table_columns(Server)
VENDOR_COLUMNS = table_columns(Vendor)
REGION_COLUMNS = table_columns(Region)
_VENDOR_LOOKUPS = [f"vendor__{c}" for c in VENDOR_COLUMNS]


def _with_vendor(rows: QuerySet, columns: list[str]) -> list[dict[str, Any]]:
    """Rows of `columns` with the vendor nested under "vendor", from one joined query."""
    result = []
    width = len(columns)
    for values in rows.values_list(*columns, *_VENDOR_LOOKUPS):
        row = dict(zip(columns, values[:width]))
        row["vendor"] = dict(zip(VENDOR_COLUMNS, values[width:]))
        result.append(row)
    return result


def region_rows(queryset: QuerySet) -> list[dict[str, Any]]:
    return _with_vendor(queryset, REGION_COLUMNS)


def table_rows(name: str) -> list[dict[str, Any]]:
    model = TABLE_MODELS[name]
    return list(model.objects.order_by(*model._meta.ordering).values(*table_columns(model)))


def _package_version(name: str) -> str | None:
    # Package metadata is read from disk: once per process (it changes only with a deployment).
    try:
        return version(name)
    except PackageNotFoundError:
        return None


PACKAGES = ("django", "djangorestframework", "sparecores-data", "celery")


def health() -> dict[str, Any]:
    last = SyncRun.objects.last_loaded()
    latest = SyncRun.objects.order_by("-started_at", "-id").first()
    return {
        "status": "ok" if last else "no catalog loaded",
        "packages": {name: _package_version(name) for name in PACKAGES},
        "database_last_updated": last.finished_at if last else None,
        "database_hash": last.data_hash if last else None,
        "schema_version": last.schema_version if last else None,
        "last_sync_status": latest.status if latest else None,
    }


def _read_catalog_version() -> str | None:
    run = (
        SyncRun.objects.filter(status=choices.SyncStatus.SUCCEEDED)
        .order_by("-started_at", "-id")
        .values_list("id", "data_hash")
        .first()
    )
    return f"{run[0]}:{run[1]}" if run else None


class _Memo:
    """A value re-read at most every KEEPER_CATALOG_VERSION_TTL_SECONDS in each process.

    The catalog changes only when a sync lands: asking the database on every request cost a query
    for every cached answer. The process that syncs forgets at once (catalog_sync calls forget());
    the others see a new catalog within the TTL.
    """

    def __init__(self, read: Callable[[], Any]):
        self._read = read
        self._value: Any = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if time.monotonic() - self._read_at >= settings.KEEPER_CATALOG_VERSION_TTL_SECONDS:
            with self._lock:
                self._value = self._read()
                self._read_at = time.monotonic()
        return self._value

    def forget(self) -> None:
        self._read_at = float("-inf")


catalog_version = _Memo(_read_catalog_version)
catalog_version.__doc__ = "Identifies the catalog being served (the last loaded sync), or None before the first."
# /healthcheck is polled by load balancers: answer from the same short memo.
cached_health = _Memo(health)


def forget_catalog_state() -> None:
    """After a sync in this process: the next request reads the new version (other processes within the TTL)."""
    catalog_version.forget()
    cached_health.forget()
