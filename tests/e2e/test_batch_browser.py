"""A batch in real Chromium, with the real worker: three images uploaded at once through the
upload page, and the batch page fills in row by row, its summary line with it, without a
reload; then its CSV, and the same page on a 390 px phone without sideways scrolling.

Screenshots (looked at by people, not compared): var/screenshots/batch-*.png.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest

from tests.e2e.test_browser import _sign_up
from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# Each message waits this long at the worker, in upload order: the verdicts arrive seconds
# apart, so the page is seen with one row finished while the others are not (the worker and
# the model are real, only the starts are staggered).
COUNTDOWNS = (2, 14, 26)
FINAL = ("done", "failed")



@pytest.fixture
def staggered_starts(monkeypatch) -> list[int]:
    """Run messages published by this process start COUNTDOWNS seconds later, in order."""
    from deepfake_site.celery import app
    from detection.publish import RUN_TASK

    published: list[int] = []

    def _publish(*, detection_id: int) -> str:
        countdown = COUNTDOWNS[min(len(published), len(COUNTDOWNS) - 1)]
        published.append(detection_id)
        return app.send_task(RUN_TASK, args=[detection_id], countdown=countdown).id

    monkeypatch.setattr("detection.publish.detection_run_publish", _publish)
    return published


def _snapshot(page) -> dict:
    return page.evaluate(
        """() => ({
            states: Array.from(document.querySelectorAll('#batch-table tbody tr'))
                .map(tr => tr.getAttribute('data-state')),
            verdicts: Array.from(document.querySelectorAll('#batch-table tbody tr'))
                .map(tr => tr.querySelector('.verdict-cell').innerText.trim()),
            summary: document.getElementById('batch-summary').innerText.trim(),
        })"""
    )


def _finished(states: list[str]) -> int:
    return sum(state.split("-")[0] in FINAL for state in states)


def _no_sideways_scroll(page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_batch_page_fills_in_row_by_row(e2e, live_server, browser, staggered_starts, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    blocked: list[str] = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    base = live_server.url
    files = []
    for number, size in enumerate([(160, 120), (200, 150), (240, 180)], start=1):
        path = tmp_path / f"portrait-{number}.jpg"
        path.write_bytes(face_image_bytes("JPEG", size))  # three different files
        files.append(str(path))

    _sign_up(page, base, "batcher")
    page.set_input_files("input[type=file]", files)
    page.wait_for_selector(".preview-item:has-text('portrait-3.jpg')")
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/batches/\d+/$"))
    batch_url = page.url
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    first = _snapshot(page)
    assert len(first["states"]) == 3
    assert _finished(first["states"]) == 0
    assert set(first["verdicts"]) <= {"Pending", "Running"}
    assert "Nothing finished yet" in first["summary"]

    # Watch the page (no reload) until every row is finished, noting each change.
    seen = [first]
    partial = None
    deadline = time.monotonic() + 180
    while _finished(seen[-1]["states"]) < 3:
        assert time.monotonic() < deadline, f"the batch did not finish: {seen[-1]}"
        page.wait_for_timeout(150)
        now = _snapshot(page)
        if now != seen[-1]:
            seen.append(now)
        if partial is None and 0 < _finished(now["states"]) < 3:
            partial = now
            page.screenshot(path=str(SCREENSHOTS / "batch-desktop-partial.png"), full_page=True)

    counts = [_finished(s["states"]) for s in seen]
    assert counts == sorted(counts), counts  # a finished row never goes back
    # One by one: the page showed one finished row, then two, before all three.
    assert 1 in counts and 2 in counts, counts
    assert partial is not None
    done_rows = [
        v
        for s, v in zip(partial["states"], partial["verdicts"], strict=True)
        if s.startswith("done")
    ]
    open_rows = [
        v
        for s, v in zip(partial["states"], partial["verdicts"], strict=True)
        if s.split("-")[0] not in FINAL
    ]
    assert done_rows and all(v in ("Real", "Fake", "Uncertain", "No face") for v in done_rows)
    assert open_rows and all(v in ("Pending", "Running") for v in open_rows)
    # The summary line follows the rows: it counts what is still open, then says all finished.
    assert re.search(r"; (\d+ still running|\d+ waiting for a worker)", partial["summary"])
    final = seen[-1]
    assert final["summary"].endswith("all 3 finished."), final["summary"]
    for word in ("fake", "real", "uncertain", "with no face found"):
        n = sum(
            v.lower() == ("no face" if word == "with no face found" else word)
            for v in final["verdicts"]
        )
        if n:
            assert f"{n} {word}" in final["summary"]
    assert page.url == batch_url and navigations == []
    page.wait_for_timeout(300)  # the last swap painted
    page.screenshot(path=str(SCREENSHOTS / "batch-desktop-done.png"), full_page=True)

    # The batch's own CSV: its three rows, in upload order.
    with page.expect_download() as download_info:
        page.click("#batch-export")
    download = download_info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert [r["original_name"] for r in rows] == [f"portrait-{n}.jpg" for n in (1, 2, 3)]
    assert {r["status"] for r in rows} <= set(FINAL)

    # A phone: rows become cards, nothing scrolls sideways, every verdict is in view.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _no_sideways_scroll(page)
    for cell in page.locator("#batch-table .verdict-cell").all():
        box = cell.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.screenshot(path=str(SCREENSHOTS / "batch-mobile.png"), full_page=True)

    # The same on the history page, with its select-all box.
    page.goto(f"{base}/history/")
    _no_sideways_scroll(page)
    assert page.locator("#select-all").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "batch-history-mobile.png"), full_page=True)
    assert blocked == []
    context.close()
