"""Corrupt or truncated catalog sources, end to end on PostgreSQL: `manage.py sync_catalog` and the Celery task
fail with a message saying what is wrong with the file, the run is recorded as failed, the catalog is unchanged."""

import json
from pathlib import Path

import pytest

from tests.catalog.upstream import sample_catalog
from tests.faults.conftest import Stack


def truncated_xz(folder: Path) -> Path:
    whole = sample_catalog().to_sql_xz(folder / "whole.sql.xz").read_bytes()
    path = folder / "truncated.sql.xz"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def garbage(folder: Path) -> Path:
    path = folder / "garbage.sql"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def not_a_catalog(folder: Path) -> Path:
    import sqlite3

    path = folder / "other.db"
    database = sqlite3.connect(path)
    database.execute("CREATE TABLE notes (text)")
    database.commit()
    database.close()
    return path


# What the error says, after the file's name (the schema check names the missing table instead).
SOURCES = {
    truncated_xz: "{path} is not a readable Spare Cores SQL dump",
    garbage: "{path} is not a readable Spare Cores SQL dump",
    not_a_catalog: "The source has no zzz_alembic_version table: it is not a Spare Cores catalog database.",
}


def catalog_state(stack: Stack, limit: int) -> tuple[str, str, str]:
    """The catalog as clients see it (a new `limit` each time, so not from the response cache), its rows as
    the database holds them, and the version Keeper serves."""
    answer = stack.keeper.get(f"/servers?limit={limit}&only_active=false&add_total_count_header=true")
    assert answer.status == 200, answer.body
    rows = stack.postgres.query(
        "SELECT count(*), md5(string_agg(vendor_id || '/' || server_id || '/' || coalesce(min_price::text, ''), ','"
        " ORDER BY vendor_id, server_id)) FROM catalog_server"
    )
    version = stack.postgres.query(
        "SELECT id, data_hash FROM catalog_syncrun WHERE status = 'SUCCEEDED' ORDER BY id DESC LIMIT 1"
    )
    return answer.headers["x-total-count"], rows, version


def failed_runs(stack: Stack) -> list[str]:
    return stack.postgres.query(
        "SELECT replace(error, chr(10), ' ') FROM catalog_syncrun WHERE status = 'FAILED' ORDER BY id"
    ).splitlines()


@pytest.fixture
def sources(keeper: Stack) -> dict[str, tuple[Path, str]]:
    folder = keeper.tmp / "corrupt"
    folder.mkdir(exist_ok=True)
    made = {make.__name__: (make(folder), message) for make, message in SOURCES.items()}
    return {name: (path, message.format(path=path)) for name, (path, message) in made.items()}


# In one process (each Django start-up costs seconds): the command's own code path, then the task's, per file.
BOTH_WAYS = """
import json
from django.core.management import CommandError, call_command
from django.test import override_settings
from apps.catalog.tasks import sync_catalog

outcomes = {}
for name, path in json.loads(PATHS).items():
    try:
        call_command("sync_catalog", source=path, no_progress=True)
        command = None
    except CommandError as exc:
        command = str(exc)
    # As run_schedule (or a Celery worker) runs it, with the file as KEEPER_CATALOG_SOURCE: the task fails
    # with the source's error.
    with override_settings(KEEPER_CATALOG_SOURCE=path):
        try:
            sync_catalog.apply(throw=True)
            task = None
        except Exception as exc:
            task = [type(exc).__name__, str(exc)]
    outcomes[name] = {"command": command, "task": task}
print(json.dumps(outcomes))
"""


def test_the_command_and_the_task_refuse_corrupt_sources_and_the_catalog_stays(keeper: Stack, sources):
    server = keeper.keeper
    before, failed_before = catalog_state(keeper, limit=31), failed_runs(keeper)
    truncated, message = sources["truncated_xz"]

    # What an operator sees: exit status 1 and the message, no traceback.
    done = server.manage("sync_catalog", "--source", str(truncated), "--no-progress")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"CommandError: {message}" in done.stderr
    assert "Traceback" not in done.stderr

    paths = json.dumps({name: str(path) for name, (path, _) in sources.items()})
    both = server.python(f"PATHS = {paths!r}\n{BOTH_WAYS}")
    assert both.returncode == 0, both.stderr[-3000:]
    outcomes = json.loads(both.stdout.strip().splitlines()[-1])

    for name, (_, message) in sources.items():
        assert outcomes[name]["command"].startswith(message), (name, outcomes[name])
        error, text = outcomes[name]["task"]
        assert error in ("CatalogSourceError", "CatalogSchemaError"), name
        assert text.startswith(message), (name, text)
    assert catalog_state(keeper, limit=32) == before
    new_failures = failed_runs(keeper)[len(failed_before) :]
    assert len(new_failures) == 1 + 2 * len(sources)
    for error in new_failures:
        assert any(message in error for _, message in sources.values()), error
