"""What every browser check watches on its page, and the steps they share.

A page must come from Keeper alone: a request to another host, a console error, an uncaught page
error, a failed request or an error response fails the check (`settle`). A load that the page's own
Content-Security-Policy refuses never leaves the browser; it fails the check too, unless the check
names it as expected. Screenshots of every page
go to var/screenshots/ (git-ignored).
"""

import importlib.util
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.browser.live import PROJECT, LiveKeeper

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1"}
# In-page URLs that never reach a network.
LOCAL_SCHEMES = {"data", "blob", "about"}
SCREENSHOTS = PROJECT / "var" / "screenshots"
# Generous for a shared 2-core machine; only a broken page waits this long.
TIMEOUT_MS = 20_000
# Chromium's console error for a load the page's Content-Security-Policy refused (older and newer wording).
CSP_REFUSAL = re.compile(r"'(?P<url>[^']+)' (?:because it )?violates the following Content Security Policy directive")


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS


def missing_prerequisite() -> str | None:
    """Why the browser checks cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium (bin/ci-browser does)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is missing: pip install -r requirements-dev.txt"
    return None


@dataclass
class PageWatch:
    """What a page asked for, and what went wrong: requests elsewhere, console and page errors, failed requests."""

    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Loads the page's own Content-Security-Policy refused (never sent), from failed requests and the console.
    refused: list[str] = field(default_factory=list)

    def attach(self, context, page) -> None:
        # On the context, so requests of workers and popups count too.
        context.route("**/*", self._route)
        context.on("request", self._request)
        context.on("requestfailed", self._failed)
        context.on("response", self._response)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("websocket", lambda socket: self._request_url(socket.url))

    @staticmethod
    def _route(route) -> None:
        # Aborted at once: a page never waits on a host it may not reach (it also fails, below).
        if is_local(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    def _request(self, request) -> None:
        self._request_url(request.url)

    def _request_url(self, url: str) -> None:
        self.requests.append(url)
        if not is_local(url):
            self.outside.append(url)

    def _failed(self, request) -> None:
        if request.failure == "csp":
            self.refused.append(request.url)
        else:
            self.errors.append(f"failed: {request.url} ({request.failure})")

    def _console(self, message) -> None:
        refusal = CSP_REFUSAL.search(message.text)
        if refusal:
            self.refused.append(refusal["url"])
        elif message.type == "error":
            location = message.location
            self.errors.append(f"console error: {message.text} ({location.get('url')}:{location.get('lineNumber')})")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def assert_clean(self, where: str) -> None:
        sent = [url for url in self.outside if url not in self.refused]
        assert not sent, f"{where}: requests to other hosts than Keeper's: {sent}"
        refused = sorted(set(self.refused))
        assert not refused, f"{where}: loads refused by the page's Content-Security-Policy: {refused}"
        assert not self.errors, f"{where}:\n" + "\n".join(self.errors)


def open_page(browser, watch: PageWatch, storage_state: dict | None = None):
    """A page in a context of its own (cookies, cache), watched from its first request."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC", storage_state=storage_state
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch.attach(context, page)
    return page


def settle(page, watch: PageWatch, shot: str, *, full_page: bool = True) -> None:
    """Let the page finish loading (fonts, images, late scripts), save its screenshot, check it."""
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{shot}.png", full_page=full_page)
    watch.assert_clean(shot)


def call_api(url: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict]:
    """A JSON request to the live Keeper, outside the browser: its status and body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def sign_in(page, keeper: LiveKeeper) -> None:
    """Fill in the admin's login form on the current page, and wait for the signed-in page."""
    page.fill("#id_username", keeper.username)
    page.fill("#id_password", keeper.password)
    page.click("#login-form [type=submit]")
    page.locator("#user-tools").wait_for()
