"""The upload page with a video, in real Chromium (no worker needed): the chosen clip is previewed
under the page's Content-Security-Policy, a clip over the length limit is flagged before it is
sent, and a clip sent is stored as a video detection."""

from __future__ import annotations

import re

import pytest

from detection.tests import hostile_video as hv
from tests.e2e.conftest import csp_watched_page, sign_in

pytestmark = [pytest.mark.slow]


@pytest.fixture
def page(browser, monkeypatch, transactional_db):
    # Run messages are recorded, not sent: no worker reads them in this test.
    sent: list[int] = []
    monkeypatch.setattr(
        "detection.publish.detection_run_publish",
        lambda *, detection_id: sent.append(detection_id) or f"message-{detection_id}",
    )
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield csp_watched_page(context)
    finally:
        context.close()


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
    sign_in(page, base, user, password)
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
