"""A catalog answer as rows keyed by their ids, and what changed between two answers.

Each catalog route's row id fields are declared once, in ROW_IDS (by URL name). A list answer is keyed
by those fields; a detail answer (one object) is one row; an answer of a route not declared here is
keyed by its rows' whole content, so it reports rows added and removed but no changed fields.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

SERVER = ("vendor_id", "server_id")
DATABASE = ("vendor_id", "database_id")
PRICE_PLACE = ("vendor_id", "region_id", "zone_id")

# URL name -> the fields that identify a row of its answer.
ROW_IDS: dict[str, tuple[str, ...]] = {
    "servers": SERVER,
    "server": SERVER,
    "server-v2": SERVER,
    "server-similar-servers": SERVER,
    "table-server": SERVER,
    "table-server-select": SERVER,
    "databases": DATABASE,
    "database": DATABASE,
    "table-database": DATABASE,
    "server-detail-prices": (*PRICE_PLACE, "server_id", "allocation", "operating_system"),
    "server-prices": (*PRICE_PLACE, "server_id", "allocation", "operating_system"),
    "table-server-prices": (*PRICE_PLACE, "server_id", "allocation", "operating_system"),
    "server-price-history": ("region_id", "zone_id", "allocation", "operating_system", "unit", "currency"),
    "server-benchmarks": ("vendor_id", "resource_id", "benchmark_id", "config"),
    "database-benchmarks": ("vendor_id", "resource_id", "benchmark_id", "config"),
    "database-prices": ("vendor_id", "region_id", "database_id", "allocation", "ha", "ha_strategy"),
    "database-price-history": ("region_id", "allocation", "ha", "ha_strategy", "unit", "currency"),
    "table-database-price": ("vendor_id", "region_id", "database_id", "allocation", "ha", "ha_strategy"),
    "storage-prices": ("vendor_id", "region_id", "storage_id"),
    "traffic-prices": ("vendor_id", "region_id", "direction"),
    "database-storage-prices": ("vendor_id", "region_id", "database_storage_id"),
    "regions": ("vendor_id", "region_id"),
    "table-region": ("vendor_id", "region_id"),
    "table-zone": ("vendor_id", "region_id", "zone_id"),
    "table-vendor": ("vendor_id",),
    "table-storage": ("vendor_id", "storage_id"),
    "table-benchmark": ("benchmark_id",),
    "table-country": ("country_id",),
    "table-compliance_framework": ("compliance_framework_id",),
    "table-database_storage": ("vendor_id", "database_storage_id"),
    "table-vendor_compliance_link": ("vendor_id", "compliance_framework_id"),
    "benchmark-configs": ("benchmark_id", "config"),
    "benchmark-score-stats": ("benchmark_id",),
    "changes": ("id",),
    "syncs": ("id",),
}

# Fields that move at every re-crawl without saying anything about the row (when upstream last saw it).
IGNORED_FIELDS = frozenset({"observed_at"})
# Past this many ids per list, an event carries the counts only (a watch over a whole table).
MAX_EVENT_ROWS = 500
WHOLE_ROW = "_row"


def _key_text(values: list[Any]) -> str:
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def row_id(route: str, row: Any) -> dict[str, Any]:
    """The id a row is reported by: its declared id fields, or a digest of an undeclared route's row."""
    fields = ROW_IDS.get(route)
    if fields is not None and isinstance(row, dict):
        return {name: row.get(name) for name in fields if name in row}
    digest = hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {WHOLE_ROW: digest}


def _without_ignored(value: Any) -> Any:
    """`value` without the IGNORED_FIELDS, at any depth (a server row's vendor object has its observed_at)."""
    if isinstance(value, dict):
        return {name: _without_ignored(inner) for name, inner in value.items() if name not in IGNORED_FIELDS}
    if isinstance(value, list):
        return [_without_ignored(inner) for inner in value]
    return value


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted fields ("price_breakdown.compute_min_price"): a change names the leaf."""
    flat: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def answer_rows(route: str, answer: Any) -> dict[str, Any]:
    """The answer as {id text: row}, rows without the IGNORED_FIELDS; one object is one row."""
    rows = answer if isinstance(answer, list) else [answer]
    keyed: dict[str, Any] = {}
    for row in rows:
        row = _without_ignored(row)
        identity = row_id(route, row)
        keyed[_key_text([identity])] = row
    return keyed


@dataclass
class Difference:
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_data(self) -> dict[str, Any]:
        """The event's part: counts, then the rows (up to MAX_EVENT_ROWS of each, `truncated` beyond)."""
        data: dict[str, Any] = {
            "counts": {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}
        }
        for name in ("added", "removed", "changed"):
            values = getattr(self, name)
            data[name] = values[:MAX_EVENT_ROWS]
        data["truncated"] = any(len(getattr(self, name)) > MAX_EVENT_ROWS for name in ("added", "removed", "changed"))
        return data


def compare(route: str, before: dict[str, Any], after: dict[str, Any]) -> Difference:
    """Rows added and removed (their ids), and per row in both the fields whose values differ (old, new)."""
    difference = Difference()
    for key, row in after.items():
        if key not in before:
            difference.added.append(row_id(route, row))
    for key, row in before.items():
        if key not in after:
            difference.removed.append(row_id(route, row))
            continue
        new = after[key]
        if row == new:
            continue
        if isinstance(row, dict) and isinstance(new, dict):
            old_flat, new_flat = _flat(row), _flat(new)
            fields = {
                name: {"old": old_flat.get(name), "new": new_flat.get(name)}
                for name in sorted(set(old_flat) | set(new_flat))
                if old_flat.get(name) != new_flat.get(name)
            }
        else:
            fields = {"value": {"old": row, "new": new}}
        difference.changed.append({"id": row_id(route, new), "fields": fields})
    return difference
