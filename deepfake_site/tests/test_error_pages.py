"""Error pages in the site's layout in production mode (DEBUG off): 400, 403 (and a refused
CSRF check), 404, 500, and a 500 page that still renders when the layout's context cannot be
built (a broken context processor, a database that is down)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from detection.tests.factories import DetectionFactory

pytestmark = pytest.mark.django_db

LAYOUT = '<header class="site-header">'
STYLESHEET = "css/site.css"


@pytest.fixture(autouse=True)
def production_mode(settings):
    settings.DEBUG = False


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _html(response) -> str:
    return response.content.decode()


def test_missing_detection_is_the_sites_404_page(signed_in, user):
    detection = DetectionFactory(owner=user)
    response = signed_in.get(reverse("detection:detail", args=[detection.id + 1000]))
    html = _html(response)
    assert response.status_code == 404
    assert LAYOUT in html and STYLESHEET in html
    assert "<h1>Page not found</h1>" in html
    assert "No such detection." in html  # the view's own message for people
    assert "Your history" in html  # signed in: the way back
    assert "Traceback" not in html and "URLconf" not in html  # not Django's debug page


def test_another_users_detection_is_the_same_404(client, other_user, user):
    detection = DetectionFactory(owner=user, original_name="owners-secret.jpg")
    client.force_login(other_user)
    response = client.get(reverse("detection:detail", args=[detection.id]))
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in _html(response)
    assert "owners-secret" not in _html(response)


def test_unknown_url_is_the_sites_404_without_resolver_details(client):
    response = client.get("/no/such/page/")
    html = _html(response)
    assert response.status_code == 404
    assert LAYOUT in html and "<h1>Page not found</h1>" in html
    assert "Resolver404" not in html and "tried" not in html
    assert "Back to the start page" in html  # signed out


def test_unknown_api_url_stays_json(client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_refused_csrf_check_is_a_page_in_the_layout(user):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    detection = DetectionFactory(owner=user)
    response = csrf_client.post(reverse("detection:delete", args=[detection.id]))
    html = _html(response)
    assert response.status_code == 403
    assert LAYOUT in html and "<h1>The form could not be sent</h1>" in html
    assert "reload the page" in html
    assert "CSRF cookie not set" not in html  # the technical reason only in development mode


def test_refused_csrf_check_names_the_reason_in_development_mode(settings, user):
    settings.DEBUG = True
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post(reverse("account_login"), {"login": "a", "password": "b"})
    assert response.status_code == 403
    assert "Reason (shown in development mode only): CSRF cookie not set." in _html(response)


def test_permission_denied_is_the_sites_403_page(signed_in, monkeypatch):
    def refuse(**kwargs):
        raise PermissionDenied("internal reason")

    monkeypatch.setattr("detection.selectors.detection_list", refuse)
    response = signed_in.get(reverse("detection:history"))
    html = _html(response)
    assert response.status_code == 403
    assert LAYOUT in html and "<h1>Not allowed</h1>" in html
    assert "internal reason" not in html


def test_bad_request_is_the_sites_400_page(signed_in, monkeypatch):
    def suspicious(**kwargs):
        raise SuspiciousOperation("details for the log only")

    monkeypatch.setattr("detection.selectors.detection_list", suspicious)
    response = signed_in.get(reverse("detection:history"))
    html = _html(response)
    assert response.status_code == 400
    assert LAYOUT in html and "<h1>Bad request</h1>" in html
    assert "details for the log only" not in html


def _crash(monkeypatch) -> None:
    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("detection.selectors.detection_list", boom)


def test_a_crashing_view_is_the_sites_500_page(signed_in, monkeypatch):
    _crash(monkeypatch)
    signed_in.raise_request_exception = False
    response = signed_in.get(reverse("detection:history"))
    html = _html(response)
    assert response.status_code == 500
    assert LAYOUT in html and STYLESHEET in html
    assert "<h1>Something went wrong on our side</h1>" in html
    assert "Sign out" in html  # the full layout, with the signed-in navigation
    assert "secret internals" not in html


def broken_context_processor(request):
    raise RuntimeError("a context processor that fails")


def test_500_page_renders_when_a_context_processor_fails(signed_in, monkeypatch, settings):
    _crash(monkeypatch)
    templates = [dict(settings.TEMPLATES[0])]
    templates[0]["OPTIONS"] = {
        **templates[0]["OPTIONS"],
        "context_processors": [
            *templates[0]["OPTIONS"]["context_processors"],
            f"{__name__}.broken_context_processor",
        ],
    }
    settings.TEMPLATES = templates
    signed_in.raise_request_exception = False
    response = signed_in.get(reverse("detection:history"))
    html = _html(response)
    assert response.status_code == 500
    # The same page and layout, without what the request would have added.
    assert LAYOUT in html and STYLESHEET in html
    assert "<h1>Something went wrong on our side</h1>" in html
    assert "Deepfake Detector" in html  # the site's name, though its context processor never ran


def test_500_page_renders_when_the_database_is_down(client, monkeypatch):
    def database_down(request):
        raise OperationalError("could not connect to server")

    # Every look at request.user (the view's, then the layout's) needs the database.
    monkeypatch.setattr("django.contrib.auth.get_user", database_down)
    client.raise_request_exception = False
    response = client.get(reverse("home"))
    html = _html(response)
    assert response.status_code == 500
    assert LAYOUT in html and "<h1>Something went wrong on our side</h1>" in html
    assert "could not connect" not in html


def test_500_falls_back_to_fixed_html_when_no_template_renders(signed_in, monkeypatch):
    _crash(monkeypatch)

    def no_templates(*args, **kwargs):
        raise RuntimeError("the template engine is broken")

    monkeypatch.setattr("deepfake_site.errors.render", no_templates)
    monkeypatch.setattr("deepfake_site.errors.loader.render_to_string", no_templates)
    signed_in.raise_request_exception = False
    response = signed_in.get(reverse("detection:history"))
    assert response.status_code == 500
    assert "<h1>Something went wrong on our side</h1>" in _html(response)
    assert "Deepfake Detector" in _html(response)


def test_a_crash_under_api_is_json(client, user, monkeypatch):
    _crash(monkeypatch)
    client.force_login(user)
    client.raise_request_exception = False
    response = client.get(reverse("api:detection-list"))
    assert response.status_code == 500
    assert response.json() == {
        "detail": "Server error: it was logged. Try again later.",
        "code": "server_error",
        "errors": [],
    }
