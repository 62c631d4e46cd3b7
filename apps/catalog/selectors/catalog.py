"""Catalog reads shaped for the API.

Hot endpoints read `.values()` rows and build plain dicts for the orjson
renderer: on `/servers?limit=-1` this is several times faster than a nested
ModelSerializer (see bench/bench_api.py).
"""

from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.db.models import Model

from apps.catalog.models import (
    Benchmark,
    ComplianceFramework,
    Country,
    Database,
    DatabaseStorage,
    Region,
    Server,
    Storage,
    SyncRun,
    Vendor,
    VendorComplianceLink,
    Zone,
)
from apps.catalog.sql import VENDOR_COLUMNS, RowFormat, fetch, placeholders, postgres, quote, table, table_columns
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
    "vendor_compliance_link": VendorComplianceLink,
    "database": Database,
    "database_storage": DatabaseStorage,
}


# Timestamps as orjson prints an aware datetime, JSON decoded: the answer the ORM's rows gave.
REGION_ROW = RowFormat(Region, tuple(table_columns(Region)), utc="+00:00")
_REGION_VENDOR_ROW = RowFormat(Vendor, tuple(VENDOR_COLUMNS), utc="+00:00")
_REGION_JSON = tuple(f.column for f in Region._meta.concrete_fields if f.get_internal_type() == "JSONField")
_VENDOR_JSON = tuple(f.column for f in Vendor._meta.concrete_fields if f.get_internal_type() == "JSONField")


@lru_cache(maxsize=16)
def _regions_sql(vendors: int, on_postgres: bool) -> str:
    where = f" WHERE r.vendor_id IN ({placeholders(vendors)})" if vendors else ""
    return (
        f"SELECT {REGION_ROW.select('r')}, {_REGION_VENDOR_ROW.select('v')} FROM {table(Region)} r "
        f"JOIN {table(Vendor)} v ON v.vendor_id = r.vendor_id{where} ORDER BY r.vendor_id, r.region_id"
    )


def region_rows(vendor_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
    """`GET /regions`: the regions (of the given vendors, else all) with their vendor nested, from one
    statement (the ORM's `.values_list()` spent 8 of /regions?vendor=aws's 9 ms compiling and converting)."""
    vendors: dict[str, dict[str, Any]] = {}  # each vendor read once
    at, vendor_id_at = REGION_ROW.width, REGION_ROW.width + VENDOR_COLUMNS.index("vendor_id")
    rows = []
    for record in fetch(_regions_sql(len(vendor_ids), postgres()), list(vendor_ids)):
        row = REGION_ROW.read(record, parse=_REGION_JSON)
        vendor = vendors.get(record[vendor_id_at])
        if vendor is None:
            vendor = vendors[record[vendor_id_at]] = _REGION_VENDOR_ROW.read(record, parse=_VENDOR_JSON, start=at)
        row["vendor"] = vendor
        rows.append(row)
    return rows


@lru_cache(maxsize=32)
def _table_dump(name: str, on_postgres: bool) -> tuple[RowFormat, tuple[str, ...], str]:
    model = TABLE_MODELS[name]
    row = RowFormat(model, tuple(table_columns(model)), utc="+00:00")
    json_columns = tuple(f.column for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField")
    order = ", ".join(f"t.{quote(model._meta.get_field(field).column)}" for field in model._meta.ordering)
    return row, json_columns, f"SELECT {row.select('t')} FROM {table(model)} t ORDER BY {order}"


def table_rows(name: str) -> list[dict[str, Any]]:
    """`/table/{name}`: every row of a catalog table in its model's order, as the ORM's `.values()` rows
    rendered (timestamps as orjson prints them, JSON decoded), from one statement without the ORM's
    compiling and per-column conversion."""
    row, json_columns, sql = _table_dump(name, postgres())
    return [row.read(values, parse=json_columns) for values in fetch(sql, ())]


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


# --- the named server or database ----------------------------------------------------------------


@lru_cache(maxsize=16)
def _named_sql(model: type[Model], id_column: str, select: str) -> str:
    # Two exact index lookups (by id, by API reference): as one OR, SQLite's planner (without
    # statistics) scans all the vendor's rows instead.
    lookup = f"SELECT t.{id_column}, {select} FROM {table(model)} t WHERE t.vendor_id = %s AND"
    return f"{lookup} t.{id_column} = %s UNION ALL {lookup} t.api_reference = %s"


def named_values(model: type[Model], id_column: str, vendor_id: str, name: str, select: str) -> tuple | None:
    """The vendor's row of `model` named `name`: its id, then the values of `select` (SQL over the row as `t`).
    The row with that id, else the first by id of those with that API reference; None when none is."""
    found = fetch(_named_sql(model, id_column, select), [vendor_id, name] * 2)
    return min(found, key=lambda values: (values[0] != name, values[0]), default=None)


def named_server(vendor_id: str, server: str, columns: tuple[str, ...]) -> dict[str, Any] | None:
    """The vendor's server named `server` (its `columns`): the one with that id, else the first by id."""
    values = named_values(Server, "server_id", vendor_id, server, ", ".join(f"t.{column}" for column in columns))
    return dict(zip(columns, values[1:])) if values is not None else None


def server_id_of(vendor_id: str, server: str) -> str | None:
    """The id of the vendor's server named `server` by id or API reference, or None."""
    found = named_server(vendor_id, server, ("server_id",))
    return found["server_id"] if found else None


def database_id_of(vendor_id: str, database: str) -> str | None:
    """The id of the vendor's managed database named `database` by id or API reference (any status), or None."""
    values = named_values(Database, "database_id", vendor_id, database, "t.database_id")
    return values[0] if values is not None else None
