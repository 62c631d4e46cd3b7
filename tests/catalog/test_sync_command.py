"""`manage.py sync_catalog`: where it reads from, what it prints, how it fails."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.catalog.models import Server, SyncRun
from apps.catalog.sources import file_hash
from tests.catalog.upstream import UpstreamCatalog, sample_catalog


def sync_catalog(*args: str) -> str:
    out = StringIO()
    call_command("sync_catalog", "--no-progress", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def catalog_file(tmp_path):
    return sample_catalog().save(tmp_path / "catalog.db")


def test_source_option_loads_that_file_and_prints_a_summary(db, catalog_file):
    upstream = sample_catalog()

    output = sync_catalog("--source", str(catalog_file))

    run = SyncRun.objects.get()
    assert run.status == "SUCCEEDED"
    total = sum(upstream.count(table) for table in upstream.tables())
    assert str(catalog_file.resolve()) in output
    assert f"{total:,} rows" in output
    assert run.schema_version in output
    assert file_hash(catalog_file)[:12] in output
    assert Server.objects.count() == upstream.count("server")


def test_unchanged_data_is_reported_as_skipped(db, catalog_file):
    sync_catalog("--source", str(catalog_file))

    output = sync_catalog("--source", str(catalog_file))

    assert "unchanged" in output
    assert "--force" in output
    assert [run.status for run in SyncRun.objects.order_by("id")] == ["SUCCEEDED", "SKIPPED"]


def test_force_option_reloads_unchanged_data(db, catalog_file):
    sync_catalog("--source", str(catalog_file))

    output = sync_catalog("--source", str(catalog_file), "--force")

    assert "rows" in output
    assert [run.status for run in SyncRun.objects.order_by("id")] == ["SUCCEEDED", "SUCCEEDED"]


def test_keeper_catalog_source_setting_is_the_default_source(db, catalog_file):
    with override_settings(KEEPER_CATALOG_SOURCE=str(catalog_file)):
        sync_catalog()

    assert SyncRun.objects.get().source == str(catalog_file.resolve())


def test_source_option_wins_over_the_setting(db, catalog_file, tmp_path):
    other = UpstreamCatalog()
    other.vendor("v")
    other_file = other.save(tmp_path / "other.db")

    with override_settings(KEEPER_CATALOG_SOURCE=str(catalog_file)):
        sync_catalog("--source", str(other_file))

    assert SyncRun.objects.get().source == str(other_file.resolve())
    assert Server.objects.count() == 0


def test_a_missing_file_is_a_command_error_naming_it(db, tmp_path):
    missing = tmp_path / "missing.sql.xz"

    with pytest.raises(CommandError, match="missing.sql.xz"):
        sync_catalog("--source", str(missing))

    assert SyncRun.objects.get().status == "FAILED"


def test_an_unsupported_schema_is_a_command_error_naming_the_version(db, tmp_path):
    path = UpstreamCatalog(schema_version="ffffffffffff").save(tmp_path / "future.db")

    with pytest.raises(CommandError, match="ffffffffffff"):
        sync_catalog("--source", str(path))


def test_a_corrupt_file_is_a_command_error(db, tmp_path):
    path = tmp_path / "corrupt.sql.xz"
    path.write_bytes(b"\xfd7zXZ\x00garbage")

    with pytest.raises(CommandError, match="not a readable"):
        sync_catalog("--source", str(path))


def test_progress_bars_do_not_change_the_outcome(db, catalog_file, capsys):
    out = StringIO()

    call_command("sync_catalog", "--source", str(catalog_file), stdout=out)

    assert SyncRun.objects.get().status == "SUCCEEDED"
    assert "rows" in out.getvalue()
    assert "server" in capsys.readouterr().err


def test_the_command_has_help():
    from apps.catalog.management.commands.sync_catalog import Command

    assert "KEEPER_CATALOG_SOURCE" in Command.help
    assert "--force" in Command.help
