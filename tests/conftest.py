"""Shared fixtures.

The suite runs on SQLite by default and on PostgreSQL when DATABASE_URL points
at one (.ci/run does both). Redis tests use KEEPER_TEST_REDIS_URL (or REDIS_URL)
and are skipped, with the reason, when no server answers there.
"""

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.catalog.services import catalog_sync
from tests.catalog.upstream import sample_catalog


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def loaded_catalog(db, tmp_path: Path):
    """The sample upstream catalog, synced through the real import code."""
    path = sample_catalog().save(tmp_path / "catalog.db")
    return catalog_sync(source=str(path))
