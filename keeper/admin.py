"""The project's admin: plumbing the apps' admin classes share, and the staff overview.

The staff overview is the admin's first page (templates/admin/index.html): the last 30 days at a
glance, each part linking to its list. Its sections are the apps': each registers its own in its
AppConfig.ready() (`register_overview_section`), with a template and a function that builds it, so
this module imports none of them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

# The days every section of the overview looks back over.
OVERVIEW_DAYS = 30


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows only code writes: the synced catalog, audit logs, usage counters."""

    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@dataclass(frozen=True)
class OverviewSection:
    """One section of the staff overview: `build(user, now)` is its template's context (`section`), or
    None when `user` may view none of the rows behind it. Sections are shown by `position`, lowest first."""

    template: str
    build: Callable[[Any, datetime], dict[str, Any] | None]
    position: int


_overview_sections: dict[str, OverviewSection] = {}


def register_overview_section(
    name: str, *, template: str, build: Callable[[Any, datetime], dict[str, Any] | None], position: int
) -> None:
    """Show `name`'s section on the staff overview (see OverviewSection)."""
    _overview_sections[name] = OverviewSection(template, build, position)


def staff_overview(user: Any, *, now: datetime | None = None) -> list[dict[str, Any]] | None:
    """The sections `user` may see, in order, each as {"template", "section"}; None for none."""
    now = now or timezone.now()
    shown = []
    for section in sorted(_overview_sections.values(), key=lambda section: section.position):
        context = section.build(user, now)
        if context is not None:
            shown.append({"template": section.template, "section": {"days": OVERVIEW_DAYS, **context}})
    return shown or None
