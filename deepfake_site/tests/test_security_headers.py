"""Pages carry a strict Content-Security-Policy and a Permissions-Policy, and contain nothing that
policy would block (inline script, event-handler attributes, style attributes)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from detection.tests.factories import DetectionFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)
INLINE_STYLE_BLOCK = re.compile(r"<style[\s>]", re.I)


def _directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def _assert_strict_page_policy(response) -> None:
    directives = _directives(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy


def _assert_permissions_policy(response) -> None:
    items = response["Permissions-Policy"].split(",")
    features = dict(item.strip().split("=", 1) for item in items)
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert features[feature] == "()", feature


def _assert_nothing_the_policy_blocks(html: str, where: str) -> None:
    for pattern in (INLINE_SCRIPT, EVENT_HANDLER, STYLE_ATTRIBUTE, INLINE_STYLE_BLOCK):
        found = pattern.search(html)
        assert not found, f"{where}: {found.group(0)[:200] if found else ''}"


def test_anonymous_pages_have_the_strict_policy_and_nothing_it_blocks(client):
    for name in ("home", "privacy", "account_login", "account_signup"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        _assert_strict_page_policy(response)
        _assert_permissions_policy(response)
        _assert_nothing_the_policy_blocks(response.content.decode(), name)


def test_signed_in_pages_and_the_polled_result_have_nothing_the_policy_blocks(client, user):
    client.force_login(user)
    done = DetectionFactory(owner=user, done=True)  # face box and confidence band drawn
    pending = DetectionFactory(owner=user)
    urls = [
        reverse("detection:upload"),
        reverse("detection:history"),
        reverse("detection:api-help"),
        reverse("accounts:profile"),
        reverse("detection:detail", args=[done.id]),
        reverse("detection:detail", args=[pending.id]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_strict_page_policy(response)
        _assert_nothing_the_policy_blocks(response.content.decode(), url)
    # The HTML the page's script swaps in while polling is under the same page policy.
    polled = client.get(reverse("detection:status", args=[done.id]), HTTP_ACCEPT="application/json")
    assert polled.status_code == 200
    assert "face-box" in polled.json()["html"]
    _assert_nothing_the_policy_blocks(polled.json()["html"], "status html")


def test_api_docs_have_their_own_policy_that_still_allows_no_inline_script(client, user):
    client.force_login(user)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    directives = _directives(response)
    # Swagger UI's inline <style> block and data: icons; scripts stay this site's files only.
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    _assert_permissions_policy(response)
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    start_up = [src for src in scripts if "script=" in src]
    assert start_up, scripts
    script = client.get(start_up[0].replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_stored_image_keeps_its_own_sandboxing_policy(client, user):
    client.force_login(user)
    detection = DetectionFactory(owner=user)
    response = client.get(reverse("detection:image", args=[detection.id]))
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    _assert_permissions_policy(response)


def test_api_answers_carry_the_headers_too(client):
    response = client.get("/api/v1/detections/")
    assert response.status_code in (401, 403)
    _assert_strict_page_policy(response)
    _assert_permissions_policy(response)
