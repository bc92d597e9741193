"""The result page's evidence, as a person sees it in real Chromium, against the real worker:
an AI-tagged portrait is uploaded through the page; the verdict, the face box, the heatmap (on
request) and the provenance panel with its separate evidence line arrive without a reload; the
same file uploaded again is answered at once from the first check. Screenshots go to
var/screenshots/result-*.png for people to look at."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from tests.e2e.test_browser import _sign_up, browser_page, csp_violations  # noqa: F401 - fixtures
from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _ai_tagged_portrait() -> bytes:
    """A real face as a PNG carrying the text chunk Stable Diffusion's web UI writes."""
    img = Image.open(io.BytesIO(face_image_bytes("PNG", (320, 240))))
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "portrait photo of a woman, studio light\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, "
        "Seed: 1234, Size: 320x240, Model: sd_xl_base_1.0",
    )
    out = io.BytesIO()
    img.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _upload(page, base: str, path: Path) -> str:
    page.goto(f"{base}/upload/")
    page.set_input_files("input[type=file]", str(path))
    page.wait_for_selector(f".preview-item:has-text('{path.name}')")
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/detections/\d+/$"))
    return page.url


def test_result_page_shows_verdict_boxes_heatmap_provenance_and_repeats(  # noqa: F811
    e2e,
    live_server,
    browser_page,  # noqa: F811 - the fixture imported above
    csp_violations,  # noqa: F811
    tmp_path,
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page
    image = tmp_path / "ai-portrait.png"
    image.write_bytes(_ai_tagged_portrait())
    _sign_up(page, live_server.url, "evidence")

    first_url = _upload(page, live_server.url, image)
    # The provenance is known from the upload: on the page before the verdict.
    panel = page.locator("#provenance")
    assert "What the file says about itself" in panel.inner_text()
    page.wait_for_selector("#detection-status[data-status=done]", timeout=90_000)
    verdict = page.locator("#detection-label").inner_text().strip().lower()
    assert verdict in ("real", "fake", "uncertain")
    assert page.locator("#faces-table tbody tr").count() == 1
    assert page.locator(".face-overlay .face-box").count() == 1

    # The file's own declaration is stated as separate evidence, beside the model's verdict.
    evidence = page.locator("#provenance-evidence").inner_text()
    assert "Stable Diffusion" in evidence
    assert "Stable Diffusion" in page.locator("#provenance-declarations").inner_text()

    # The heatmap arrives by itself after the verdict, and shows on request.
    toggle = page.locator("#show-heatmap")
    toggle.wait_for(timeout=60_000)
    overlay = page.locator("#heatmap-overlay")
    assert not overlay.is_visible()
    assert "not proof" in page.locator("#heatmap-caption").inner_text()
    toggle.check()
    assert overlay.is_visible()
    heatmap_src = overlay.locator("image").first.get_attribute("href")
    response = page.request.get(live_server.url + heatmap_src)
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    page.screenshot(path=str(SCREENSHOTS / "result-evidence.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "result-evidence-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1200, "height": 1000})

    # The same file again: answered at once from the first check, which the page names.
    second_url = _upload(page, live_server.url, image)
    assert second_url != first_url
    assert page.locator("#detection-status").get_attribute("data-status") == "done"
    assert page.locator("#detection-label").inner_text().strip().lower() == verdict
    note = page.locator("#repeat-note").inner_text()
    assert "You checked this image on" in note
    assert (
        page.locator("#repeat-note a").get_attribute("href") == first_url.split(live_server.url)[1]
    )
    page.screenshot(path=str(SCREENSHOTS / "result-repeat.png"), full_page=True)

    # The history lists both with real thumbnails, not the stored images.
    page.goto(f"{live_server.url}/history/")
    thumbs = page.locator("#history-table img.thumb")
    assert thumbs.count() == 2
    for i in range(2):
        assert "/thumbnail/" in thumbs.nth(i).get_attribute("src")
    assert csp_violations == []
