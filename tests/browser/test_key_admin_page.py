"""Creating and rotating an API key in the admin, in the real browser of tests/browser (conftest.py):
each new value is shown on the page that follows the save (and there only), and works at once."""

import re

from tests.browser.pages import call_api, settle

KEY_VALUE = re.compile(r"keeper_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


def _shown_value(page, watch, where: str) -> str:
    """The one key value on the page. No screenshot: it would keep the value in a file."""
    page.wait_for_load_state("networkidle")
    watch.assert_clean(where)
    values = KEY_VALUE.findall(page.content())
    assert len(values) == 1, values
    return values[0]


def _usable(keeper, value: str) -> bool:
    status, answer = call_api(f"{keeper.url}/keys/validate", {"X-API-Key": value}, {"key": value})
    return status == 200 and answer["valid"]


def test_admin_creates_a_key_then_rotates_it_from_its_page(admin_page, watch, keeper):
    admin_page.goto(f"{keeper.url}/admin/keys/apikey/add/")
    admin_page.fill("#id_name", "browser rotation")
    # The owner is an autocomplete field (select2, served by the admin): picked from the list it opens
    # with (the live Keeper has a few users), as typing would abort that first lookup, a failed request.
    admin_page.click(".field-owner .select2-selection")
    admin_page.locator(".select2-results__option", has_text=keeper.username).click()
    settle(admin_page, watch, "admin-key-add")
    admin_page.click("input[name=_save]")
    admin_page.locator("input.issued-key").wait_for()

    created = _shown_value(admin_page, watch, "admin-key-created")

    assert _usable(keeper, created)
    admin_page.locator("#content-main a", has_text="browser rotation").click()
    admin_page.locator("#key-usage").wait_for()
    assert created not in admin_page.content()
    admin_page.locator(".object-tools a", has_text="Rotate key").click()
    admin_page.locator("input[type=submit][value=Rotate]").wait_for()
    settle(admin_page, watch, "admin-key-rotate")
    admin_page.click("input[type=submit][value=Rotate]")
    admin_page.locator("input.issued-key").wait_for()

    rotated = _shown_value(admin_page, watch, "admin-key-rotated")

    assert rotated != created
    assert _usable(keeper, rotated)
    assert not _usable(keeper, created)
