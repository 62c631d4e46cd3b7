"""The worker's first catalog sync (keeper/celery.py FirstCatalogSync), run in this process.

The real worker doing it against a real stack is in tests/stack/test_stack_e2e.py.
"""

from pathlib import Path

import pytest
from celery.platforms import EX_FAILURE

from apps.catalog.models import SyncRun
from keeper.celery import FirstCatalogSync, app
from tests.catalog.upstream import sample_catalog

# transactional_db: the step closes its connections when done, as a worker's main process must.
pytestmark = pytest.mark.usefixtures("transactional_db")


def test_the_first_sync_loads_the_catalog_from_the_configured_source(settings, tmp_path: Path) -> None:
    settings.KEEPER_CATALOG_SOURCE = str(sample_catalog().save(tmp_path / "catalog.db"))

    FirstCatalogSync(None).start(None)

    run = SyncRun.objects.get()
    assert (run.status, run.source) == ("SUCCEEDED", settings.KEEPER_CATALOG_SOURCE)


def test_an_unchanged_catalog_is_only_hashed_when_another_worker_starts(settings, tmp_path: Path) -> None:
    settings.KEEPER_CATALOG_SOURCE = str(sample_catalog().save(tmp_path / "catalog.db"))

    FirstCatalogSync(None).start(None)
    FirstCatalogSync(None).start(None)

    assert list(SyncRun.objects.order_by("id").values_list("status", flat=True)) == ["SUCCEEDED", "SKIPPED"]


def test_a_failed_first_sync_stops_the_worker_with_status_1(settings, tmp_path: Path) -> None:
    settings.KEEPER_CATALOG_SOURCE = str(tmp_path / "missing.db")

    with pytest.raises(SystemExit) as stopped:
        FirstCatalogSync(None).start(None)

    assert stopped.value.code == EX_FAILURE == 1
    run = SyncRun.objects.get()
    assert run.status == "FAILED" and "missing.db" in run.error


def test_the_step_is_part_of_every_worker_and_can_be_turned_off() -> None:
    assert FirstCatalogSync in app.steps["worker"]
    assert FirstCatalogSync(None).enabled
    assert not FirstCatalogSync(None, first_sync=False).enabled
    [option] = [option for option in app.user_options["worker"] if option.name == "first_sync"]
    assert option.opts == ["--first-sync"] and option.secondary_opts == ["--no-first-sync"]
