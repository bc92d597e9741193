"""The Private check page opened offline, in real Chromium: after one visit online (the model
loaded, the service worker active), a reload with the network cut shows the kept copy of the
page, the model loads from the browser's cache and a face photo gets the verdict it got online.
A signed-in visitor's kept copy holds neither their name nor a CSRF token; the worker serves no
other page offline; no Content-Security-Policy violation on the way. The worker and the copy on
the server side: detection/tests/test_private_check_offline.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError

from deepfake_site.security_headers import PRIVATE_CHECK_POLICY
from tests.e2e.conftest import csp_watched_page, session_cookie
from tests.e2e.test_private_check_browser import CHECK_MS, MODEL_READY_MS, _check, _verdict
from tests.face_images import FACE

pytestmark = [pytest.mark.slow]

WORKER_MS = 60_000
CACHE_PREFIX = "private-check-page:"  # templates/detection/private_check_sw.js


@pytest.fixture
def context(browser, transactional_db):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, service_workers="allow")
    try:
        yield context
    finally:
        context.close()


def _worker_active(page) -> None:
    """Waits until the page's service worker is installed (its files and the copy cached) and
    active."""
    state = page.evaluate(
        """() => navigator.serviceWorker.ready.then((registration) => new Promise((resolve) => {
             const worker = registration.active;
             if (worker.state === 'activated') { resolve(worker.state); return; }
             worker.addEventListener('statechange', () => {
               if (worker.state === 'activated') { resolve(worker.state); }
             });
           }))""",
    )
    assert state == "activated"


def _network_cut(page) -> bool:
    return page.evaluate(
        "fetch('/static/private-check/model/manifest.json', {cache: 'no-store'})"
        ".then(() => false, () => true)"
    )


def _kept_copies(page) -> list[str]:
    """The text of every copy of the page the worker's caches hold."""
    return page.evaluate(
        """async (prefix) => {
             const texts = [];
             for (const name of await caches.keys()) {
               if (!name.startsWith(prefix)) { continue; }
               const cache = await caches.open(name);
               for (const request of await cache.keys()) {
                 const type = (await cache.match(request)).headers.get('Content-Type') || '';
                 if (type.startsWith('text/html')) {
                   texts.push(await (await cache.match(request)).text());
                 }
               }
             }
             return texts;
           }""",
        CACHE_PREFIX,
    )


def test_page_reopens_offline_and_gives_the_online_verdict(live_server, context):
    face = sorted(FACE.glob("*.jpg"))[0]
    page = csp_watched_page(context)
    page.goto(f"{live_server.url}/private-check/")
    page.wait_for_selector("#private-check[data-state=ready]", timeout=MODEL_READY_MS)
    _worker_active(page)
    _check(page, face)
    online = _verdict(page)
    assert online["label"] in ("real", "fake", "uncertain"), online

    context.set_offline(True)
    assert _network_cut(page)
    response = page.reload()
    # The kept copy (the worker could not reach the page), under the page's own policy.
    assert response.from_service_worker and response.ok
    assert response.headers["content-security-policy"] == PRIVATE_CHECK_POLICY
    page.wait_for_selector("#pc-offline-note", timeout=WORKER_MS)
    # Then the model, from the browser's cache.
    page.wait_for_selector(
        "#private-check:is([data-state=ready], [data-state=load-failed])", timeout=MODEL_READY_MS
    )
    assert page.get_attribute("#private-check", "data-state") == "ready", page.inner_text(
        "#pc-progress-text"
    )
    assert page.get_attribute("#pc-progress-text", "data-cached") == "true"
    assert page.get_attribute("#pc-model-name", "data-model-version")
    assert _network_cut(page)  # still offline: nothing above came from the server
    _check(page, face)
    assert _verdict(page) == online

    # The worker keeps this page only: another one of the site does not open offline.
    with pytest.raises(PlaywrightError):
        page.goto(f"{live_server.url}/upload/", timeout=CHECK_MS)
    with pytest.raises(PlaywrightError):
        page.goto(f"{live_server.url}/", timeout=CHECK_MS)
    assert page.blocked == []


def test_signed_in_visitors_kept_copy_has_nothing_of_theirs(live_server, context, user):
    context.add_cookies([session_cookie(user, live_server)])
    page = csp_watched_page(context)
    page.goto(f"{live_server.url}/private-check/")
    _worker_active(page)
    # Online, the page is the network's: signed in (the copy is only for when that fails).
    page.reload()
    assert page.locator("#private-check").get_attribute("data-signed-in") == "true"
    assert page.locator("button", has_text="Sign out").count() == 1
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    token = page.get_attribute("input[name=csrfmiddlewaretoken]", "value")  # the live page's
    assert cookie and token

    copies = _kept_copies(page)
    assert len(copies) == 1, copies
    for secret in (user.username, user.email, cookie, token, "csrfmiddlewaretoken", "Sign out"):
        assert secret not in copies[0], secret

    context.set_offline(True)
    assert page.reload().from_service_worker
    page.wait_for_selector("#pc-offline-note", timeout=WORKER_MS)
    html = page.content()
    for secret in (user.username, user.email, cookie, token, "csrfmiddlewaretoken"):
        assert secret not in html, secret
    assert page.locator("#private-check").get_attribute("data-signed-in") == "false"
    assert page.locator("#private-check").get_attribute("data-save-url") == ""
    assert page.blocked == []
