"""The catalog's section of the staff overview (keeper.admin; registered by apps.catalog.apps): the last
sync runs with their duration and change counts, drawn by templates/admin/catalog/staff_overview.html."""

from collections import Counter
from datetime import datetime
from typing import Any

from django.urls import reverse

from apps.catalog.models import SyncRun

SYNC_RUNS_SHOWN = 5


def change_counts(run: SyncRun) -> dict[str, int] | None:
    """A sync run's recorded changes summed per kind ({"added": 3, ...}); None if it compared nothing."""
    changes = run.changes
    if not isinstance(changes, dict):
        return None
    kinds: Counter = Counter()
    for table, counts in changes.items():
        if isinstance(counts, dict):
            kinds.update({kind: n for kind, n in counts.items() if isinstance(n, int)})
        elif isinstance(counts, int):
            kinds[table] += counts
    return dict(sorted(kinds.items()))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def recent_syncs(limit: int = SYNC_RUNS_SHOWN) -> list[dict[str, Any]]:
    runs = []
    for run in SyncRun.objects.order_by("-started_at", "-id")[:limit]:
        counts = change_counts(run)
        runs.append(
            {
                "run": run,
                "duration": _duration(run.duration),
                "changes": counts,
                "total_changes": sum(counts.values()) if counts is not None else None,
                "url": reverse("admin:catalog_syncrun_change", args=[run.pk]),
            }
        )
    return runs


def catalog_overview(user: Any, now: datetime) -> dict[str, Any] | None:
    """The last sync runs, for staff who may view them; else None."""
    if not user.has_perm("catalog.view_syncrun"):
        return None
    return {"syncs": recent_syncs(), "syncs_url": reverse("admin:catalog_syncrun_changelist")}
