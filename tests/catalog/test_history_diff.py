"""apps.catalog.history on rows added, removed and changed in every tracked table: what it records, and
that every statement of the diff finds its rows through an index (SQLite) or, planned on real statistics,
reads each side once (PostgreSQL's hash and merge joins), so it grows with the catalog, not with its
square (a correlated scan of an unindexed snapshot took hours for the sample, issue 15)."""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection

from apps.catalog.history import TEMP_PREFIX, TRACKED_TABLES
from apps.catalog.models import CatalogChange
from tests.catalog.history_catalogs import EVERY_TABLE_CHANGES, every_table_catalog, every_table_changed

# The statements of the diff that read a snapshot: those that join or compare (not CREATE, DROP, count).
DIFF_STATEMENT = re.compile(r"^\s*(WITH|INSERT)\b", re.IGNORECASE)


@contextmanager
def explained_diff() -> Iterator[list[tuple[str, object]]]:
    """Every diff statement run meanwhile, with its plan taken just before it runs (the temporary tables
    exist only during the sync): SQLite's EXPLAIN QUERY PLAN rows, PostgreSQL's JSON plan."""
    plans: list[tuple[str, object]] = []
    inside = False

    def explain(execute: Callable, sql: str, params, many: bool, context: dict):
        nonlocal inside
        if not inside and TEMP_PREFIX in sql and DIFF_STATEMENT.match(sql):
            inside = True
            try:
                with connection.cursor() as cursor:
                    if connection.vendor == "postgresql":
                        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                        plan = cursor.fetchone()[0]
                        plan = plan if isinstance(plan, list) else json.loads(plan)
                        # What the planner knew of the temporary copies: reltuples is -1 until ANALYZE.
                        cursor.execute(
                            "SELECT relname, reltuples FROM pg_class WHERE relpersistence = 't' AND relkind = 'r' "
                            "AND relname LIKE %s",
                            [TEMP_PREFIX + "%"],
                        )
                        plan[0]["temporary tables"] = dict(cursor.fetchall())
                        plans.append((sql, plan))
                    else:
                        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                        plans.append((sql, cursor.fetchall()))
            finally:
                inside = False
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        yield plans


def statement_name(sql: str) -> str:
    """'<table> <pass>' for a diff statement: the pass over the snapshot or the one for added rows."""
    table = re.search(r"'(\w+)'", sql).group(1)
    return f"{table} {'added' if 'NOT EXISTS' in sql else 'removed/changed'}"


def sqlite_nested_scans(rows: list[tuple]) -> list[str]:
    """The loops SQLite runs once per row of another loop without an index of their own: a table scanned
    inside a correlated subquery, or as the inner table of a join (after its first loop, each sibling loop
    of a plan node runs once per row of the loops before it). An automatic index counts as none: SQLite
    builds one per statement, and never for a correlated subquery."""
    details = {node: detail for node, _, _, detail in rows}
    parents = {node: parent for node, parent, _, _ in rows}
    seen_loop: set[int] = set()
    bad = []
    for _, parent, _, detail in rows:
        if not detail.startswith(("SCAN ", "SEARCH ")) or detail == "SCAN CONSTANT ROW":
            continue
        nested = parent in seen_loop
        seen_loop.add(parent)
        ancestor = parent
        while ancestor:
            nested = nested or details.get(ancestor, "").startswith("CORRELATED")
            ancestor = parents.get(ancestor, 0)
        indexed = detail.startswith("SEARCH ") and "AUTOMATIC" not in detail
        if nested and not indexed:
            bad.append(detail)
    return bad


# PostgreSQL plans by cost: over a handful of rows a nested loop is its best plan, and the right one. A
# loop over more rows than this is the quadratic plan the statistics must prevent.
POSTGRES_TINY_ROWS = 100


def postgres_nested_scans(plan: list[dict]) -> list[str]:
    """Sequential scans PostgreSQL repeats per outer row over more than a few rows (the inner side of a
    nested loop, or a correlated subplan: NOT EXISTS it did not turn into an anti join), and the temporary
    copies it planned without statistics (its estimates then are guesses, not the table). Hash and merge
    joins read each side once."""
    temporary = plan[0]["temporary tables"]
    bad = [f"no statistics for {name}" for name, rows in temporary.items() if rows < 0]

    def scans(node: dict) -> list[str]:
        tiny = node["Plan Rows"] <= POSTGRES_TINY_ROWS
        found = [node["Relation Name"]] if node["Node Type"] == "Seq Scan" and not tiny else []
        for child in node.get("Plans", []):
            if child["Node Type"] != "Hash":  # a hash is built once
                found += scans(child)
        return found

    def walk(node: dict) -> None:
        children = node.get("Plans", [])
        if node["Node Type"] == "Nested Loop" and len(children) == 2:
            bad.extend(f"nested loop over {name}" for name in scans(children[1]))
        for child in children:
            if child.get("Parent Relationship") == "SubPlan":
                bad.extend(f"subplan over {name}" for name in scans(child))
            walk(child)

    walk(plan[0]["Plan"])
    return bad


def test_every_join_of_the_diff_probes_an_index_or_reads_each_side_once(sync_upstream):
    sync_upstream(every_table_catalog())

    with explained_diff() as plans:
        run = sync_upstream(every_table_changed())

    assert run.changes and all("added" in counts for counts in run.changes.values()), "the added pass ran"
    joined = [sql for sql, _ in plans]
    assert sum("NOT EXISTS" in sql for sql in joined) == len(TRACKED_TABLES), "one added pass per table"
    assert sum(sql.lstrip().startswith("WITH") for sql in joined) == len(TRACKED_TABLES), "one pass over each snapshot"
    nested_scans = postgres_nested_scans if connection.vendor == "postgresql" else sqlite_nested_scans
    failures = {statement_name(sql): nested_scans(plan) for sql, plan in plans}
    assert {name: bad for name, bad in failures.items() if bad} == {}


def test_rows_added_removed_and_changed_in_every_table_are_each_recorded(sync_upstream):
    sync_upstream(every_table_catalog())

    run = sync_upstream(every_table_changed())

    got = {(c.table, c.kind): c for c in CatalogChange.objects.filter(sync=run)}
    assert CatalogChange.objects.count() == len(got), "one record per table and kind"
    assert {kind: c.key for kind, c in got.items()} == EVERY_TABLE_CHANGES
    assert run.changes == {table: {"removed": 1, "changed": 1, "added": 1} for table in TRACKED_TABLES}
    changed = {table: (c.field, c.old, c.new) for (table, kind), c in got.items() if kind == "changed"}
    assert changed == {
        "vendor": ("founding_year", 2006, 2021),
        "region": ("display_name", "R1", "IOWA"),
        "zone": ("display_name", "r1z1", "Iowa 1"),
        "storage": ("max_iops", None, 16000),
        "benchmark": ("name", "stress_ng:best1", "single core"),
        "server": ("vcpus", 2, 4),
        "server_price": ("price", 0.0104, 0.011),
        "storage_price": ("price", 0.1, 0.08),
        "traffic_price": ("price", 0.09, 0.08),
        "ipv4_price": ("price", 0.005, 0.006),
        "benchmark_score": ("score", 40000, 41000),
        "database_storage": ("max_iops", None, 16000),
        "database": ("vcpus", 2, 4),
        "database_price": ("price", 0.178, 0.19),
        "database_storage_price": ("price", 0.115, 0.12),
    }
    added = {table: c.new for (table, kind), c in got.items() if kind == "added"}
    assert all(c.old is None for (_, kind), c in got.items() if kind == "added")
    assert added["server_price"]["price"] == 0.085 and added["server_price"]["currency"] == "USD"
    assert added["ipv4_price"] == {
        "status": "active",
        "unit": "hour",
        "price": 0.001,
        "price_upfront": 0,
        "price_tiered": [],
        "currency": "USD",
    }
    assert added["benchmark_score"] == {"score": 4500}
    assert added["server"]["vcpus"] == 2 and added["server"]["status"] == "active"
    assert added["vendor"]["name"] == "OVH"
    # A database row as recorded: values (not upstream's member names), JSON as JSON, booleans as booleans.
    assert added["database"]["status"] == "active" and added["database"]["engine"] == "postgresql"
    assert added["database"]["ha"] == ["multi-zone", "none"] and added["database"]["disk_encryption"] is True
    assert "min_price" not in added["database"], "derived columns are not recorded"
    assert added["database_price"]["price"] == 0.25 and added["database_price"]["currency"] == "USD"
    removed = {table: c.old for (table, kind), c in got.items() if kind == "removed"}
    assert removed["traffic_price"]["price"] == 0.0
    assert removed["benchmark_score"] == {"score": 5000}
    assert all(c.new is None for (_, kind), c in got.items() if kind == "removed")
