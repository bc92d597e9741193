"""The Private check page (issue 14): public, its own Content-Security-Policy (WebAssembly may
compile there and only there), the settings its script reads, the vendored TensorFlow.js it loads
and the nav link to it. What the page does in a browser: tests/e2e/test_private_check_browser.py."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse

from deepfake_site.security_headers import PAGE_POLICY, PRIVATE_CHECK_POLICY

pytestmark = pytest.mark.django_db

VENDOR_DIR = Path(settings.BASE_DIR) / "static" / "vendor" / "tfjs"
VENDORED = (
    "tf-core.min.js",
    "tf-backend-cpu.min.js",
    "tf-backend-wasm.min.js",
    "tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm",
)


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (p.split() for p in policy.split(";") if p.strip())}


def _root_attributes(html: str) -> dict[str, str]:
    tag = re.search(r'<div class="private-check" id="private-check"([^>]*)>', html, re.S)
    assert tag, html[:2000]
    return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', tag.group(1)))


def test_page_is_public_and_says_the_image_stays_on_the_device(client):
    response = client.get(reverse("detection:private-check"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Private check</h1>" in html
    assert "the image stays on this device and nothing is uploaded" in html
    # No form posts anything: the file input has no form around it and no name the server reads.
    assert "<form" not in html.split('id="private-check"', 1)[1].split("</main>", 1)[0]


def test_page_policy_adds_wasm_unsafe_eval_and_nothing_else(client):
    response = client.get(reverse("detection:private-check"))
    assert response["Content-Security-Policy"] == PRIVATE_CHECK_POLICY
    directives = _directives(PRIVATE_CHECK_POLICY)
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    # Everything else is the page policy: no eval of JavaScript, no fetch to another site.
    page = _directives(PAGE_POLICY)
    assert {k: v for k, v in directives.items() if k != "script-src"} == {
        k: v for k, v in page.items() if k != "script-src"
    }
    assert "connect-src" not in directives and directives["default-src"] == ["'self'"]
    assert "'unsafe-eval'" not in PRIVATE_CHECK_POLICY.split()
    assert "unsafe-inline" not in PRIVATE_CHECK_POLICY


def test_other_pages_keep_the_policy_without_wasm(client, user):
    for url in (reverse("home"), reverse("privacy"), reverse("detection:model-list")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "wasm-unsafe-eval" not in response["Content-Security-Policy"], url
    client.force_login(user)
    response = client.get(reverse("detection:upload"))
    assert "wasm-unsafe-eval" not in response["Content-Security-Policy"]


def test_page_has_no_inline_script_or_style(client):
    html = client.get(reverse("detection:private-check")).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.I)
    assert not re.search(r"<[^>]+\s(style|on[a-z]+)\s*=", html, re.I)
    assert not re.search(r"<style[\s>]", html, re.I)


def test_page_loads_the_vendored_tfjs_then_its_module(client):
    html = client.get(reverse("detection:private-check")).content.decode()
    scripts = re.findall(r'<script([^>]*)src="([^"]+)"', html)
    sources = [src for _, src in scripts]
    wanted = [
        static("vendor/tfjs/tf-core.min.js"),
        static("vendor/tfjs/tf-backend-cpu.min.js"),
        static("vendor/tfjs/tf-backend-wasm.min.js"),
        static("js/private-check/page.js"),
    ]
    positions = [sources.index(src) for src in wanted]
    assert positions == sorted(positions)
    assert 'type="module"' in dict((src, attrs) for attrs, src in scripts)[wanted[-1]]
    # Nothing from another site.
    assert all(src.startswith("/") for src in sources), sources


def test_page_settings_for_its_script(client, settings):
    settings.DETECTION_MAX_PIXELS = 12_000_000
    data = _root_attributes(client.get(reverse("detection:private-check")).content.decode())
    assert data["data-model-url"] == static("private-check/model/")
    assert data["data-wasm-simd"] == static("vendor/tfjs/tfjs-backend-wasm-simd.wasm")
    assert data["data-max-pixels"] == "12000000"
    assert data["data-signed-in"] == "false"
    assert data["data-save-url"] == ""
    assert data["data-model-card-url"] == reverse("detection:model-card", args=["__version__"])
    assert data["data-login-url"].startswith(reverse("account_login") + "?next=")


def test_page_says_same_model_only_when_the_server_runs_it(client, settings):
    manifest = json.loads(
        (Path(settings.BASE_DIR) / "static/private-check/model/manifest.json").read_text()
    )
    data = _root_attributes(client.get(reverse("detection:private-check")).content.decode())
    # The shipped export is of the shipped model, which the server loads by default.
    assert data["data-same-model"] == "true"
    assert data["data-server-model-version"] == manifest["model"]["version"]
    # A server configured with another model: the page must not claim they are the same.
    settings.ML_MODEL_DIR = str(Path(settings.BASE_DIR) / "ml" / "models" / "v1")
    data = _root_attributes(client.get(reverse("detection:private-check")).content.decode())
    assert data["data-same-model"] == "false"
    assert data["data-server-model-version"] not in ("", manifest["model"]["version"])


def test_signed_in_page_says_so(client, user):
    client.force_login(user)
    response = client.get(reverse("detection:private-check"))
    assert response.status_code == 200
    data = _root_attributes(response.content.decode())
    assert data["data-signed-in"] == "true"
    # The csrftoken cookie the save reads is set (the layout's sign-out form asks for it).
    assert "csrftoken" in response.cookies


def test_post_is_refused(client):
    # The page takes no upload: a POST (an image sent by mistake) is refused before any view code.
    response = client.post(reverse("detection:private-check"), {"image": "x"})
    assert response.status_code == 405


def test_nav_links_to_the_page_signed_out_and_in(client, user):
    url = reverse("detection:private-check")
    link = f'<a href="{url}"'
    assert link in client.get(reverse("privacy")).content.decode()
    home = client.get(reverse("home")).content.decode()
    assert 'id="private-check-mention"' in home and home.count(link) >= 2  # nav and the mention
    page = client.get(url).content.decode()
    assert f'<a href="{url}" aria-current="page">Private check</a>' in page
    client.force_login(user)
    upload = client.get(reverse("detection:upload")).content.decode()
    assert f'<a href="{url}">Private check</a>' in upload


def test_vendored_files_match_their_versions_file():
    versions = (VENDOR_DIR / "VERSIONS").read_text()
    for package in ("tfjs-core", "tfjs-backend-cpu", "tfjs-backend-wasm"):
        assert f"@tensorflow/{package} 4.22.0 (Apache-2.0)" in versions
    for name in VENDORED:
        digest = hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in versions, name
    assert "Apache License" in (VENDOR_DIR / "LICENSE").read_text()


def test_vendored_scripts_name_no_source_map():
    # The production static storage (collectstatic) fails on a sourceMappingURL to a file that
    # is not there; scripts/vendor_tfjs.sh drops that line and ships no maps.
    for name in VENDORED[:3]:
        assert b"sourceMappingURL" not in (VENDOR_DIR / name).read_bytes(), name


def test_wasm_is_served_as_application_wasm(client, settings):
    # WebAssembly.instantiateStreaming refuses any other type (TF.js would fall back to a slower
    # path). Whitenoise serves the static files in production; here it finds them in static/
    # as it does under DEBUG (the test client builds its middleware on its first request).
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    for name in ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"):
        response = client.get(static(f"vendor/tfjs/{name}"))
        assert response.status_code == 200, name
        assert response["Content-Type"] == "application/wasm", name
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body[:4] == b"\0asm"
    # Django's own static serving (runserver, the browser tests' live server) asks mimetypes.
    assert mimetypes.guess_type("tfjs-backend-wasm.wasm")[0] == "application/wasm"
