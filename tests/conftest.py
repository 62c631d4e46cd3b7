"""Shared fixtures.

The suite runs on SQLite by default and on PostgreSQL when DATABASE_URL points
at one (.ci/run does both). Redis tests use KEEPER_TEST_REDIS_URL (or REDIS_URL)
and are skipped, with the reason, when no server answers there.
"""

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.catalog.services import catalog_sync
from apps.catalog.version import forget_catalog_state
from apps.keys.traffic import traffic_buffer
from tests.catalog.upstream import sample_catalog

# The fake identity provider and Redis fixtures, and Keeper under gunicorn (live_keeper), for every test package.
pytest_plugins = ["tests.fakes", "tests.live"]


@pytest.fixture(autouse=True)
def _no_response_cache(settings) -> None:
    """Tests see every request computed; tests/catalog/test_response_cache.py turns the cache on."""
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 0


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def loaded_catalog(db, tmp_path: Path):
    """The sample upstream catalog, synced through the real import code."""
    path = sample_catalog().save(tmp_path / "catalog.db")
    return catalog_sync(source=str(path))


@pytest.fixture(autouse=True)
def _traffic_counted_not_flushed(monkeypatch) -> None:
    """The staff overview's traffic counters are flushed by the tests reading them (tests/keys/test_staff_overview.py).

    Flushed on their own, they would add queries to some other test's request, whose query count is pinned.
    """
    monkeypatch.setattr(traffic_buffer, "auto_flush", False)
    traffic_buffer.clear()


@pytest.fixture(autouse=True)
def _fresh_catalog_version() -> None:
    """Each test reads the catalog version anew (processes remember it for up to a second)."""
    forget_catalog_state()
