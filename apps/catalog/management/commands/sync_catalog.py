import time
from typing import TextIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.catalog.importer import CatalogSchemaError
from apps.catalog.services import catalog_sync
from apps.catalog.sources import CatalogSourceError


class ProgressBars:
    """One tqdm bar per stage or table, on a terminal."""

    def __init__(self, enabled: bool, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream
        self.bar: tqdm | None = None
        self.name: str | None = None

    def update(self, name: str, done: int, total: int, unit: str = "rows") -> None:
        if not self.enabled:
            return
        if name != self.name:
            self.close()
            scale = unit == "B"
            self.bar = tqdm(total=total, desc=f"{name:>22}", unit=unit, unit_scale=scale, leave=True, file=self.stream)
            self.name = name
        self.bar.total = max(total, done)
        self.bar.n = done
        self.bar.refresh()

    def stage(self, name: str, done: int, total: int) -> None:
        self.update(name, done, total, unit="B")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.name = None


class ProgressLines:
    """Progress for logs (no terminal): one line per stage or table when it ends, no carriage returns."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.name: str | None = None
        self.unit = "rows"
        self.done = 0
        self.started = 0.0

    def update(self, name: str, done: int, total: int, unit: str = "rows") -> None:
        if name != self.name:
            self.close()
            self.name, self.unit, self.started = name, unit, time.monotonic()
        self.done = done

    def stage(self, name: str, done: int, total: int) -> None:
        self.update(name, done, total, unit="bytes")

    def close(self) -> None:
        if self.name is None:
            return
        seconds = time.monotonic() - self.started
        self.stream.write(f"{self.name}: {self.done:,} {self.unit} in {seconds:.2f}s\n")
        self.stream.flush()
        self.name = None


class Command(BaseCommand):
    help = (
        "Load the Spare Cores catalog into Keeper's database. The source is --source, else "
        "KEEPER_CATALOG_SOURCE, else the published catalog through sparecores-data. "
        "An unchanged catalog (same hash as the last successful sync) is skipped unless --force."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", help="A .db, .sql or .sql.xz file, or an http(s) URL of one.")
        parser.add_argument("--force", action="store_true", help="Import even if the data is unchanged.")
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="Show no progress. Otherwise: bars on a terminal, else one line per table (rows, seconds).",
        )

    def handle(self, *args, **options) -> None:
        source = options["source"] or settings.KEEPER_CATALOG_SOURCE
        # tqdm redraws its bars with carriage returns: right on a terminal, noise in a log file or CI output.
        if options["no_progress"]:
            progress = ProgressBars(enabled=False)
        elif self.stderr.isatty():
            progress = ProgressBars(enabled=True, stream=self.stderr._out)
        else:
            progress = ProgressLines(self.stderr._out)
        try:
            run = catalog_sync(source=source, force=options["force"], on_stage=progress.stage, on_table=progress.update)
        except (CatalogSourceError, CatalogSchemaError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()
        if run.status == "SKIPPED":
            self.stdout.write(f"Catalog unchanged (hash {run.data_hash[:12]}); nothing to do. Use --force to reload.")
            return
        total = sum(run.rows.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Catalog loaded from {run.source}: {total:,} rows in {run.duration:.1f}s "
                f"(schema {run.schema_version}, hash {run.data_hash[:12]})."
            )
        )
