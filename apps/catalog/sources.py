"""Where the catalog comes from: a local file, an http(s) URL, or the sparecores-data package.

A source is hashed first (cheap) so an unchanged catalog is skipped before the
expensive part; only then is it materialized as a SQLite database to read from.
"""

import builtins
import contextlib
import hashlib
import io
import lzma
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import requests
from django.conf import settings

SQLITE_MAGIC = b"SQLite format 3\x00"
XZ_MAGIC = b"\xfd7zXZ\x00"
CHUNK = 1024 * 1024
SQL_BATCH = 8 * 1024 * 1024
# The dump's own transaction statements; the loader wraps batches in its own.
_TRANSACTION_LINES = frozenset({"BEGIN TRANSACTION;", "BEGIN;", "COMMIT;"})

Progress = Callable[[int, int], None]


class CatalogSourceError(Exception):
    """The catalog source cannot be read; the message says what to do."""


@dataclass
class CatalogSource:
    """A catalog file on local disk, with the hash that identifies its version."""

    label: str
    path: Path
    data_hash: str
    _temporary: list[Path] = field(default_factory=list)

    def sqlite_path(self, progress: Progress | None = None) -> Path:
        """A SQLite database of the catalog: the file itself, or a temporary one restored from the SQL dump."""
        kind = _file_kind(self.path)
        if kind == "sqlite":
            return self.path
        handle, name = tempfile.mkstemp(prefix="keeper-catalog-", suffix=".db")
        os.close(handle)
        target = Path(name)
        self._temporary.append(target)
        try:
            with open(self.path, "rb") as raw:
                text = lzma.open(raw, "rt", encoding="utf-8") if kind == "xz" else io.TextIOWrapper(raw, "utf-8")
                with text:
                    _restore_sql_dump(text, target, raw, self.path.stat().st_size, progress)
        except (lzma.LZMAError, UnicodeDecodeError, sqlite3.Error, EOFError, ValueError) as exc:
            raise CatalogSourceError(f"{self.label} is not a readable Spare Cores SQL dump: {exc}") from exc
        return target

    def close(self) -> None:
        for path in self._temporary:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._temporary.clear()


def _file_kind(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "sql"


def _restore_sql_dump(text: IO[str], target: Path, raw: IO[bytes], total: int, progress: Progress | None) -> None:
    connection = sqlite3.connect(target, isolation_level=None)
    try:
        # A scratch copy: durability would only cost time.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        batch: list[str] = []
        size = 0
        for line in text:
            if line.strip() in _TRANSACTION_LINES:
                continue
            batch.append(line)
            size += len(line)
            if size >= SQL_BATCH and line.rstrip().endswith(";"):
                script = "".join(batch)
                if sqlite3.complete_statement(script):
                    connection.executescript("BEGIN;\n" + script + "\nCOMMIT;")
                    batch, size = [], 0
                    if progress:
                        progress(raw.tell(), total)
        if batch:
            connection.executescript("BEGIN;\n" + "".join(batch) + "\nCOMMIT;")
        if progress:
            progress(total, total)
    finally:
        connection.close()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_url(spec: str) -> bool:
    return urlparse(spec).scheme in ("http", "https")


def _download(url: str, progress: Progress | None) -> tuple[Path, str]:
    timeout = settings.KEEPER_CATALOG_DOWNLOAD_TIMEOUT
    try:
        response = requests.get(url, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise CatalogSourceError(f"Could not download the catalog from {url}: {exc.__class__.__name__}") from exc
    with response:
        if response.status_code != 200:
            raise CatalogSourceError(f"Could not download the catalog from {url}: HTTP {response.status_code}")
        total = int(response.headers.get("Content-Length") or 0)
        handle, name = tempfile.mkstemp(prefix="keeper-download-")
        digest = hashlib.sha256()
        done = 0
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total or done)
        except requests.RequestException as exc:
            Path(name).unlink(missing_ok=True)
            raise CatalogSourceError(f"Download of {url} failed: {exc.__class__.__name__}") from exc
    return Path(name), digest.hexdigest()


def _sparecores_data() -> tuple[Path, str]:
    """The published catalog, through the sparecores-data package's cache and downloader.

    The package's import-time thread retries for a quarter of a minute; one
    update attempt here fails fast when there is no network.
    """
    if not settings.SC_DATA_HTTP_TIMEOUT:
        builtins.sc_data_http_timeout = settings.KEEPER_CATALOG_DOWNLOAD_TIMEOUT
    # Importing the package starts its own download thread (with retries) and waits for it;
    # with no_update set during the import it only looks at its cache.
    builtins.sc_data_no_update = True
    try:
        from sc_data.data import Data
    finally:
        del builtins.sc_data_no_update

    data = Data(name="keeper-catalog-source")
    if not settings.SC_DATA_NO_UPDATE:
        data.update()
    path = data.actual_db_path
    if not path or not Path(path).exists():
        raise CatalogSourceError(
            "Could not obtain the Spare Cores catalog through sparecores-data (no network, "
            f"and nothing cached in {data.cache_dir}). Point Keeper at a catalog file or URL: "
            "`manage.py sync_catalog --source /path/to/sc-data-all.sql.xz` or "
            "KEEPER_CATALOG_SOURCE=/path/to/sc-data-all.sql.xz (.db, .sql and .sql.xz are accepted)."
        )
    return Path(path), data.actual_db_hash or file_hash(Path(path))


@contextlib.contextmanager
def open_catalog_source(spec: str | None, progress: Progress | None = None) -> Iterator[CatalogSource]:
    """Resolve `spec` (path, URL, or None for sparecores-data) to a local, hashed catalog file."""
    temporary: list[Path] = []
    if not spec:
        path, data_hash = _sparecores_data()
        source = CatalogSource(label="sparecores-data", path=path, data_hash=data_hash)
    elif _is_url(spec):
        path, data_hash = _download(spec, progress)
        temporary.append(path)
        source = CatalogSource(label=spec, path=path, data_hash=data_hash, _temporary=temporary)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise CatalogSourceError(f"Catalog file {spec} does not exist (expected a .db, .sql or .sql.xz file).")
        source = CatalogSource(label=str(path.resolve()), path=path, data_hash=file_hash(path))
    try:
        yield source
    finally:
        source.close()
