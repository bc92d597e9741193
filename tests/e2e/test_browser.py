"""A person in real Chromium: sign up, upload, watch the verdict arrive without a reload, find it
in the history, delete it. Against live_server and the real worker."""

from __future__ import annotations

import re

import pytest

from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls that the
    # live_server fixtures make from here are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def csp_violations(browser_page) -> list[str]:
    """What Chromium reports the pages' Content-Security-Policy blocked (console messages)."""
    found: list[str] = []
    browser_page.on(
        "console",
        lambda message: found.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    return found


@pytest.fixture
def slow_start(monkeypatch):
    """Messages published by this process wait 3 s at the worker, so the page is seen pending
    before the verdict arrives (the worker and the model are real, only the start is delayed)."""
    from deepfake_site.celery import app
    from detection.publish import RUN_TASK

    def _publish(*, detection_id: int) -> None:
        app.send_task(RUN_TASK, args=[detection_id], countdown=3)

    monkeypatch.setattr("detection.publish.detection_run_publish", _publish)


def _sign_up(page, base: str, username: str) -> None:
    """Sign up through the real form, then confirm the address with the link in the mail (the
    live server runs in this process, so it lands in mail.outbox); that signs in and lands on
    the upload page."""
    from django.core import mail

    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", f"{username}@example.com")
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", "a-long-passphrase-for-tests-91")
    page.fill("input[name=password2]", "a-long-passphrase-for-tests-91")
    page.locator("form:has(input[name=password1]) [type=submit]").click()
    page.wait_for_url(f"{base}/accounts/confirm-email/")
    (message,) = [m for m in mail.outbox if m.to == [f"{username}@example.com"]]
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", message.body)
    assert link, message.body
    page.goto(f"{base}{link.group(1)}")
    page.locator("main form [type=submit]").click()
    page.wait_for_url(f"{base}/upload/")


def test_sign_up_upload_watch_verdict_history_delete(
    e2e, live_server, browser_page, csp_violations, slow_start, tmp_path
):
    page = browser_page
    base = live_server.url
    image = tmp_path / "portrait.jpg"
    image.write_bytes(face_image_bytes("JPEG", (160, 120)))

    _sign_up(page, base, "browser")

    # Upload one image with the file input (the drop zone's preview lists it).
    page.set_input_files("input[type=file]", str(image))
    page.wait_for_selector(".preview-item:has-text('portrait.jpg')")
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/detections/\d+/$"))
    result_url = page.url

    # The page starts pending and turns into a verdict by itself: no navigation, same URL.
    status = page.locator("#detection-status")
    assert status.get_attribute("data-status") in ("pending", "running")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.wait_for_selector("#detection-status[data-status=done]", timeout=90_000)
    assert page.url == result_url
    assert navigations == []
    verdict = page.locator("#detection-label").inner_text().strip().lower()
    assert verdict in ("real", "fake", "uncertain")
    assert page.locator(".confidence-bar").is_visible()
    assert page.locator("#faces-table tbody tr").count() == 1
    assert e2e["model_version"] in page.content()
    # The image is served to its owner through the private view.
    assert page.evaluate("document.querySelector('.image-frame img').naturalWidth") == 160

    # It is in the history, with its verdict.
    page.click("nav >> text=History")
    row = page.locator("#history-table tbody tr", has_text="portrait.jpg")
    assert row.count() == 1
    assert verdict in row.inner_text().lower()

    # Delete it: confirmation page, then gone.
    row.locator("text=Delete").click()
    page.wait_for_selector("text=Delete this detection?")
    page.locator("main form button[type=submit]", has_text="Delete").click()
    page.wait_for_url(f"{base}/history/")
    assert page.locator("text=The detection and its image were deleted.").is_visible()
    assert page.locator("#history-table").count() == 0
    assert page.locator("text=No uploads yet.").is_visible()
    # Every step above ran under the strict page policy without anything being blocked.
    assert csp_violations == []


def test_refused_upload_shows_the_reason_and_stores_nothing(
    e2e, live_server, browser_page, csp_violations, tmp_path, django_user_model
):
    """The upload goes through XHR (for the progress bar); a refusal must still show the page with
    the server's reason, exactly as a plain form post would."""
    from detection.models import Detection

    page = browser_page
    base = live_server.url
    fake_jpeg = tmp_path / "notes.jpg"
    fake_jpeg.write_text("these are meeting notes, not a photo\n")

    _sign_up(page, base, "refused")

    page.set_input_files("input[type=file]", str(fake_jpeg))
    page.click("#upload-submit")
    page.wait_for_selector("#upload-errors")
    assert "Nothing was uploaded" in page.locator("#upload-errors").inner_text()
    assert "notes.jpg" in page.locator("#upload-errors").inner_text()
    assert page.url == f"{base}/upload/"
    user = django_user_model.objects.get(username="refused")
    assert not Detection.objects.filter(owner=user).exists()
    # The form is usable again after the refusal.
    assert page.locator("#upload-submit").count() == 1
    assert csp_violations == []


def test_api_docs_work_under_their_content_security_policy(
    live_server, browser_page, csp_violations
):
    """Swagger UI has a policy of its own (inline styles, data: icons, still no inline script):
    it loads the schema and lists the operations, and nothing it needs is blocked."""
    page = browser_page
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title:has-text('Deepfake detection API')")
    page.wait_for_selector(".opblock-summary-path:has-text('/api/v1/detections/')")
    assert csp_violations == []
