"""What the catalog reports at each scrape of /metrics (registered by apps.catalog.apps)."""

import time

from apps.catalog.models import SyncRun

CATALOG_AGE = "keeper_catalog_age_seconds"
CATALOG_AGE_HELP = "Seconds since the catalog in the database was loaded (last succeeded sync)."


def catalog_age_seconds() -> float | None:
    """Seconds since the sync whose data is loaded finished; None while no catalog was ever loaded.

    Read from the database at scrape time, so every worker (and every mode) agrees.
    """
    last = SyncRun.objects.last_loaded()
    if last is None or last.finished_at is None:
        return None
    return max(time.time() - last.finished_at.timestamp(), 0.0)
