"""Syncing over HTTP, end to end: a real server on 127.0.0.1 and the real download code (never the internet)."""

import hashlib
import socket
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.catalog.models import Server, SyncRun
from apps.catalog.services import catalog_sync
from apps.catalog.sources import CatalogSourceError
from tests.catalog.upstream import UpstreamCatalog, sample_catalog

PUBLISHED = "sc-data-all.sql.xz"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def publish(file_server, catalog: UpstreamCatalog, name: str = PUBLISHED) -> str:
    """Put `catalog` on the server as an .sql.xz, with the hash header the Spare Cores CDN sends."""
    path = catalog.to_sql_xz(file_server.root / name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    file_server.headers["x-amz-meta-hash"] = digest
    return digest


def test_a_url_source_is_downloaded_and_loaded(db, file_server):
    upstream = sample_catalog()
    digest = publish(file_server, upstream)
    url = file_server.url(PUBLISHED)

    run = catalog_sync(source=url)

    assert (run.status, run.source, run.data_hash) == ("SUCCEEDED", url, digest)
    assert run.rows == {table: upstream.count(table) for table in upstream.tables()}
    assert Server.objects.count() == upstream.count("server")
    assert file_server.requests == [f"/{PUBLISHED}"]


def test_an_unchanged_download_is_skipped(db, file_server):
    publish(file_server, sample_catalog())
    url = file_server.url(PUBLISHED)
    catalog_sync(source=url)

    run = catalog_sync(source=url)

    assert run.status == "SKIPPED"


def test_a_changed_download_is_loaded(db, file_server):
    url = file_server.url(PUBLISHED)
    publish(file_server, sample_catalog())
    catalog_sync(source=url)
    smaller = UpstreamCatalog()
    smaller.vendor("v")
    smaller.server("v", "only")
    publish(file_server, smaller)

    run = catalog_sync(source=url)

    assert run.status == "SUCCEEDED"
    assert list(Server.objects.values_list("server_id", flat=True)) == ["only"]


def test_a_url_source_works_through_the_command(db, file_server):
    publish(file_server, sample_catalog())
    url = file_server.url(PUBLISHED)
    out = StringIO()

    call_command("sync_catalog", "--no-progress", "--source", url, stdout=out)

    assert url in out.getvalue()
    assert SyncRun.objects.get().status == "SUCCEEDED"


def test_an_http_404_is_a_clear_source_error_and_keeps_the_catalog(db, file_server, tmp_path):
    catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")))
    servers = Server.objects.count()
    url = file_server.url("no-such-file.sql.xz")

    with pytest.raises(CatalogSourceError) as failure:
        catalog_sync(source=url)

    assert "HTTP 404" in str(failure.value)
    assert url in str(failure.value)
    assert Server.objects.count() == servers
    failed = SyncRun.objects.latest()
    assert failed.status == "FAILED" and "HTTP 404" in failed.error


def test_an_http_404_is_a_command_error(db, file_server):
    with pytest.raises(CommandError, match="HTTP 404"):
        call_command("sync_catalog", "--no-progress", "--source", file_server.url("missing.sql.xz"))


def test_a_refused_connection_is_a_clear_source_error(db, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    url = f"http://127.0.0.1:{closed_port()}/{PUBLISHED}"

    with pytest.raises(CatalogSourceError, match="Could not download"):
        catalog_sync(source=url)


def test_a_download_that_is_not_a_catalog_fails_clearly(db, file_server):
    (file_server.root / "page.html").write_text("<html>Access denied</html>")

    with pytest.raises(CatalogSourceError, match="not a readable"):
        catalog_sync(source=file_server.url("page.html"))


def test_the_default_source_is_sparecores_data_honouring_sc_data_db_url(
    db, file_server, fresh_sc_data, tmp_path, monkeypatch
):
    upstream = sample_catalog()
    digest = publish(file_server, upstream)
    monkeypatch.setenv("SC_DATA_DB_URL", file_server.url(PUBLISHED))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SC_DATA_NO_LICENSE_NOTICE", "1")
    out = StringIO()

    with override_settings(KEEPER_CATALOG_SOURCE=None):
        call_command("sync_catalog", "--no-progress", stdout=out)

    run = SyncRun.objects.get()
    assert (run.status, run.source, run.data_hash) == ("SUCCEEDED", "sparecores-data", digest)
    assert Server.objects.count() == upstream.count("server")
    assert "sparecores-data" in out.getvalue()
    assert (tmp_path / "cache" / "sparecores-data" / "sc-data-all.db").exists()


def test_the_default_source_without_network_or_cache_fails_fast_with_a_hint(db, fresh_sc_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SC_DATA_DB_URL", f"http://127.0.0.1:{closed_port()}/{PUBLISHED}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    started = time.monotonic()

    with override_settings(KEEPER_CATALOG_SOURCE=None), pytest.raises(CommandError) as failure:
        call_command("sync_catalog", "--no-progress")

    assert time.monotonic() - started < 10, "no network should fail fast"
    message = str(failure.value)
    assert "--source" in message and "KEEPER_CATALOG_SOURCE" in message
    assert SyncRun.objects.get().status == "FAILED"
