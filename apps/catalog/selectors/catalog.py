"""Catalog reads shaped for the API.

Hot endpoints read `.values()` rows and build plain dicts for the orjson
renderer: on `/servers?limit=-1` this is several times faster than a nested
ModelSerializer (see bench/bench_api.py).
"""

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.db.models import Model, QuerySet

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
from apps.catalog.sql import VENDOR_COLUMNS, fetch, table, table_columns
from apps.catalog.version import Memo

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


# /healthcheck is polled by load balancers: answer from a short memo, forgotten with the catalog version.
cached_health = Memo(health)


# --- the named server -------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _named_sql(columns: tuple[str, ...]) -> str:
    # Two exact index lookups (by id, by API reference): as one OR, SQLite's planner (without
    # statistics) scans all the vendor's servers instead.
    select = f"SELECT {', '.join(columns)} FROM {table(Server)} WHERE vendor_id = %s AND"
    return f"{select} server_id = %s UNION ALL {select} api_reference = %s"


def named_server(vendor_id: str, server: str, columns: tuple[str, ...]) -> dict[str, Any] | None:
    """The vendor's server named `server` (its `columns`): the one with that id, else the first by id."""
    rows = [dict(zip(columns, values)) for values in fetch(_named_sql(columns), [vendor_id, server] * 2)]
    rows.sort(key=lambda row: (row["server_id"] != server, row["server_id"]))
    return rows[0] if rows else None


def server_id_of(vendor_id: str, server: str) -> str | None:
    """The id of the vendor's server named `server` by id or API reference, or None."""
    found = named_server(vendor_id, server, ("server_id",))
    return found["server_id"] if found else None
