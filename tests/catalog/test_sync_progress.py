"""`manage.py sync_catalog` progress: tqdm bars on a terminal, one plain line per table anywhere else."""

import os
import pty
import re
import threading
from io import StringIO

import pytest
from django.core.management import call_command

from apps.catalog.models import SyncRun
from tests.catalog.upstream import sample_catalog

LINE = re.compile(r"^(?P<table>\w+): (?P<rows>[\d,]+) (?P<unit>rows|bytes) in (?P<seconds>\d+\.\d\d)s$")


@pytest.fixture
def catalog_file(tmp_path):
    return str(sample_catalog().save(tmp_path / "catalog.db"))


class Terminal:
    """A pseudo-terminal: what the command writes to `stream` is collected from the other end."""

    def __init__(self):
        self.controller, device = pty.openpty()
        self.stream = os.fdopen(device, "w")
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:  # EIO: the terminal's device end was closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def output(self) -> str:
        self.stream.close()
        self.reader.join(timeout=10)
        os.close(self.controller)
        return b"".join(self.chunks).decode(errors="replace")


def test_off_a_terminal_each_table_is_one_plain_line_with_rows_and_seconds(db, catalog_file):
    stderr = StringIO()

    call_command("sync_catalog", "--source", catalog_file, stdout=StringIO(), stderr=stderr)

    output = stderr.getvalue()
    run = SyncRun.objects.get()
    assert "\r" not in output
    lines = output.splitlines()
    parsed = {match["table"]: match for match in map(LINE.match, lines) if match}
    assert len(parsed) == len(lines), f"lines not in the plain format: {lines}"
    assert run.rows
    for table, rows in run.rows.items():
        assert parsed[table]["unit"] == "rows"
        assert int(parsed[table]["rows"].replace(",", "")) == rows


def test_on_a_terminal_tqdm_draws_bars(db, catalog_file):
    terminal = Terminal()

    call_command("sync_catalog", "--source", catalog_file, stdout=StringIO(), stderr=terminal.stream)

    output = terminal.output()
    # Bars are redrawn in place: carriage returns that do not end a line (the terminal turns "\n" into "\r\n").
    assert re.search(r"\r(?!\n)", output)
    assert "100%" in output
    assert "server_price" in output
    assert not any(LINE.match(line.strip()) for line in output.splitlines())


def test_no_progress_prints_nothing_either_way(db, catalog_file):
    plain, terminal = StringIO(), Terminal()

    call_command("sync_catalog", "--source", catalog_file, "--no-progress", stdout=StringIO(), stderr=plain)
    call_command(
        "sync_catalog", "--source", catalog_file, "--force", "--no-progress", stdout=StringIO(), stderr=terminal.stream
    )

    assert plain.getvalue() == ""
    assert terminal.output() == ""
    assert SyncRun.objects.filter(status="SUCCEEDED").count() == 2
