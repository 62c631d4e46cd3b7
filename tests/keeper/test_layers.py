"""The ground imports no app: `keeper/` is the plumbing every app stands on, so nothing in it imports
`apps` but the composition roots that assemble the project (settings, urls, the Celery app, the
gunicorn configuration). The apps fill what the plumbing offers in their AppConfig.ready() instead:
deferred writes (keeper/writes.py), gauges read at scrape time (keeper/observability/metrics.py),
the staff overview's sections (keeper/admin.py)."""

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser

from keeper import admin

KEEPER = Path(__file__).resolve().parent.parent.parent / "keeper"
COMPOSITION_ROOTS = {"settings.py", "urls.py", "celery.py", "gunicorn.conf.py"}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (relative imports resolved)."""
    package = ".".join(path.relative_to(KEEPER.parent).with_suffix("").parts[:-1])
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            modules.add(module)
            modules.update(f"{module}.{alias.name}" for alias in node.names)
    return modules


def test_nothing_under_keeper_but_the_composition_roots_imports_an_app():
    upward = {
        str(path.relative_to(KEEPER)): sorted(m for m in imported_modules(path) if m == "apps" or m.startswith("apps."))
        for path in sorted(KEEPER.rglob("*.py"))
        if str(path.relative_to(KEEPER)) not in COMPOSITION_ROOTS
    }

    assert {path: modules for path, modules in upward.items() if modules} == {}
    # The reading above does see imports: the roots do import apps.
    assert any(m.startswith("apps.") for m in imported_modules(KEEPER / "celery.py"))


@pytest.mark.django_db
def test_the_overview_shows_nothing_to_a_user_who_may_view_no_section():
    assert admin.staff_overview(AnonymousUser()) is None
