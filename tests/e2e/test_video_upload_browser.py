"""The upload page with a video, in real Chromium (no worker needed): the chosen clip is previewed
under the page's Content-Security-Policy, a clip over the length limit is flagged before it is
sent, and a clip sent is stored as a video detection."""

from __future__ import annotations

import re

import pytest

from detection.tests import hostile_video as hv
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.slow]


@pytest.fixture
def page(monkeypatch, transactional_db):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # Run messages are recorded, not sent: no worker reads them in this test.
    sent: list[int] = []
    monkeypatch.setattr(
        "detection.publish.detection_run_publish",
        lambda *, detection_id: sent.append(detection_id) or f"message-{detection_id}",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.blocked = []  # what the Content-Security-Policy blocked
        page.on(
            "console",
            lambda m: page.blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _sign_in(page, base: str, user, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", password)
    page.locator("main form [type=submit]").click()
    page.wait_for_url(f"{base}/upload/")


def test_a_clip_is_previewed_checked_and_uploaded(
    live_server, page, user, password, settings, tmp_path
):
    from detection.models import Detection

    settings.DETECTION_VIDEO_MAX_SECONDS = 3
    short = tmp_path / "short.webm"
    short.write_bytes(hv.clip("webm", seconds=2.0))
    long = tmp_path / "long.webm"
    long.write_bytes(hv.clip("webm", seconds=5.0))
    base = live_server.url
    _sign_in(page, base, user, password)
    assert "Videos: MP4, WEBM, MOV" in page.locator("#upload-limits").inner_text()

    # Too long: flagged once the browser has read the clip's length; nothing can be sent.
    page.set_input_files("input[type=file]", str(long))
    page.wait_for_selector(".preview-item.preview-bad:has-text('longer than 3 s')")
    assert page.locator("#upload-submit").is_disabled()

    # Within the limits: its first frame is shown (a <video> the page's policy allows).
    page.set_input_files("input[type=file]", str(short))
    page.wait_for_selector(".preview-item:has-text('short.webm')")
    assert page.locator(".preview-item.preview-bad").count() == 0
    page.wait_for_function(
        "() => { const v = document.querySelector('video.preview-thumb');"
        " return v && v.readyState >= 2 && v.videoWidth === 320; }"
    )
    assert page.locator("#upload-submit").is_enabled()
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/detections/\d+/$"))
    detection = Detection.objects.get(owner=user)
    assert (detection.kind, detection.format, detection.frame_count) == ("video", "WEBM", 20)
    assert page.blocked == []
