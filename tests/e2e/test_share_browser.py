"""A shared link in real Chromium: the owner makes it on the result page and copies it; a fresh
signed-out browser opens it and sees the image, verdict, heatmap and provenance; printing it (print
media, page.pdf()) gives a clean PDF; after the owner revokes it, the link is a 404.

The detection is made done with the factories (no worker needed): what is tested is the link,
not the model. Screenshots go to var/screenshots/share-*.png (and the printed PDF beside them)
for people to look at."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image

from tests.e2e.conftest import session_cookie
from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# The face in face_image_bytes((640, 480)): the photo fills the canvas's height, centred.
FACE_BOX = [235, 150, 190, 250]
HEATMAP_BOX = [180, 95, 300, 300]
PROVENANCE = {
    "version": 1,
    "exif": {
        "make": "TestCam",
        "model": "Model X",
        "software": "Adobe Photoshop 25.0",
        "datetime_original": "2024:05:01 12:30:00",
        "gps_present": True,
    },
    "editing_software": [{"source": "EXIF", "name": "Adobe Photoshop"}],
}


def _heatmap_png() -> bytes:
    """A round blob of attention in the middle, as the worker's RGBA heatmaps look."""
    yy, xx = np.mgrid[0:64, 0:64]
    weight = np.exp(-((xx - 32) ** 2 + (yy - 30) ** 2) / (2 * 11**2))
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (220 * (1 - weight)).astype(np.uint8)
    rgba[..., 3] = (190 * weight).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()



@pytest.fixture
def done_detection(user):
    from detection.models import Detection
    from detection.tests.factories import DetectionFactory

    detection = DetectionFactory(
        owner=user,
        done=True,
        original_name="ça_😀 portrait.jpg",
        width=640,
        height=480,
        fake_probability=0.873,
        face_box=FACE_BOX,
        faces=[{"box": FACE_BOX, "fake_probability": 0.873, "label": "fake"}],
        heatmap_status=Detection.HeatmapStatus.DONE,
        provenance=PROVENANCE,
    )
    detection.image.save("portrait.jpg", ContentFile(face_image_bytes("JPEG", (640, 480))))
    detection.faces.update(heatmap=_heatmap_png(), heatmap_box=HEATMAP_BOX)
    return detection


def _signed_in_context(browser, live_server, user):
    """A browser context with `user`'s session (sessions live in the database)."""
    context = browser.new_context(
        viewport={"width": 1200, "height": 1000},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.add_cookies([session_cookie(user, live_server)])
    return context


def _watch_csp(page, found: list[str]) -> None:
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


def test_shared_link_opens_signed_out_and_prints_to_a_clean_pdf(
    live_server, browser, user, done_detection, tmp_path
):
    from detection.models import DetectionShare

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    blocked: list[str] = []

    # --- the owner makes the link on the result page and copies it ---
    owner_context = _signed_in_context(browser, live_server, user)
    owner = owner_context.new_page()
    owner.set_default_timeout(30_000)
    _watch_csp(owner, blocked)
    owner.goto(f"{base}/detections/{done_detection.id}/")
    owner.click("#share-create")
    owner.wait_for_selector("#share-link")
    link = owner.input_value("#share-link")
    share = DetectionShare.objects.get(detection=done_detection)
    assert link == f"{base}/r/{share.token}/"
    assert owner.locator(".messages", has_text="Share link ready").is_visible()
    copy = owner.locator("[data-copy-target=share-link]")
    assert copy.is_visible()  # copy.js showed it
    copy.click()
    owner.wait_for_selector("#share [data-copy-status]:has-text('Copied.')")
    assert owner.evaluate("navigator.clipboard.readText()") == link
    owner.locator("#share").screenshot(path=str(SCREENSHOTS / "share-owner-panel.png"))
    owner.screenshot(path=str(SCREENSHOTS / "share-owner-detail.png"), full_page=True)
    # The result page prints too: the verdict and panels, not the buttons or the share link.
    owner.emulate_media(media="print")
    assert not owner.locator("#share").is_visible()
    assert not owner.locator(".actions").is_visible()
    assert not owner.locator(".site-header nav").is_visible()
    assert owner.locator("#detection-label").is_visible()
    owner.screenshot(path=str(SCREENSHOTS / "share-owner-detail-print.png"), full_page=True)
    owner.emulate_media(media="screen")

    # --- a fresh browser with no session opens it ---
    guest_context = browser.new_context(viewport={"width": 1200, "height": 1000})
    guest = guest_context.new_page()
    guest.set_default_timeout(30_000)
    _watch_csp(guest, blocked)
    statuses: dict[str, int] = {}
    guest.on("response", lambda response: statuses.__setitem__(response.url, response.status))
    response = guest.goto(link)
    assert response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-robots-tag"] == "noindex, nofollow"
    assert "no-store" in response.headers["cache-control"]
    guest.wait_for_load_state("networkidle")

    assert guest.locator("#report-banner").is_visible()
    assert guest.locator("#detection-label").inner_text().strip() == "Fake"
    assert guest.locator("#report-probability").inner_text() == "87.3%"
    # The image loaded through the link, at its own size, with the face box over it.
    assert guest.evaluate("document.querySelector('#report-image').naturalWidth") == 640
    assert guest.locator(".face-overlay .face-box").count() == 1
    # The heatmap is drawn over the face, and its toggle hides it.
    heatmap_url = f"{base}/r/{share.token}/faces/1/heatmap.png"
    assert statuses.get(heatmap_url) == 200
    assert guest.locator(".report-heatmap").is_visible()
    guest.locator(".heatmap-toggle-label").click()
    assert not guest.locator(".report-heatmap").is_visible()
    guest.locator(".heatmap-toggle-label").click()
    assert guest.locator(".report-heatmap").is_visible()
    # What the file says about itself.
    provenance = guest.locator("#provenance")
    assert provenance.is_visible()
    assert "TestCam" in provenance.inner_text()
    assert "Adobe Photoshop" in guest.locator("#provenance-evidence").inner_text()
    # Signed out, read-only: no owner's controls, no owner's navigation.
    assert guest.locator("main form").count() == 0
    assert guest.locator("text=Delete").count() == 0
    assert guest.locator("nav >> text=Sign in").is_visible()
    assert guest.locator("nav >> text=History").count() == 0
    assert "Verdicts are a model's estimate, not proof." in guest.inner_text("main")
    guest.screenshot(path=str(SCREENSHOTS / "share-report-screen.png"), full_page=True)
    # On a phone the page does not scroll sideways.
    guest.set_viewport_size({"width": 390, "height": 844})
    assert guest.evaluate("document.scrollingElement.scrollWidth") <= 390
    guest.screenshot(path=str(SCREENSHOTS / "share-report-phone.png"), full_page=True)
    guest.set_viewport_size({"width": 1200, "height": 1000})

    # --- printed ---
    guest.emulate_media(media="print")
    assert not guest.locator(".site-header nav").is_visible()
    assert not guest.locator("#report-pdf").is_visible()
    assert not guest.locator(".heatmap-toggle-label").is_visible()
    assert guest.locator("#report-image").is_visible()
    assert guest.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    guest.screenshot(path=str(SCREENSHOTS / "share-report-print.png"), full_page=True)
    pdf = guest.pdf(format="A4", print_background=False)
    (SCREENSHOTS / "share-report-print.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]
    # Picture, verdict, faces and provenance fit on a few pages, not one page per panel.
    assert 1 <= _pdf_pages(pdf) <= 3
    guest.emulate_media(media="screen")

    # --- the downloadable PDF ---
    with guest.expect_download() as download_info:
        guest.click("#report-pdf")
    download = download_info.value
    assert download.suggested_filename == "ça_😀 portrait - report.pdf"
    downloaded = Path(download.path()).read_bytes()
    assert downloaded.startswith(b"%PDF-") and _pdf_pages(downloaded) >= 1
    (SCREENSHOTS / "share-report-download.pdf").write_bytes(downloaded)

    # --- the owner revokes it; the link is a 404 for everyone ---
    owner.click("#share-revoke")
    owner.wait_for_selector(".messages:has-text('Share link revoked')")
    assert owner.locator("#share-create").is_visible()
    assert owner.locator("#share-link").count() == 0

    response = guest.goto(link)
    assert response.status == 404
    assert response.headers["referrer-policy"] == "no-referrer"
    guest.screenshot(path=str(SCREENSHOTS / "share-revoked-404.png"))
    for path in ("image/", "faces/1/heatmap.png", "report.pdf"):
        assert guest.request.get(f"{link}{path}").status == 404, path
    # A made-up token is the same 404.
    assert guest.goto(f"{base}/r/{'A' * 43}/").status == 404

    assert blocked == []
    owner_context.close()
    guest_context.close()
