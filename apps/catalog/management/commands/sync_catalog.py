import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.catalog.importer import CatalogSchemaError
from apps.catalog.services import catalog_sync
from apps.catalog.sources import CatalogSourceError

logger = logging.getLogger(__name__)


class ProgressBars:
    """One tqdm bar per stage or table, on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.name: str | None = None

    def update(self, name: str, done: int, total: int, unit: str = "rows") -> None:
        if not self.enabled:
            return
        if name != self.name:
            self.close()
            scale = unit == "B"
            self.bar = tqdm(total=total, desc=f"{name:>22}", unit=unit, unit_scale=scale, leave=True)
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


class Command(BaseCommand):
    help = (
        "Load the Spare Cores catalog into Keeper's database. The source is --source, else "
        "KEEPER_CATALOG_SOURCE, else the published catalog through sparecores-data. "
        "An unchanged catalog (same hash as the last successful sync) is skipped unless --force."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", help="A .db, .sql or .sql.xz file, or an http(s) URL of one.")
        parser.add_argument("--force", action="store_true", help="Import even if the data is unchanged.")
        parser.add_argument("--no-progress", action="store_true", help="Do not show progress bars.")
        parser.add_argument(
            "--repeat",
            action="store_true",
            help="Keep running: sync every KEEPER_CATALOG_SYNC_INTERVAL_MINUTES (for setups without Celery beat).",
        )
        parser.add_argument(
            "--unless-celery", action="store_true", help="With --repeat: exit at once when Celery beat is in use."
        )

    def handle(self, *args, **options) -> None:
        if options["repeat"]:
            if options["unless_celery"] and not settings.CELERY_TASK_ALWAYS_EAGER:
                self.stdout.write("Celery beat keeps the catalog in sync (REDIS_URL is set); nothing to do.")
                return
            self.repeat(options)
            return
        self.sync_once(options)

    def repeat(self, options) -> None:
        interval = settings.CATALOG_SYNC_INTERVAL_MINUTES * 60
        self.stdout.write(f"Syncing the catalog every {interval // 60} minutes.")
        while True:
            time.sleep(interval)
            try:
                self.sync_once({**options, "no_progress": True})
            except Exception as exc:  # noqa: BLE001 - log and try again next time; the old catalog stays
                logger.error("Scheduled catalog sync failed: %s", exc)

    def sync_once(self, options) -> None:
        source = options["source"] or settings.KEEPER_CATALOG_SOURCE
        bars = ProgressBars(enabled=not options["no_progress"])
        try:
            run = catalog_sync(source=source, force=options["force"], on_stage=bars.stage, on_table=bars.update)
        except (CatalogSourceError, CatalogSchemaError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bars.close()
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
