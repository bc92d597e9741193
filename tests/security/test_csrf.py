"""CSRF: every session-authenticated POST/DELETE is refused (403) without the token and changes
nothing; with the token it works (so the 403 is the CSRF check, not something else); API calls
authenticated with a token need no CSRF token."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.tests.factories import ApiTokenFactory
from detection.models import Detection
from detection.tests import hostile
from detection.tests.factories import DetectionFactory

from .conftest import API_LIST

pytestmark = pytest.mark.django_db


@pytest.fixture
def state(user):
    return {
        "detection": DetectionFactory(owner=user, done=True),
        "token": ApiTokenFactory(owner=user),
    }


def _requests(state, password):
    d, t = state["detection"].id, state["token"].id
    image = lambda: hostile.upload(hostile.jpeg(), "face.jpg")  # noqa: E731
    return {
        "upload form": ("post", reverse("detection:upload"), lambda: {"images": [image()]}),
        "delete": ("post", reverse("detection:delete", args=[d]), dict),
        "delete many": (
            "post",
            reverse("detection:delete-many"),
            lambda: {"ids": [d], "confirm": "yes"},
        ),
        "token create": ("post", reverse("accounts:token-create"), lambda: {"name": "new"}),
        "token revoke": ("post", reverse("accounts:token-revoke", args=[t]), dict),
        "account delete": ("post", reverse("accounts:delete"), lambda: {"password": password}),
        "api upload (session)": ("post", API_LIST, lambda: {"image": [image()]}),
        "api delete (session)": ("delete", f"{API_LIST}{d}/", dict),
    }


def _snapshot(user):
    return (
        Detection.objects.count(),
        ApiToken.objects.filter(owner=user, revoked_at__isnull=True).count(),
        type(user).objects.filter(id=user.id).exists(),
    )


NAMES = [
    "upload form",
    "delete",
    "delete many",
    "token create",
    "token revoke",
    "account delete",
    "api upload (session)",
    "api delete (session)",
]


@pytest.mark.parametrize("name", NAMES)
def test_session_writes_need_the_csrf_token(user, password, state, name):
    method, url, data = _requests(state, password)[name]
    client = (APIClient if name.startswith("api") else Client)(enforce_csrf_checks=True)
    client.force_login(user)
    before = _snapshot(user)

    refused = getattr(client, method)(
        url, data(), **({"format": "multipart"} if name.startswith("api") else {})
    )
    assert refused.status_code == 403
    assert _snapshot(user) == before

    # The same request with the token from a page the site rendered goes through.
    client.get(reverse("accounts:profile"))
    csrf = client.cookies["csrftoken"].value
    body = data()
    if name.startswith("api"):
        accepted = getattr(client, method)(url, body, format="multipart", HTTP_X_CSRFTOKEN=csrf)
    else:
        accepted = getattr(client, method)(url, {**body, "csrfmiddlewaretoken": csrf})
    assert accepted.status_code in (200, 202, 204, 302), accepted.content[:300]
    assert _snapshot(user) != before


def test_token_authenticated_api_needs_no_csrf(user, token_client, state):
    client = token_client
    client.handler.enforce_csrf_checks = True
    response = client.post(
        API_LIST, {"image": hostile.upload(hostile.jpeg(), "a.jpg")}, format="multipart"
    )
    assert response.status_code == 202
    assert client.delete(f"{API_LIST}{state['detection'].id}/").status_code == 204
