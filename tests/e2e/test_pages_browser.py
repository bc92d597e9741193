"""The pages' small scripts in real Chromium (no worker needed): select-all on the history page,
times in the viewer's zone, the new API token handed from the account page to the API page's
examples in the browser only, and the tables on a 390 px phone.

Screenshots (looked at by people, not compared): var/screenshots/pages-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import csp_watched_page, sign_in

pytestmark = [pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page(browser, transactional_db):
    # A viewer in Paris, while the server speaks UTC.
    context = browser.new_context(
        viewport={"width": 1200, "height": 900}, timezone_id="Europe/Paris"
    )
    try:
        yield csp_watched_page(context)
    finally:
        context.close()


def _no_sideways_scroll(page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_history_select_all_and_local_times(live_server, page, user, password):
    from detection.tests.factories import DetectionFactory

    for number in range(3):
        DetectionFactory(owner=user, done=True, original_name=f"holiday-{number}.jpg")
    base = live_server.url
    sign_in(page, base, user, password)
    page.goto(f"{base}/history/")

    # Times: the viewer's zone, with its name; the server's time in the tooltip.
    first_time = page.locator("#history-table time").first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", first_time.inner_text())
    assert re.search(r"on the server: .* UTC$", first_time.get_attribute("title"))

    # Select all, with the keyboard: Space on the focused box ticks every row, and again unticks.
    boxes = page.locator("input[name=ids]")
    select_all = page.locator("#select-all")
    assert select_all.is_visible()
    select_all.focus()
    page.keyboard.press("Space")
    assert all(box.is_checked() for box in boxes.all())
    assert page.locator("#selected-count").inner_text() == "3 selected"
    boxes.first.uncheck()
    assert page.evaluate("document.getElementById('select-all').indeterminate") is True
    assert page.locator("#selected-count").inner_text() == "2 selected"
    select_all.click()  # from "some" to all
    assert all(box.is_checked() for box in boxes.all())
    page.keyboard.press("Space")
    assert not any(box.is_checked() for box in boxes.all())
    # And the ticks feed the bulk delete.
    select_all.check()
    page.click("text=Delete selected…")
    page.wait_for_selector("text=Delete 3 detections?")

    page.set_viewport_size(PHONE)
    page.goto(f"{base}/history/")
    _no_sideways_scroll(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pages-history-mobile.png"), full_page=True)
    assert page.blocked == []


def test_faces_table_on_a_phone(live_server, page, user, password):
    from detection.tests.factories import detection_with_three_faces

    detection = detection_with_three_faces(owner=user, original_name="group-photo.jpg")
    base = live_server.url
    sign_in(page, base, user, password)
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/detections/{detection.id}/")
    table = page.locator("#faces-table")
    table.scroll_into_view_if_needed()
    _no_sideways_scroll(page)
    for badge in table.locator(".badge").all():
        box = badge.bounding_box()
        assert box and box["x"] + box["width"] <= PHONE["width"], box
    # The facts' times in the viewer's zone too.
    assert page.locator(".facts time").first.inner_text().endswith(("CET", "CEST"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pages-detail-mobile.png"), full_page=True)
    assert page.blocked == []


def test_new_token_fills_the_api_examples_in_this_tab_only(live_server, page, user, password):
    base = live_server.url
    sign_in(page, base, user, password)

    # Without a new token the example keeps its placeholder.
    page.goto(f"{base}/api-help/")
    assert page.locator("#token-slot").inner_text() == "paste-your-token-here"
    assert not page.locator("#token-note").is_visible()

    page.goto(f"{base}/accounts/profile/")
    page.fill("input[name=name]", "laptop script")
    page.click("text=Create token")
    key = page.locator("#new-token-key").input_value()
    assert len(key) > 20
    page.click("#new-token-api-hint a")
    page.wait_for_url(f"{base}/api-help/")
    assert page.locator("#token-slot").inner_text() == key
    assert page.locator("pre", has_text="export TOKEN=").inner_text() == f"export TOKEN={key}"
    note = page.locator("#token-note")
    assert note.is_visible() and "“laptop script”" in note.inner_text()
    assert "only in this browser tab" in note.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#step-set").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "pages-api-token.png"))

    # Another tab does not have it.
    other = page.context.new_page()
    other.goto(f"{base}/api-help/")
    assert other.locator("#token-slot").inner_text() == "paste-your-token-here"
    other.close()

    # Forget it: the placeholder comes back, also after a reload; the focus goes to the news.
    page.click("#token-forget")
    assert page.locator("#token-slot").inner_text() == "paste-your-token-here"
    assert not note.is_visible()
    assert page.evaluate("document.activeElement.id") == "token-status"
    page.reload()
    assert page.locator("#token-slot").inner_text() == "paste-your-token-here"

    # The tokens table on a phone.
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/accounts/profile/")
    _no_sideways_scroll(page)
    assert page.locator("#tokens-table time").first.inner_text().endswith(("CET", "CEST"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pages-tokens-mobile.png"), full_page=True)
    assert page.blocked == []


def test_revoked_token_is_forgotten_by_the_account_page(live_server, page, user, password):
    base = live_server.url
    sign_in(page, base, user, password)
    page.goto(f"{base}/accounts/profile/")
    page.fill("input[name=name]", "short-lived")
    page.click("text=Create token")
    page.goto(f"{base}/accounts/profile/")
    page.click("#tokens-table a:has-text('Revoke')")
    page.locator("main form button[type=submit]", has_text="Revoke token").click()
    page.wait_for_url(f"{base}/accounts/profile/")
    page.goto(f"{base}/api-help/")
    assert page.locator("#token-slot").inner_text() == "paste-your-token-here"
