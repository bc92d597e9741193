"""A video's result page in real Chromium.

1. Without the worker (rows written by the test as the worker writes them): the page shows the
   frames judged and follows them, then the verdict, the timeline, the frame strip and the tracks
   arrive without a reload while the same <video> element keeps its place; the video loads
   through range requests; a click or the keyboard on the timeline, or a frame of the strip,
   seeks the video; nothing breaks the Content-Security-Policy; desktop and phone widths.
2. With the real worker: a clip made by tests/video_clips is uploaded through the upload page,
   the page fills in by itself, and the API answers the same.

Screenshots (for people to look at, not compared): var/screenshots/video-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import timezone

from tests.e2e.conftest import session_cookie
from tests.e2e.test_browser import (  # noqa: F401 - fixtures
    _sign_up,
    browser_page,
    csp_violations,
)
from tests.video_clips import make_clip

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}



def _signed_in_page(browser, live_server, user, viewport: dict, violations: list[str]):
    context = browser.new_context(viewport=viewport)
    context.add_cookies([session_cookie(user, live_server)])
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page


def _wait_time(page, seconds: float) -> None:
    page.wait_for_function(
        "t => Math.abs(document.getElementById('detection-video').currentTime - t) < 0.05",
        arg=seconds,
    )


def test_video_result_page_fills_in_and_seeks(live_server, browser, user):
    from detection.models import Detection
    from detection.tests.video_records import (
        AGGREGATE_METHOD,
        TWO_TRACKS,
        tracks_add,
        video_detection,
    )

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    violations: list[str] = []
    detection = video_detection(
        owner=user,
        original_name="interview.mp4",
        status=Detection.Status.RUNNING,
        started_at=timezone.now(),
        frames_total=4,
        frames_done=1,
    )
    page = _signed_in_page(browser, live_server, user, DESKTOP, violations)
    url = f"{live_server.url}/detections/{detection.id}/"
    page.goto(url)
    assert page.locator("#video-progress-text").inner_text() == "Analysing frame 1 of 4…"
    # The video loads (its metadata, through range requests) while the model works.
    page.wait_for_function("() => document.getElementById('detection-video').readyState >= 1")
    page.evaluate("() => window.videoBefore = document.getElementById('detection-video')")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    # The page follows the worker's count without a reload.
    # The timeline so far comes with each count: the most suspicious face of each judged frame.
    Detection.objects.filter(id=detection.id).update(
        frames_done=3, progress_points=[[0.25, 0.42], [0.75, 0.61], [1.25, 0.7]]
    )
    page.wait_for_selector("#video-progress-text:has-text('Analysing frame 3 of 4')")
    assert page.locator("#video-progress progress").get_attribute("value") == "3"
    page.wait_for_selector("#timeline-so-far")
    assert page.locator("#video-timeline circle.timeline-point").count() == 3
    page.screenshot(path=str(SCREENSHOTS / "video-desktop-running.png"), full_page=True)

    # The worker finishes: tracks and faces first, then the verdict, as it writes them.
    for index, spec in TWO_TRACKS.items():
        tracks_add(detection, index=index, **spec)
    Detection.objects.filter(id=detection.id).update(
        status=Detection.Status.DONE,
        frames_done=4,
        label="fake",
        fake_probability=0.88,
        deciding_track=1,
        aggregate_method=AGGREGATE_METHOD,
        threshold=0.5,
        uncertain_low=0.4,
        uncertain_high=0.6,
        model_name="fake-model",
        model_version="fake-model-20260101-abcdef123456",
        finished_at=timezone.now(),
        heatmap_status=Detection.HeatmapStatus.NOT_APPLICABLE,
    )
    page.wait_for_selector("#detection-status[data-status=done]", timeout=30_000)
    page.wait_for_selector("#video-timeline")
    assert page.url == url and navigations == []
    # The same element: a video being watched is not restarted by the refresh.
    assert page.evaluate("() => window.videoBefore === document.getElementById('detection-video')")
    assert page.locator("#detection-label").inner_text().strip() == "Fake"
    assert page.locator("#video-timeline polyline").count() == 2
    assert page.locator("#video-timeline .timeline-point").count() == 7
    assert page.locator("#timeline-band").count() == 1
    assert page.locator("#tracks-table tbody tr").count() == 2
    assert page.locator("#frame-strip .frame-card").count() == 2
    # The frames' pictures load (owner-only view).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#frame-strip img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )

    # A click on a point plays from its moment; the marker follows.
    page.locator("#video-timeline .timeline-point[data-time='1']").first.click()
    _wait_time(page, 1.0)
    assert page.locator("#timeline-now").get_attribute("visibility") == "visible"
    assert page.locator("#timeline-now").get_attribute("x1") == "50.000%"
    # From the keyboard: the track's first point is in the Tab order; arrows move along it.
    first = page.locator(".timeline-points[data-track='1'] .timeline-point").first
    first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    _wait_time(page, 0.5)
    assert page.evaluate("() => document.activeElement.getAttribute('data-time')") == "0.5"
    # A frame of the strip seeks too.
    page.locator("#frame-strip .frame-card").nth(0).click()
    _wait_time(page, 1.0)
    page.locator("#frame-strip .frame-card").nth(1).click()
    _wait_time(page, 0.5)
    # The video plays (decoded frames, not just metadata).
    page.evaluate("() => document.getElementById('detection-video').muted = true")
    page.evaluate("() => document.getElementById('detection-video').play()")
    page.wait_for_function("() => document.getElementById('detection-video').currentTime > 0.7")
    page.evaluate("() => document.getElementById('detection-video').pause()")
    page.locator("#video-timeline .timeline-point[data-time='1']").first.click()
    _wait_time(page, 1.0)
    page.screenshot(path=str(SCREENSHOTS / "video-desktop-done.png"), full_page=True)

    phone = _signed_in_page(browser, live_server, user, PHONE, violations)
    phone.goto(url)
    phone.wait_for_function("() => document.getElementById('detection-video').readyState >= 1")
    # Nothing wider than the screen: the page does not scroll sideways.
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    phone.locator("#frame-strip .frame-card").nth(0).click()
    _wait_time(phone, 1.0)
    phone.screenshot(path=str(SCREENSHOTS / "video-mobile-done.png"), full_page=True)

    # The history lists it as a video, with its length, under the type filter.
    phone.goto(f"{live_server.url}/history/?kind=video")
    assert "video · 0:02" in phone.locator(f"#detection-{detection.id}").inner_text()
    phone.screenshot(path=str(SCREENSHOTS / "video-mobile-history.png"), full_page=True)
    assert violations == []


def test_upload_a_clip_and_watch_it_fill_in(  # noqa: F811
    e2e,
    live_server,
    browser_page,  # noqa: F811 - the fixture imported above
    csp_violations,  # noqa: F811
    tmp_path,
):
    """The whole path: a clip through the upload page, the real worker, the page and the API."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page
    base = live_server.url
    clip = tmp_path / "two-people.mp4"
    # A minute: the worker judges DETECTION_VIDEO_MAX_SAMPLES (120) frames, for long enough that
    # the page (polling every 1.5 s at most while frames are counted) sees them being counted.
    clip.write_bytes(make_clip("mp4", seconds=60.0, fps=5, size=(320, 240), faces=2))
    _sign_up(page, base, "watcher")

    page.set_input_files("input[type=file]", str(clip))
    page.wait_for_selector(".preview-item:has-text('two-people.mp4')")
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/detections/\d+/$"))
    result_url = page.url
    detection_id = int(result_url.rstrip("/").rsplit("/", 1)[1])
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    # Every progress line the page shows, as the polling swaps them in.
    page.evaluate(
        """() => {
            window.progressSeen = [];
            const note = () => {
                const line = document.getElementById("video-progress-text");
                if (line) { window.progressSeen.push(line.textContent.trim()); }
                if (document.getElementById("timeline-so-far")) {
                    window.pointsSeen = window.pointsSeen || [];
                    window.pointsSeen.push(document.querySelectorAll(
                        "#video-timeline circle.timeline-point").length);
                }
            };
            note();
            new MutationObserver(note).observe(
                document.getElementById("result"), {childList: true, subtree: true});
        }"""
    )
    page.wait_for_function("() => document.getElementById('detection-video').readyState >= 1")

    page.wait_for_selector("#detection-status[data-status=done]", timeout=240_000)
    assert page.url == result_url and navigations == []
    counted = [
        (int(m.group(1)), int(m.group(2)))
        for text in page.evaluate("() => window.progressSeen")
        if (m := re.fullmatch(r"Analysing frame (\d+) of (\d+)…", text))
    ]
    assert any(0 < done < total for done, total in counted), counted
    # The timeline filled in while it ran: a line so far, with points, before the verdict.
    points_seen = page.evaluate("() => window.pointsSeen || []")
    assert any(n > 0 for n in points_seen), points_seen
    assert [done for done, _total in counted] == sorted(done for done, _total in counted)
    label = page.locator("#detection-label").inner_text().strip().lower()
    assert label in ("real", "fake", "uncertain")  # real faces: the detector finds them
    data = page.evaluate(
        "id => fetch(`/api/v1/detections/${id}/`, {credentials: 'same-origin'})"
        ".then(r => r.json())",
        detection_id,
    )
    assert data["kind"] == "video" and data["status"] == "done"
    assert data["frames_done"] == data["frames_total"] > 0 and data["progress"] == 1.0
    assert data["label"] == label
    assert data["fake_probability"] == max(t["fake_probability"] for t in data["tracks"])
    page.wait_for_selector("#video-timeline")
    assert page.locator("#video-timeline polyline").count() == len(data["tracks"]) >= 1
    points = sum(len(t["points"]) for t in data["tracks"])
    assert page.locator("#video-timeline .timeline-point").count() == points > 1
    assert page.locator("#tracks-table tbody tr").count() == len(data["tracks"])
    target = page.locator(".timeline-point").nth(1)
    seconds = float(target.get_attribute("data-time"))
    target.click()
    _wait_time(page, seconds)
    if page.locator("#frame-strip .frame-card").count():
        page.wait_for_function(
            "() => [...document.querySelectorAll('#frame-strip img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
    page.screenshot(path=str(SCREENSHOTS / "video-desktop-worker.png"), full_page=True)
    assert csp_violations == []
