"""The Private check page offline: its service worker (/private-check/sw.js) and the copy of the
page it keeps (/private-check/offline/), rendered as for a signed-out visitor whoever asks. What
they do in a browser: tests/e2e/test_private_check_offline_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse

from deepfake_site.security_headers import PAGE_POLICY, PRIVATE_CHECK_POLICY
from detection import private_check_offline
from detection.private_check_offline import PAGE_MODULES, offline_assets, offline_version

pytestmark = pytest.mark.django_db

MODULE_DIR = Path(settings.BASE_DIR) / "static" / "js" / "private-check"


def _root_attributes(html: str) -> dict[str, str]:
    tag = re.search(r'<div class="private-check" id="private-check"([^>]*)>', html, re.S)
    assert tag, html[:2000]
    return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', tag.group(1)))


def test_worker_is_javascript_asked_for_again_at_each_visit(client):
    response = client.get(reverse("detection:private-check-sw"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    # Its own policy (the page policy) lets it fetch from this site; a sandbox would not.
    assert response["Content-Security-Policy"] == PAGE_POLICY
    assert client.post(reverse("detection:private-check-sw")).status_code == 405


def test_worker_scope_is_the_private_check_page_only():
    # A worker's scope can be at most the folder its script is served from.
    page = reverse("detection:private-check")
    worker = reverse("detection:private-check-sw")
    assert page.endswith("/") and page != "/"
    assert worker.rsplit("/", 1)[0] + "/" == page


def test_page_registers_the_worker_for_its_own_path(client):
    data = _root_attributes(client.get(reverse("detection:private-check")).content.decode())
    assert data["data-service-worker-url"] == reverse("detection:private-check-sw")
    assert data["data-service-worker-scope"] == reverse("detection:private-check")


def test_worker_lists_the_static_urls_the_page_loads(client):
    body = client.get(reverse("detection:private-check-sw")).content.decode()
    assets_literal = body.split("const ASSETS = ", 1)[1].split(".map(", 1)[0]
    listed = set(re.findall(r'"(/[^"]+)"', assets_literal))
    assert listed == {url for _, url in offline_assets()}
    page = client.get(reverse("detection:private-check")).content.decode()
    # Every script, stylesheet and icon of the page, by the URL the page itself uses.
    loaded = set(re.findall(r'<(?:script|link)[^>]*(?:src|href)="(/static/[^"]+)"', page))
    loaded |= {v for k, v in _root_attributes(page).items() if k.startswith("data-wasm-")}
    assert loaded and loaded <= listed, loaded - listed
    for name in (
        "vendor/tfjs/tf-core.min.js",
        "vendor/tfjs/tfjs-backend-wasm-simd.wasm",
        "js/private-check/page.js",
        "css/site.css",
    ):
        assert static(name) in listed, name
    # Nothing else of the site: no model file (engine.js keeps those), no page, no API.
    assert all(url.startswith(static("")) for url in listed), listed
    assert not any("/private-check/model/" in url for url in listed)
    assert f'"{reverse("detection:private-check-offline")}"' in body


def test_worker_lists_every_module_the_page_imports():
    on_disk = {p.name for p in MODULE_DIR.glob("*.js")}
    assert on_disk == {"page.js", *PAGE_MODULES}
    for path in MODULE_DIR.glob("*.js"):
        for imported in re.findall(r'^import .* from "\./([^"]+)";', path.read_text(), re.M):
            assert imported in PAGE_MODULES, (path.name, imported)


def test_worker_version_follows_the_files_and_the_copy(tmp_path, monkeypatch):
    assets = offline_assets()
    first = offline_version(assets=assets, offline_page=b"<html>1</html>")
    assert first == offline_version(assets=assets, offline_page=b"<html>1</html>")
    assert first != offline_version(assets=assets, offline_page=b"<html>2</html>")
    # A module keeps its URL from one release to the next: its content must change the version.
    copy = tmp_path / "engine.js"
    copy.write_text("// one")
    real_find = private_check_offline.finders.find

    def find(path, *args, **kwargs):
        return str(copy) if path.endswith("/engine.js") else real_find(path, *args, **kwargs)

    monkeypatch.setattr(private_check_offline.finders, "find", find)
    before = offline_version(assets=assets, offline_page=b"<html>1</html>")
    copy.write_text("// two, a longer file")
    assert offline_version(assets=assets, offline_page=b"<html>1</html>") != before


def test_offline_copy_is_the_signed_out_page_marked_as_the_copy(client):
    response = client.get(reverse("detection:private-check-offline"))
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == PRIVATE_CHECK_POLICY
    html = response.content.decode()
    assert 'id="pc-offline-note"' in html and "You are offline" in html
    data = _root_attributes(html)
    assert data["data-signed-in"] == "false" and data["data-save-url"] == ""
    # Its links are the page's own: the nav marks it, sign-in comes back to it.
    page = reverse("detection:private-check")
    assert f'<a href="{page}" aria-current="page">Private check</a>' in html
    assert data["data-login-url"] == f"{reverse('account_login')}?next={page}"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.I)
    # The page itself, online, is not marked.
    assert 'id="pc-offline-note"' not in client.get(page).content.decode()


def test_offline_copy_holds_nothing_of_a_signed_in_user(client, user):
    anonymous = client.get(reverse("detection:private-check-offline")).content
    client.force_login(user)
    # The signed-in page does show them (so the checks below could fail).
    signed_in = client.get(reverse("detection:private-check"))
    assert b"Sign out" in signed_in.content and b"csrfmiddlewaretoken" in signed_in.content
    cookie = signed_in.cookies["csrftoken"].value
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', signed_in.content.decode())[1]
    response = client.get(reverse("detection:private-check-offline"))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.content == anonymous
    for secret in (user.username, user.email, "csrfmiddlewaretoken", cookie, token, "Sign out"):
        assert secret not in html, secret
    assert _root_attributes(html)["data-signed-in"] == "false"
    assert not response.cookies  # no session or CSRF cookie set by it either


def test_offline_copy_refuses_post(client):
    assert client.post(reverse("detection:private-check-offline")).status_code == 405
