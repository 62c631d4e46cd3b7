"""Table reads of the Administrative and Table dumps endpoints: `/table/server/select`,
`/table/server/meta` and `/stats`."""

import re
from typing import Any

from django.db.models import Count, Model

from apps.catalog import choices
from apps.catalog.models import (
    Benchmark,
    BenchmarkScore,
    Database,
    DatabasePrice,
    Region,
    Server,
    ServerPrice,
    SyncRun,
    Vendor,
    Zone,
)
from apps.catalog.sql import RowFormat, fetch, table, table_columns
from apps.catalog.version import derived_per_catalog

SERVER_COLUMNS = table_columns(Server)


def server_column_rows(columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every server with the given columns only (all of them when none), keys in the order asked (a
    repeated column once), in upstream's order (its file's, which the import keeps as primary keys);
    read from the cursor as the `/servers` rows are (JSON embedded as text, timestamps as upstream's)."""
    row = RowFormat(Server, tuple(dict.fromkeys(columns or SERVER_COLUMNS)))
    return [row.read(values) for values in fetch(f"SELECT {row.select('s')} FROM {table(Server)} s ORDER BY s.id", ())]


# --- /table/server/meta -----------------------------------------------------------------------

# A column's category, as upstream groups them: by name, else by the first matching prefix.
CATEGORY_BY_NAME = {
    **dict.fromkeys(
        (
            "vendor_id",
            "server_id",
            "name",
            "api_reference",
            "api_reference_object",
            "display_name",
            "description",
            "family",
            "series",
            "status",
            "observed_at",
            "hw_virt",
            "average_time_to_start",
        ),
        "meta",
    ),
    **dict.fromkeys(("vcpus", "hypervisor", "ecpus", "scalability"), "cpu"),
    **dict.fromkeys(("ipv4", "inbound_traffic", "outbound_traffic"), "network"),
    "compatible_storage_ids": "storage",
}
CATEGORY_BY_PREFIX = (
    ("cpu", "cpu"),
    ("memory", "memory"),
    # Upstream calls the accelerator columns (its gpu_* columns) the "gpu" category.
    ("accelerator", "gpu"),
    ("storage", "storage"),
    ("network", "network"),
)
# Words spelled otherwise than in title case in the column names.
SPELLINGS = {
    "id": "ID",
    "ids": "IDs",
    "api": "API",
    "cpu": "CPU",
    "cpus": "CPUs",
    "vcpus": "vCPUs",
    "ecc": "ECC",
    "ipv4": "IPv4",
}
# "Memory, in MiB." -> MiB; "Free inbound traffic, in GB per month." -> GB/month
UNIT_PATTERN = re.compile(r",\s+in\s+([^,.]+)\.?$")


def column_category(column: str) -> str:
    if column in CATEGORY_BY_NAME:
        return CATEGORY_BY_NAME[column]
    for prefix, category in CATEGORY_BY_PREFIX:
        if column.startswith(prefix):
            return category
    raise LookupError(f"No category for the server column {column!r}")


def column_name(column: str) -> str:
    """A human-friendly name: `cpu_l1d_cache_total` -> `CPU L1D Cache Total`."""
    return " ".join(SPELLINGS.get(word, word.title()) for word in column.split("_"))


def column_unit(help_text: str) -> str | None:
    """The unit a help text ends with (`..., in GHz.`), or None."""
    match = UNIT_PATTERN.search(help_text)
    return match.group(1).replace(" per ", "/") if match else None


def server_table_meta() -> dict[str, Any]:
    """The server table's name and description, and each column's name, description, category and unit,
    from the model's docstring and help texts."""
    fields = {field.column: field for field in Server._meta.concrete_fields}
    rows = []
    for column in SERVER_COLUMNS:
        help_text = str(fields[column].help_text)
        rows.append(
            {
                "id": column,
                "name": column_name(column),
                "description": help_text,
                "category": column_category(column),
                "unit": column_unit(help_text),
            }
        )
    description = (Server.__doc__ or "").strip().splitlines()[0]
    return {"table": {"name": "server", "description": description}, "fields": rows}


# --- /stats -----------------------------------------------------------------------------------


# The tables /stats counts, as (figure, model, upstream table name, whether it has a vendor).
COUNTED: tuple[tuple[str, type[Model], str, bool], ...] = (
    ("vendors", Vendor, "vendor", True),
    ("regions", Region, "region", True),
    ("zones", Zone, "zone", True),
    ("servers", Server, "server", True),
    ("server_prices", ServerPrice, "server_price", True),
    ("benchmarks", Benchmark, "benchmark", False),
    ("benchmark_scores", BenchmarkScore, "benchmark_score", True),
    ("databases", Database, "database", True),
    ("database_prices", DatabasePrice, "database_price", True),
)


@derived_per_catalog
def _counts_by_vendor_and_status() -> dict[str, dict[tuple[str | None, str], int]]:
    """Per counted table: {(vendor id, status): rows} (the vendor None for tables without one)."""
    counts = {}
    for name, model, _, has_vendor in COUNTED:
        key = ("vendor_id", "status") if has_vendor else ("status",)
        grouped = model.objects.order_by().values_list(*key).annotate(rows=Count("*"))
        counts[name] = {(None, *row[:-1]) if not has_vendor else tuple(row[:-1]): row[-1] for row in grouped}
    return counts


def catalog_stats(*, vendor: list[str] | None = None, only_active: bool = False) -> dict[str, Any]:
    """Row counts of the catalog tables, of the given vendors only (benchmarks belong to none) and of
    active rows only when asked, and when the catalog was last synced.

    The catalog only changes by a sync: unfiltered, the counts are the ones the last sync recorded;
    filtered, sums of the rows per vendor and status, counted once per catalog version (the large
    price and score tables are not counted again on every request).
    """
    last = SyncRun.objects.last_loaded()
    recorded = last.rows if last is not None and not vendor and not only_active else {}
    vendors = set(vendor or ())
    counts = _counts_by_vendor_and_status() if not recorded else {}

    def count(name: str, table: str | None, *, active: bool = False) -> int:
        if table is not None and isinstance(recorded.get(table), int):
            return recorded[table]
        if not counts:
            counts.update(_counts_by_vendor_and_status())
        return sum(
            rows
            for (vendor_id, status), rows in counts[name].items()
            if (not vendors or vendor_id is None or vendor_id in vendors)
            and (status == choices.Status.ACTIVE or not (only_active or active))
        )

    return {
        "vendors": count("vendors", "vendor"),
        "regions": count("regions", "region"),
        "zones": count("zones", "zone"),
        "servers": count("servers", "server"),
        "active_servers": count("servers", None, active=True),
        "server_prices": count("server_prices", "server_price"),
        "benchmarks": count("benchmarks", "benchmark"),
        "benchmark_scores": count("benchmark_scores", "benchmark_score"),
        "databases": count("databases", "database"),
        "active_databases": count("databases", None, active=True),
        "database_prices": count("database_prices", "database_price"),
        "last_synced_at": last.finished_at if last else None,
    }
