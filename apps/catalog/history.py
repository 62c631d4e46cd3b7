"""Catalog history: what each sync changed, computed by the database inside the sync's transaction.

`CatalogHistory.begin` runs before the importer deletes the catalog: it copies the outgoing rows'
natural keys, status and compared columns into temporary tables. `record` runs after the new rows
are in: it joins each copy with its table on the natural key and inserts the differences as
CatalogChange rows, all with INSERT ... SELECT (no row passes through Python). Every join probes a
unique index on the key (SQLite) or reads each side once (PostgreSQL's hash or merge joins), so the
diff grows with the catalog, not with its square:

- `removed`: an outgoing row without an incoming one (`old` holds the row);
- `added`: the reverse (`new` holds the row), only looked for when the row counts say there are any,
  through an index on the snapshot's key built just then;
- `status`: the status differs (upstream marks retired rows INACTIVE rather than deleting them);
- `changed`: one record per compared column whose value differs, with the old and new values. Not
  compared: `observed_at` (it changes at every crawl), `status` (its own kind) and the columns
  Keeper derives (a server's or database's cheapest prices follow its prices, which are recorded).

Benchmark scores are compared as each (vendor, server, benchmark)'s best active score, not row by
row. Price rows keep their currency. Everything happens in the sync's transaction, so a failed or
killed sync records nothing, and readers see a new catalog and its changes together.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from apps.catalog import choices
from apps.catalog.importer import upstream_columns
from apps.catalog.models import (
    CHANGE_KEY_COLUMNS,
    Benchmark,
    BenchmarkScore,
    CatalogChange,
    Database,
    DatabasePrice,
    DatabaseStorage,
    DatabaseStoragePrice,
    Ipv4Price,
    PriceRow,
    Region,
    Server,
    ServerPrice,
    Storage,
    StoragePrice,
    SyncRun,
    TrafficPrice,
    Vendor,
    Zone,
)

NOT_COMPARED = {"status", "observed_at"}
# Pairs of a JSON object built in one call: PostgreSQL passes at most 100 arguments to a function,
# SQLite 127 (a server row has 55 columns).
OBJECT_CHUNK = 40
TEMP_PREFIX = "keeper_history_"


@dataclass(frozen=True)
class Tracked:
    """A catalog table whose changes are recorded.

    `keys` are its natural-key columns, named as CatalogChange names them; `grouped` tables
    (benchmark scores) are compared through `source_sql`, one row per key, rather than row by row.
    """

    table: str
    model: type[models.Model]
    keys: tuple[str, ...]
    compared: tuple[str, ...]
    status: bool = True
    grouped: bool = False

    @property
    def db_table(self) -> str:
        return self.model._meta.db_table

    @property
    def priced(self) -> bool:
        return issubclass(self.model, PriceRow)

    @property
    def row_columns(self) -> tuple[str, ...]:
        """What a removed or added row records: its status (where it has one) and compared columns."""
        return (("status",) if self.status else ()) + self.compared

    def field_type(self, column: str) -> str:
        if self.grouped:
            return "FloatField"
        return next(f for f in self.model._meta.concrete_fields if f.column == column).get_internal_type()

    def source_sql(self) -> str:
        """The rows as compared: the table itself, or for benchmark scores each key's best active score
        (the server id is the score's resource_id)."""
        if not self.grouped:
            return _quote(self.db_table)
        return (
            "(SELECT vendor_id, resource_id AS server_id, benchmark_id, MAX(score) AS score "
            f"FROM {_quote(self.db_table)} "
            f"WHERE resource_type = '{choices.ResourceType.SERVER}' AND status = '{choices.Status.ACTIVE}' "
            "GROUP BY vendor_id, resource_id, benchmark_id)"
        )


def _natural_key(model: type[models.Model]) -> tuple[str, ...]:
    unique = [c for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)]
    if not unique:
        return (model._meta.pk.column,)
    return tuple(model._meta.get_field(name).column for name in unique[0].fields)


def _tracked(table: str, model: type[models.Model]) -> Tracked:
    key = _natural_key(model)
    assert set(key) <= set(CHANGE_KEY_COLUMNS), f"{table}: no CatalogChange column for its key {key}"
    compared = tuple(c for c in upstream_columns(model) if c not in key and c not in NOT_COMPARED)
    return Tracked(table, model, key, compared)


TRACKED: tuple[Tracked, ...] = (
    _tracked(choices.TrackedTable.VENDOR, Vendor),
    _tracked(choices.TrackedTable.REGION, Region),
    _tracked(choices.TrackedTable.ZONE, Zone),
    _tracked(choices.TrackedTable.STORAGE, Storage),
    _tracked(choices.TrackedTable.BENCHMARK, Benchmark),
    _tracked(choices.TrackedTable.SERVER, Server),
    _tracked(choices.TrackedTable.SERVER_PRICE, ServerPrice),
    _tracked(choices.TrackedTable.STORAGE_PRICE, StoragePrice),
    _tracked(choices.TrackedTable.TRAFFIC_PRICE, TrafficPrice),
    _tracked(choices.TrackedTable.IPV4_PRICE, Ipv4Price),
    Tracked(
        choices.TrackedTable.BENCHMARK_SCORE,
        BenchmarkScore,
        keys=("vendor_id", "server_id", "benchmark_id"),
        compared=("score",),
        status=False,
        grouped=True,
    ),
    _tracked(choices.TrackedTable.DATABASE_STORAGE, DatabaseStorage),
    _tracked(choices.TrackedTable.DATABASE, Database),
    _tracked(choices.TrackedTable.DATABASE_PRICE, DatabasePrice),
    _tracked(choices.TrackedTable.DATABASE_STORAGE_PRICE, DatabaseStoragePrice),
)
TRACKED_TABLES = tuple(str(tracked.table) for tracked in TRACKED)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _distinct(left: str, right: str) -> str:
    # NULL-safe inequality: NULL against a value is a change, NULL against NULL is none.
    return f"{left} IS DISTINCT FROM {right}" if _postgres() else f"{left} IS NOT {right}"


def _json_value(expression: str, field_type: str) -> str:
    """SQL: the column's value as JSON for a JSONField (SQL NULL stays NULL)."""
    if _postgres():
        return f"to_jsonb({expression})"
    if field_type == "JSONField":
        return expression  # already JSON text
    if field_type == "BooleanField":  # SQLite stores 0 and 1
        return f"CASE WHEN {expression} IS NULL THEN NULL WHEN {expression} THEN 'true' ELSE 'false' END"
    return f"CASE WHEN {expression} IS NULL THEN NULL ELSE json_quote({expression}) END"


def _object_value(expression: str, field_type: str) -> str:
    """SQL: the column's value as a member of a JSON object built by json_object / jsonb_build_object."""
    if _postgres():
        return expression
    if field_type == "JSONField":
        return f"json({expression})"  # embedded as JSON, not as a string
    if field_type == "BooleanField":
        return f"json(CASE WHEN {expression} THEN 'true' WHEN NOT {expression} THEN 'false' END)"
    return expression


def _json_object(pairs: list[tuple[str, str]]) -> str:
    """SQL: a JSON object of (name, SQL value) pairs, built in chunks (function argument limits)."""
    chunks = [pairs[i : i + OBJECT_CHUNK] for i in range(0, len(pairs), OBJECT_CHUNK)] or [[]]
    if _postgres():
        parts = [
            "jsonb_build_object(" + ", ".join(f"'{name}', {value}" for name, value in chunk) + ")" for chunk in chunks
        ]
        return "(" + " || ".join(parts) + ")"
    sql = "json_object(" + ", ".join(f"'{name}', {value}" for name, value in chunks[0]) + ")"
    for chunk in chunks[1:]:
        sql = f"json_set({sql}, " + ", ".join(f"'$.{name}', {value}" for name, value in chunk) + ")"
    return sql


INSERT_COLUMNS = ("sync_id", "table", "kind", "field", *CHANGE_KEY_COLUMNS, "currency", "old", "new")


class CatalogHistory:
    """Records one sync's changes. Use inside the sync's transaction:

    history = CatalogHistory.begin(run)      # before the catalog is deleted; None: nothing to compare
    ...import...
    run.changes = history.record()           # after the new catalog is in
    """

    def __init__(self, run: SyncRun):
        self.run = run
        self.seconds: dict[str, float] = {}
        self.old_counts: dict[str, int] = {}

    @classmethod
    def begin(cls, run: SyncRun) -> "CatalogHistory | None":
        """Snapshot the outgoing catalog; None for the first sync (or with KEEPER_HISTORY_DAYS=0)."""
        if not settings.KEEPER_HISTORY_DAYS or SyncRun.objects.last_loaded() is None:
            return None
        history = cls(run)
        history.snapshot()
        return history

    @cached_property
    def temp_clause(self) -> str:
        # PostgreSQL drops them at the commit (or the rollback); SQLite rolls their creation back with
        # the transaction, and `record` drops them.
        return "ON COMMIT DROP" if _postgres() else ""

    def snapshot(self) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for tracked in TRACKED:
                old = _temp("old", tracked)
                cursor.execute(f"DROP TABLE IF EXISTS {old}")
                cursor.execute(f"CREATE TEMPORARY TABLE {old} {self.temp_clause} AS {_compared_rows(tracked)}")
                _analyze(cursor, old)
                cursor.execute(f"SELECT count(*) FROM {old}")
                self.old_counts[tracked.table] = cursor.fetchone()[0]
        self.seconds["history (snapshot)"] = round(time.perf_counter() - started, 3)

    def record(self) -> dict[str, dict[str, int]]:
        """Insert the changes against the snapshot; their counts per table and kind."""
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for tracked in TRACKED:
                self._record_table(cursor, tracked)
            cursor.execute(
                f'SELECT "table", kind, count(*) FROM {_quote(CatalogChange._meta.db_table)} '
                'WHERE sync_id = %s GROUP BY "table", kind',
                [self.run.pk],
            )
            counts: dict[str, dict[str, int]] = {}
            for table, kind, count in cursor.fetchall():
                counts.setdefault(table, {})[kind] = count
            for tracked in TRACKED:
                cursor.execute(f"DROP TABLE IF EXISTS {_temp('old', tracked)}")
                cursor.execute(f"DROP TABLE IF EXISTS {_temp('new', tracked)}")
            if _postgres():
                # Fresh statistics for the readers' plans (without them PostgreSQL takes the table for
                # a few rows: /server_prices?price_change_since= read its changes 60 times slower).
                cursor.execute(f"ANALYZE {_quote(CatalogChange._meta.db_table)}")
        self.seconds["history (diff)"] = round(time.perf_counter() - started, 3)
        return {table: counts[table] for table in TRACKED_TABLES if table in counts}

    # --- one table -------------------------------------------------------------------------------

    def _record_table(self, cursor, tracked: Tracked) -> None:
        old = _temp("old", tracked)
        if tracked.grouped:
            # Aggregated once, then joined like a table.
            new = _temp("new", tracked)
            cursor.execute(f"DROP TABLE IF EXISTS {new}")
            cursor.execute(f"CREATE TEMPORARY TABLE {new} {self.temp_clause} AS {_compared_rows(tracked)}")
            _index_on_key(cursor, "new", tracked)
            _analyze(cursor, new)
        else:
            new = _quote(tracked.db_table)
        on = " AND ".join(f"n.{_quote(c)} = o.{_quote(c)}" for c in tracked.keys)
        marker = f"n.{_quote(tracked.keys[0])}"

        # The outgoing rows that were removed or differ, in one pass over the snapshot, each probing
        # the new table's unique index; then one record per removal, status change and changed column.
        differs = " OR ".join(_distinct(f"o.{_quote(c)}", f"n.{_quote(c)}") for c in tracked.row_columns)
        selected = ", ".join(
            [
                *(f"o.{_quote(c)} AS {_quote(c)}" for c in tracked.keys),
                f"{marker} AS n_key",
                *(f"o.{_quote(c)} AS {_quote('o_' + c)}" for c in tracked.row_columns),
                *(f"n.{_quote(c)} AS {_quote('n_' + c)}" for c in tracked.row_columns),
            ]
        )
        pairs = f"SELECT {selected} FROM {old} o LEFT JOIN {new} n ON {on} WHERE {marker} IS NULL OR {differs}"
        currency = "j.o_currency" if tracked.priced else "NULL"
        keys = {c: f"j.{_quote(c)}" for c in tracked.keys}
        removed_row = _json_object(
            [(c, _object_value(f"j.{_quote('o_' + c)}", tracked.field_type(c))) for c in tracked.row_columns]
        )
        branches = [
            _select(tracked, choices.ChangeKind.REMOVED, None, keys, currency, removed_row, "NULL")
            + " FROM j WHERE j.n_key IS NULL"
        ]
        for column in tracked.row_columns:
            kind = choices.ChangeKind.STATUS if column == "status" else choices.ChangeKind.CHANGED
            before, after = f"j.{_quote('o_' + column)}", f"j.{_quote('n_' + column)}"
            field_type = tracked.field_type(column)
            values = (_json_value(before, field_type), _json_value(after, field_type))
            branches.append(
                _select(tracked, kind, column, keys, currency, *values)
                + f" FROM j WHERE j.n_key IS NOT NULL AND {_distinct(before, after)}"
            )
        cursor.execute(
            f"WITH j AS MATERIALIZED ({pairs}) INSERT INTO {_target()} " + " UNION ALL ".join(branches),
            [self.run.pk] * len(branches),
        )

        # Incoming rows without an outgoing one: looked for only when the counts leave room for any.
        cursor.execute(
            f'SELECT count(*) FROM {_quote(CatalogChange._meta.db_table)} WHERE sync_id = %s AND "table" = %s '
            "AND kind = %s",
            [self.run.pk, tracked.table, choices.ChangeKind.REMOVED],
        )
        matched = self.old_counts[tracked.table] - cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {new}")
        if cursor.fetchone()[0] == matched:
            return
        _index_on_key(cursor, "old", tracked)  # only now: a sync without additions never needs it
        added_row = _json_object(
            [(c, _object_value(f"n.{_quote(c)}", tracked.field_type(c))) for c in tracked.row_columns]
        )
        keys = {c: f"n.{_quote(c)}" for c in tracked.keys}
        currency = "n.currency" if tracked.priced else "NULL"
        cursor.execute(
            f"INSERT INTO {_target()} "
            + _select(tracked, choices.ChangeKind.ADDED, None, keys, currency, "NULL", added_row)
            + f" FROM {new} n WHERE NOT EXISTS (SELECT 1 FROM {old} o WHERE {on})",
            [self.run.pk],
        )


def _temp(kind: str, tracked: Tracked) -> str:
    return _quote(f"{TEMP_PREFIX}{kind}_{tracked.table}")


def _index_on_key(cursor, kind: str, tracked: Tracked) -> None:
    """Index a temporary copy on its natural key, for the pass that probes it by key: the added rows
    look their key up in the snapshot, the snapshot's rows in the grouped scores. Without it SQLite
    scans the whole copy once per row of the other side (NOT EXISTS is a correlated subquery, for which
    it builds no automatic index): quadratic, hours for the sample's 434k prices (issue 15). The key is
    unique in the catalog table (its UniqueConstraint) and in the grouped scores (GROUP BY), hence
    UNIQUE. SQLite only: PostgreSQL turns NOT EXISTS into an anti join reading each side once (hash, or
    merge over sorted inputs) without it; for the sample's prices the index took it 1.2 s to build and
    its merge anti join 0.9 s, against 1.3-1.9 s for the anti join without it."""
    if _postgres():
        return
    columns = ", ".join(_quote(c) for c in tracked.keys)
    cursor.execute(f"CREATE UNIQUE INDEX {_temp(kind + '_key', tracked)} ON {_temp(kind, tracked)} ({columns})")


def _analyze(cursor, table: str) -> None:
    """Autovacuum never analyzes temporary tables: without statistics PostgreSQL guesses their key
    distribution and may nest loops over them; with them it hashes (anti) joins. SQLite plans these
    statements by their indexes alone."""
    if _postgres():
        cursor.execute(f"ANALYZE {table}")


def _compared_rows(tracked: Tracked) -> str:
    """SELECT of what is compared: the key, the status and the compared columns."""
    columns = ", ".join(_quote(c) for c in (*tracked.keys, *tracked.row_columns))
    return f"SELECT {columns} FROM {tracked.source_sql()} s"


def _target() -> str:
    columns = ", ".join(_quote(c) for c in INSERT_COLUMNS)
    return f"{_quote(CatalogChange._meta.db_table)} ({columns})"


def _select(
    tracked: Tracked, kind: str, field: str | None, keys: dict[str, str], currency: str, old: str, new: str
) -> str:
    """The SELECT list of one kind of record (the caller adds its FROM); the sync id is a parameter."""
    key_values = [keys.get(column, "NULL") for column in CHANGE_KEY_COLUMNS]
    field_sql = "NULL" if field is None else f"'{field}'"
    return "SELECT " + ", ".join(["%s", f"'{tracked.table}'", f"'{kind}'", field_sql, *key_values, currency, old, new])


# --- retention -------------------------------------------------------------------------------------


def history_cutoff(*, days: int | None = None, now: datetime | None = None) -> datetime:
    """Changes recorded before this are pruned (KEEPER_HISTORY_DAYS ago)."""
    days = settings.KEEPER_HISTORY_DAYS if days is None else days
    return (now or timezone.now()) - timedelta(days=days)


def history_prune(*, days: int | None = None, now: datetime | None = None) -> int:
    """Delete the changes of syncs that finished more than `days` (KEEPER_HISTORY_DAYS) ago; how many."""
    old_runs = SyncRun.objects.filter(finished_at__lt=history_cutoff(days=days, now=now)).values("id")
    deleted, _ = CatalogChange.objects.filter(sync_id__in=old_runs).delete()
    return deleted
