"""The heatmap in real Chromium: the verdict arrives, the page says the heatmap is being made and
keeps polling, then "Show heatmap" (ticked from the keyboard) lays it over the face, and the
choice survives the result being swapped in again.

The worker's own code runs in this process with the real engine (detection.worker.services
detection_run: real face detector, model and Grad-CAM), paused between the verdict and the
heatmaps so that the page is seen in between. Screenshots go to var/screenshots/heatmap-*.png
for people to look at."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from tests.e2e.conftest import session_cookie
from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def real_engine():
    from django.conf import settings

    from ml.inference import Engine

    return Engine.load(intra_threads=1, inter_threads=1, max_pixels=settings.DETECTION_MAX_PIXELS)


@pytest.fixture
def page(browser, live_server, user):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_cookies([session_cookie(user, live_server)])
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def test_heatmap_arrives_after_the_verdict_and_shows_on_request(
    live_server, page, user, real_engine, monkeypatch
):
    from django.db import connection

    from detection.models import Detection
    from detection.tests.factories import DetectionFactory
    from detection.worker import services as worker_services

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    detection = DetectionFactory(owner=user, width=640, height=480, original_name="portrait.jpg")
    detection.image.save("portrait.jpg", ContentFile(face_image_bytes("JPEG", (640, 480))))

    # The real engine, with its heatmaps held back until the page has been seen waiting.
    go_on = threading.Event()

    class HeldEngine:
        def __getattr__(self, name):
            return getattr(real_engine, name)

        def heatmaps(self, prediction):
            assert go_on.wait(60), "the page never showed the pending heatmap"
            return real_engine.heatmaps(prediction)

    monkeypatch.setattr("detection.worker.engine.engine_get", lambda: HeldEngine())

    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    statuses: dict[str, int] = {}
    page.on("response", lambda response: statuses.__setitem__(response.url, response.status))
    page.goto(f"{live_server.url}/detections/{detection.id}/")

    def run() -> None:
        try:
            worker_services.detection_run(detection_id=detection.id, claim_token="browser-test")
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=run)
    worker.start()
    try:
        # The verdict is on the page while the heatmap is still being made.
        page.wait_for_selector("#detection-label")
        page.wait_for_selector("#heatmap-caption:has-text('Making the heatmap')")
        assert page.get_attribute("#result", "data-poll-url")  # still polling
        page.screenshot(path=str(SCREENSHOTS / "heatmap-pending.png"))
    finally:
        go_on.set()
        worker.join(60)
    detection.refresh_from_db()
    assert detection.heatmap_status == Detection.HeatmapStatus.DONE

    # The poll picks the heatmap up by itself: the toggle appears, unticked, overlay hidden.
    toggle = page.locator("#show-heatmap")
    toggle.wait_for()
    assert page.locator("#heatmap-caption").inner_text().startswith(
        "A heatmap shows where the network looked, not proof."
    )
    assert not toggle.is_checked()
    assert not page.locator("#heatmap-overlay").is_visible()
    assert page.get_attribute("#result", "data-poll-url") == ""

    # From the keyboard: focus moves onto the checkbox with Tab, Space ticks it.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "show-heatmap":
            break
    assert page.evaluate("document.activeElement.id") == "show-heatmap"
    page.keyboard.press("Space")
    assert toggle.is_checked()
    overlay = page.locator("#heatmap-overlay")
    assert overlay.is_visible()
    images = page.locator("#heatmap-overlay image")
    faces = list(detection.faces.all())
    assert images.count() == len(faces) >= 1
    heatmap_url = f"{live_server.url}/detections/{detection.id}/faces/1/heatmap.png"
    for _ in range(50):
        if heatmap_url in statuses:
            break
        page.wait_for_timeout(100)
    assert statuses.get(heatmap_url) == 200
    # Over the square the model saw (its heatmap_box), as percentages of the image.
    box = faces[0].heatmap_box
    assert images.first.get_attribute("x") == f"{round(100 * box[0] / 640, 3)}%"
    page.locator(".result-figure").screenshot(path=str(SCREENSHOTS / "heatmap-shown.png"))

    # The result is swapped in again, as the polling script does: the choice is kept.
    page.evaluate(
        """async () => {
            const el = document.getElementById("result");
            const r = await fetch(el.dataset.pollUrl || location.pathname + "status/");
            el.innerHTML = (await r.json()).html;
        }"""
    )
    page.wait_for_function("document.querySelector('#show-heatmap').checked === true")
    assert page.locator("#heatmap-overlay").is_visible()
    page.locator("#show-heatmap").focus()  # the new checkbox works from the keyboard too
    page.keyboard.press("Space")
    assert not page.locator("#heatmap-overlay").is_visible()
    assert blocked == []
