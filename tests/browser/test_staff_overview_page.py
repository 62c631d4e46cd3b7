"""The staff overview on the admin's first page, in the real browser of tests/browser (conftest.py).

Traffic is made for real against the live Keeper first (the key, a capability token, a bad key): it
counts every request at once there (KEEPER_KEY_USAGE_FLUSH_SECONDS=0), so the charts show today.
"""

import time
from datetime import UTC, datetime

from tests.browser.pages import call_api, settle


def _new_key(page, keeper) -> str:
    """A key made through the API with the staff session (DRF wants the CSRF token for it)."""
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    created = page.request.post(
        f"{keeper.url}/keys", data={"name": "overview check"}, headers={"X-CSRFToken": cookies["csrftoken"]}
    )
    assert created.status == 201, created.text()
    return created.json()["key"]


def test_the_admin_index_shows_the_staff_overview(admin_page, watch, keeper):
    value = _new_key(admin_page, keeper)
    key = {"X-API-Key": value}
    status, answer = call_api(f"{keeper.url}/keys/validate", key, {"key": value})
    assert status == 200 and answer["valid"], answer
    token = {"Authorization": f"Bearer {answer['capability_token']}"}
    assert call_api(f"{keeper.url}/regions", token)[0] == 200
    assert call_api(f"{keeper.url}/me", {"Authorization": "Bearer keeper_not_a_key"})[0] == 401

    # Each gunicorn worker writes its traffic and usage counts behind the requests (keeper/writes.py):
    # open the page again until it shows what the calls above counted, whichever worker served them.
    overview = admin_page.locator("#staff-overview")
    counted = (
        "svg#overview-requests rect.capability_token",
        "tr.refusal-unauthorized",
        "tr.top-caller:has-text('overview check')",
    )
    deadline = time.monotonic() + 30
    while True:
        admin_page.goto(f"{keeper.url}/admin/")
        overview.wait_for()
        if all(overview.locator(part).count() for part in counted) or time.monotonic() > deadline:
            break
        admin_page.wait_for_timeout(250)
    settle(admin_page, watch, "admin-staff-overview")

    today = datetime.now(UTC).date().isoformat()
    for chart_id in ("overview-requests", "overview-credits"):
        chart = overview.locator(f"svg#{chart_id}")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, chart_id
        assert today in chart.locator("g.usage-bar").evaluate_all("bars => bars.map(bar => bar.dataset.day)")
    assert overview.locator("svg#overview-requests rect.capability_token").count() == 1
    assert int(overview.locator("tr.refusal-unauthorized td").inner_text()) >= 1
    assert overview.locator("tr.top-caller", has_text="overview check").count() == 1
    assert overview.locator("tr.sync-run").count() >= 1
    # Every part links to its admin list.
    for link in ("/admin/keys/trafficday/", "/admin/keys/keyusageday/", "/admin/keys/apikey/?expiry=soon"):
        assert overview.locator(f'a[href="{link}"]').count() >= 1, link
    assert overview.locator('a[href="/admin/catalog/syncrun/"]').count() == 1
