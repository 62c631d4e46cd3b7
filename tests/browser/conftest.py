"""Fixtures of the browser checks: a live Keeper, one Chromium, watched pages (anonymous or signed in).

The checks run on their own (bin/ci-browser, or `pytest tests/browser`), not in every suite run:
they start a server and a browser to test what the rest of the suite does not (pages as a browser
renders them), and running them again on each database of the suite would only repeat them.
Without /usr/bin/chromium or Playwright they are skipped, with the reason.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.live import LiveKeeper, live_keeper
from tests.browser.pages import CHROMIUM, PageWatch, missing_prerequisite, open_page, sign_in

HERE = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    """Whether the command line names this folder, or something inside it."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in Path(item.path).parents]
    if not mine:
        return
    reason = (
        missing_prerequisite()
        if _asked_for(config)
        else "browser checks run on their own: bin/ci-browser or pytest tests/browser"
    )
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def keeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKeeper]:
    with live_keeper(tmp_path_factory.mktemp("live-keeper")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator:
    # Imported here: this file is loaded by every suite run, with or without Playwright.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # No host name resolves: what the browser fetches by itself cannot leave the machine either.
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser, watch: PageWatch) -> Iterator:
    """An anonymous page."""
    page = open_page(browser, watch)
    yield page
    page.context.close()


@pytest.fixture(scope="session")
def admin_session(browser, keeper: LiveKeeper) -> dict:
    """The cookies of a staff session, signed in once through the login form."""
    page = open_page(browser, PageWatch())
    page.goto(f"{keeper.url}/admin/login/")
    sign_in(page, keeper)
    state = page.context.storage_state()
    page.context.close()
    return state


@pytest.fixture
def admin_page(browser, watch: PageWatch, admin_session: dict) -> Iterator:
    """A page signed in to the admin as the superuser."""
    page = open_page(browser, watch, admin_session)
    yield page
    page.context.close()
