"""Feedback and model versions in real Chromium: the owner reports a verdict as wrong on the result
page, re-checks it with the current model and sees both verdicts side by side (desktop and a
390 px phone); a signed-out visitor opens the model versions and a model card with its plots.

No worker is needed: the re-check's run message is recorded instead of sent, and its verdict is
written with the ORM (what is tested is the pages, not the model). Screenshots go to
var/screenshots/feedback-models-*.png for people to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from tests.e2e.test_share_browser import _signed_in_context, _watch_csp
from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
FACES = [
    {"box": [235, 150, 190, 250], "fake_probability": 0.873, "label": "fake"},
    {"box": [40, 60, 80, 100], "fake_probability": 0.31, "label": "real"},
]


@pytest.fixture
def published(monkeypatch) -> list[int]:
    sent: list[int] = []

    def _publish(*, detection_id: int) -> str:
        sent.append(detection_id)
        return f"message-{detection_id}"

    monkeypatch.setattr("detection.publish.detection_run_publish", _publish)
    return sent


@pytest.fixture
def old_verdict(user):
    from detection.tests.factories import DetectionFactory

    detection = DetectionFactory(
        owner=user,
        done=True,
        original_name="portrait.jpg",
        width=640,
        height=480,
        model_name="deepfake-nprnet",
        model_version="deepfake-nprnet-20261122-e441bab4e8d9",  # the shipped v1 card
        fake_probability=0.873,
        face_box=FACES[0]["box"],
        faces=FACES,
    )
    detection.image.save("portrait.jpg", ContentFile(face_image_bytes("JPEG", (640, 480))))
    return detection


def test_report_recheck_and_model_cards(live_server, browser, user, old_verdict, published):
    from detection import model_cards
    from detection.models import Detection, DetectionFeedback
    from detection.tests.factories import DetectionFaceFactory

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    blocked: list[str] = []
    current = model_cards.model_version_current()  # the shipped default's card: no worker runs
    assert current and current != old_verdict.model_version

    owner_context = _signed_in_context(browser, live_server, user)
    page = owner_context.new_page()
    page.set_default_timeout(30_000)
    _watch_csp(page, blocked)
    page.goto(f"{base}/detections/{old_verdict.id}/")

    # --- the verdict links to its model card ---
    link = page.locator("#model-card-link")
    assert link.get_attribute("href") == f"/models/{old_verdict.model_version}/"

    # --- "Is this verdict wrong?" ---
    assert not page.locator("#feedback-form").is_visible()  # folded until asked
    page.locator("#feedback summary").click()
    page.locator("#feedback-form label", has_text="Real").click()
    page.fill("#feedback-form textarea[name=note]", "I took this photo myself.")
    page.locator("#feedback").screenshot(path=str(SCREENSHOTS / "feedback-models-form.png"))
    page.click("#feedback-submit")
    page.wait_for_selector("#feedback-done")
    assert "You reported this verdict as wrong on" in page.inner_text("#feedback-done")
    assert page.locator(".messages", has_text="your report was saved").is_visible()
    report = DetectionFeedback.objects.get(detection=old_verdict)
    assert (report.truth, report.note) == ("real", "I took this photo myself.")
    page.locator("#feedback").screenshot(path=str(SCREENSHOTS / "feedback-models-reported.png"))

    # --- re-check with the current model ---
    button = page.locator("#recheck-button")
    assert current in button.inner_text()
    button.click()
    page.wait_for_selector("#recheck-compare")
    recheck = Detection.objects.get(rechecked_from=old_verdict)
    assert page.url == f"{base}/detections/{recheck.id}/"
    assert published == [recheck.id]
    assert page.locator("#recheck-new-label").inner_text().strip() == "Pending"
    # The re-check's own copy of the image is served to its owner.
    image = page.locator(".image-frame img")
    assert image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 640

    # The worker's verdict (written here): the page's polling swaps it in, side by side.
    Detection.objects.filter(id=recheck.id).update(
        status="done", label="real", fake_probability=0.22, model_name="deepfake-nprnet-v2",
        model_version=current, deciding_face=1, face_box=FACES[0]["box"],
        uncertain_low=0.37, uncertain_high=0.67, threshold=0.52, attempts=1,
        finished_at=timezone.now(),
    )  # fmt: skip
    DetectionFaceFactory(detection=recheck, index=1, box=FACES[0]["box"], fake_probability=0.22,
                         label="real")
    page.wait_for_selector("#recheck-new-label .badge-real")
    table = page.inner_text("#recheck-table")
    assert old_verdict.model_version in table and current in table
    assert "87.3%" in table and "22.0%" in table
    assert "not found" in table  # the old second face, not found by the new verdict
    page.screenshot(path=str(SCREENSHOTS / "feedback-models-side-by-side.png"), full_page=True)

    phone = owner_context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    _watch_csp(phone, blocked)
    phone.goto(f"{base}/detections/{recheck.id}/")
    # Nothing scrolls sideways on a phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.locator("#recheck-compare").screenshot(
        path=str(SCREENSHOTS / "feedback-models-side-by-side-phone.png")
    )

    # The earlier page links to its re-check instead of offering another.
    page.goto(f"{base}/detections/{old_verdict.id}/")
    assert page.locator("#rechecks a").get_attribute("href") == f"/detections/{recheck.id}/"
    assert page.locator("#recheck-button").count() == 0
    assert page.locator("#recheck-link").is_visible()

    # --- signed out: the model versions and a card ---
    guest_context = browser.new_context(viewport={"width": 1200, "height": 1000})
    guest = guest_context.new_page()
    guest.set_default_timeout(30_000)
    _watch_csp(guest, blocked)
    assert guest.goto(f"{base}/models/").status == 200
    assert guest.locator(f"tr.model-current[data-version='{current}']").is_visible()
    guest.screenshot(path=str(SCREENSHOTS / "feedback-models-list.png"), full_page=True)
    guest.click(f"a[href='/models/{old_verdict.model_version}/']")
    guest.wait_for_load_state("networkidle")
    assert "Model card" in guest.inner_text("#model-card h1")
    assert guest.locator("#model-card table").count() > 0
    plots = guest.locator(".plot-grid img")
    assert plots.count() == 3
    for index in range(3):  # loaded lazily: scrolled to first
        plots.nth(index).scroll_into_view_if_needed()
        plots.nth(index).evaluate("img => img.decode()")
        assert plots.nth(index).evaluate("img => img.naturalWidth") > 0
    guest.screenshot(path=str(SCREENSHOTS / "feedback-models-card.png"), full_page=True)
    phone_guest = guest_context.new_page()
    phone_guest.set_viewport_size({"width": 390, "height": 844})
    phone_guest.goto(f"{base}/models/{current}/")
    assert phone_guest.evaluate("document.documentElement.scrollWidth") <= 390
    phone_guest.screenshot(path=str(SCREENSHOTS / "feedback-models-card-phone.png"))

    assert blocked == []
    owner_context.close()
    guest_context.close()
