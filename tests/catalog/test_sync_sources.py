"""Catalog sources: .db, .sql and .sql.xz files, and files that are not catalogs."""

import sqlite3
import tempfile
from pathlib import Path

import pytest

from apps.catalog import sources
from apps.catalog.importer import CatalogSchemaError
from apps.catalog.models import Server
from apps.catalog.services import catalog_sync
from apps.catalog.sources import CatalogSourceError, file_hash
from tests.catalog.upstream import UpstreamCatalog, sample_catalog


def test_a_database_that_is_not_a_catalog_fails_clearly(sync_upstream, tmp_path, catalog_state, assert_failed_run):
    sync_upstream(sample_catalog())
    before = catalog_state()
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()

    with pytest.raises(CatalogSchemaError, match="not a Spare Cores catalog"):
        catalog_sync(source=str(path))

    assert catalog_state() == before
    assert_failed_run("not a Spare Cores catalog")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("corrupt.db", b"SQLite format 3\x00" + b"\x07" * 4000, "not a Spare Cores catalog"),
        ("corrupt.sql", b"CREATE TABLE country (\n this is not sql;\n", "not a readable Spare Cores SQL dump"),
        ("corrupt.sql.xz", b"\xfd7zXZ\x00" + b"\x00" * 64, "not a readable Spare Cores SQL dump"),
        ("binary.sql", bytes(range(256)) * 8, "not a readable Spare Cores SQL dump"),
    ],
)
def test_a_corrupt_file_fails_and_leaves_the_catalog_intact(
    sync_upstream, tmp_path, name, content, message, catalog_state, assert_failed_run
):
    sync_upstream(sample_catalog())
    before = catalog_state()
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises((CatalogSourceError, CatalogSchemaError), match=message):
        catalog_sync(source=str(path))

    assert catalog_state() == before
    assert_failed_run(message)


def test_a_truncated_sql_xz_fails_and_leaves_the_catalog_intact(
    sync_upstream, tmp_path, catalog_state, assert_failed_run
):
    sync_upstream(sample_catalog())
    before = catalog_state()
    whole = sample_catalog().to_sql_xz(tmp_path / "whole.sql.xz").read_bytes()
    path = tmp_path / "truncated.sql.xz"
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(CatalogSourceError, match="not a readable Spare Cores SQL dump"):
        catalog_sync(source=str(path))

    assert catalog_state() == before
    assert_failed_run("not a readable Spare Cores SQL dump")


def test_a_missing_file_fails_with_a_message_naming_it(db, tmp_path, assert_failed_run):
    missing = tmp_path / "nowhere.sql.xz"

    with pytest.raises(CatalogSourceError, match="nowhere.sql.xz"):
        catalog_sync(source=str(missing))

    assert_failed_run("nowhere.sql.xz")


@pytest.mark.parametrize("suffix", [".db", ".sql", ".sql.xz"])
def test_every_source_format_loads_the_same_catalog(db, tmp_path, suffix, api):
    upstream = sample_catalog()
    writers = {".db": upstream.save, ".sql": upstream.to_sql, ".sql.xz": upstream.to_sql_xz}
    path: Path = writers[suffix](tmp_path / f"catalog{suffix}")

    run = catalog_sync(source=str(path))

    assert run.status == "SUCCEEDED"
    assert run.data_hash == file_hash(path)
    assert run.rows == {table: upstream.count(table) for table in upstream.tables()}
    ids = {(row["vendor_id"], row["server_id"]) for row in api.get("/servers", {"limit": -1}).json()}
    expected = upstream.db.execute(
        "SELECT DISTINCT s.vendor_id, s.server_id FROM server s JOIN server_price p"
        " ON p.vendor_id = s.vendor_id AND p.server_id = s.server_id"
        " WHERE s.status = 'ACTIVE' AND p.status = 'ACTIVE'"
    )
    assert ids == set(expected)


def test_a_sql_dump_leaves_no_temporary_files(db, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    path = sample_catalog().to_sql_xz(tmp_path / "catalog.sql.xz")

    catalog_sync(source=str(path))

    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("suffix", [".sql", ".sql.xz"])
def test_a_dump_restored_in_many_small_batches_keeps_text_with_semicolons_and_newlines(
    db, tmp_path, monkeypatch, api, suffix
):
    # Tiny batches put batch boundaries everywhere, as an 8 MiB batch does in a real dump.
    monkeypatch.setattr(sources, "SQL_BATCH", 16)
    tricky = {
        "semicolon": "ends with a semicolon;\nthen goes on; and on;",
        "quote": 'it\'s "quoted"; -- not a comment',
        "unicode": "Zürich; 東京\n😀",
    }
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for server_id, description in tricky.items():
        catalog.server("v", server_id, description=description)
        catalog.price("v", server_id, price=0.1)
    writer = catalog.to_sql if suffix == ".sql" else catalog.to_sql_xz

    catalog_sync(source=str(writer(tmp_path / f"catalog{suffix}")))

    rows = api.get("/table/server").json()
    assert {row["server_id"]: row["description"] for row in rows} == tricky
    assert Server.objects.count() == len(tricky)
