"""Fixtures of the catalog tests: syncing small upstream catalogs, calling the API, serving files over HTTP."""

import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.catalog.importer import TABLES
from apps.catalog.models import SyncRun
from apps.catalog.services import catalog_sync
from tests.catalog.upstream import UpstreamCatalog

SyncUpstream = Callable[..., SyncRun]


@pytest.fixture
def sync_upstream(db, tmp_path: Path) -> SyncUpstream:
    """Sync an UpstreamCatalog through the real import code (forced, so every call loads)."""
    numbers = itertools.count(1)

    def sync(catalog: UpstreamCatalog, *, force: bool = True) -> SyncRun:
        path = catalog.save(tmp_path / f"upstream-{next(numbers)}.db")
        return catalog_sync(source=str(path), force=force)

    return sync


@pytest.fixture
def catalog_state() -> Callable[[], dict[str, list[str]]]:
    """What readers see: every catalog table's natural keys."""

    def state() -> dict[str, list[str]]:
        return {table: sorted(map(str, model.objects.all())) for table, model in TABLES}

    return state


@pytest.fixture
def assert_failed_run() -> Callable[[str], SyncRun]:
    """Asserts the latest run failed, finished and recorded an error containing `message`."""

    def check(message: str) -> SyncRun:
        run = SyncRun.objects.latest()
        assert run.status == "FAILED"
        assert run.error and message in run.error, run.error
        assert run.finished_at is not None
        return run

    return check


@pytest.fixture
def http() -> APIClient:
    """A client that returns 500 responses instead of raising, to assert on what a caller would see."""
    return APIClient(raise_request_exception=False)


@pytest.fixture
def get_servers(api: APIClient) -> Callable[..., list[dict[str, Any]]]:
    """GET /servers with the given parameters (lists become repeated keys); asserts a 200."""

    def get(**params: Any) -> list[dict[str, Any]]:
        response = api.get("/servers", params)
        assert response.status_code == 200, response.content
        return response.json()

    return get


@dataclass
class FileServer:
    """A real HTTP server on 127.0.0.1 serving the files of `root`."""

    root: Path
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, server_state: FileServer, **kwargs: Any):
        self.server_state = server_state
        super().__init__(*args, directory=str(server_state.root), **kwargs)

    def end_headers(self) -> None:
        for name, value in self.server_state.headers.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self) -> None:
        self.server_state.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    root = tmp_path / "www"
    root.mkdir()
    state = FileServer(root=root, port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, server_state=state))
    state.port = server.server_address[1]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def fresh_sc_data(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sparecores-data package as in a new process: not imported yet, no sc_data settings in the environment.

    The package downloads on import, so a test that reaches it must see that import,
    exactly as `manage.py sync_catalog` does in production.
    """
    for name in ("SC_DATA_DB_PATH", "SC_DATA_NO_UPDATE", "SC_DATA_DB_URL", "SC_DATA_HTTP_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "sc_data"}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "sc_data"]:
        del sys.modules[name]
    sys.modules.update(saved)
