"""Swagger UI, ReDoc and the admin in a real browser: Debian's Chromium, driven by Playwright.

Every page must come from Keeper alone (tests/browser/pages.py): a request to any other host fails
the test, and so do a console error, an uncaught page error, a failed request and an error response.
Screenshots of every page go to var/screenshots/.
"""

import json
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

from tests.browser.live import LiveKeeper
from tests.browser.pages import settle, sign_in


def operation_count(keeper: LiveKeeper) -> int:
    with urllib.request.urlopen(f"{keeper.url}/openapi.json", timeout=10) as response:
        schema = json.load(response)
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in schema["paths"].values() for method in item if method in methods)


def test_swagger_ui_shows_every_operation_and_runs_one(page, watch, keeper):
    page.goto(f"{keeper.url}/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    settle(page, watch, "docs-swagger-ui", full_page=False)

    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Keeper: Spare Cores catalog API")
    assert page.locator(".swagger-ui .opblock").count() == operation_count(keeper)

    operation = page.locator("[id^='operations-'][id$='-healthcheck_retrieve']")
    operation.locator(".opblock-summary-control").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    status.scroll_into_view_if_needed()
    settle(page, watch, "docs-swagger-ui-try-it-out", full_page=False)

    assert status.inner_text().strip() == "200"


def test_redoc_shows_every_operation(page, watch, keeper):
    page.goto(f"{keeper.url}/redoc")
    operations = page.locator("[data-section-id^='operation/']")
    operations.first.wait_for()
    # ReDoc draws the Redocly logo under its menu; Keeper's copy of the bundle has it inline (keeper/api/docs.py).
    settle(page, watch, "docs-redoc", full_page=False)

    assert page.locator(".api-info h1").inner_text().startswith("Keeper: Spare Cores catalog API")
    assert operations.count() == operation_count(keeper)


def test_admin_signs_in_with_a_password_to_the_index(page, watch, keeper):
    page.goto(f"{keeper.url}/admin/")
    page.locator("#login-form").wait_for()
    settle(page, watch, "admin-login")
    sign_in(page, keeper)
    # The index, whatever it shows (the staff overview, when it lands).
    settle(page, watch, "admin-index")

    assert urlsplit(page.url).path == "/admin/"
    assert page.locator("#user-tools strong").text_content() == keeper.username


def test_admin_key_list_shows_the_key(admin_page, watch, keeper):
    admin_page.goto(f"{keeper.url}/admin/keys/apikey/")
    settle(admin_page, watch, "admin-keys")

    assert admin_page.locator("#result_list tbody tr", has_text="browser check").count() == 1


def test_admin_key_page_charts_its_usage(admin_page, watch, keeper):
    admin_page.goto(f"{keeper.url}/admin/keys/apikey/{keeper.key_pk}/change/")
    chart = admin_page.locator("#key-usage svg.usage-chart")
    chart.wait_for()
    settle(admin_page, watch, "admin-key-usage")

    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    days = chart.locator("g.usage-bar").evaluate_all("bars => bars.map(bar => bar.dataset.day)")
    # The seeded past days, and today from the real requests made with the key at start-up.
    assert sorted(days) == [*keeper.key_past_usage_days, datetime.now(UTC).date().isoformat()]
    assert chart.locator("rect.rate_limited").count() >= 1


def test_admin_sync_runs_list_and_detail(admin_page, watch, keeper):
    admin_page.goto(f"{keeper.url}/admin/catalog/syncrun/")
    settle(admin_page, watch, "admin-sync-runs")

    succeeded = admin_page.locator("#result_list tbody tr", has_text="succeeded")
    assert succeeded.count() >= 1
    succeeded.first.locator("th a").click()
    admin_page.wait_for_url("**/admin/catalog/syncrun/*/change/")
    settle(admin_page, watch, "admin-sync-run")
    assert admin_page.locator(".field-status .readonly").inner_text() == "succeeded"
