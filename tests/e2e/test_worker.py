"""Upload → real Celery worker (real Redis, real model) → verdict in the database."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import api_token_create
from detection.models import Detection
from detection.tests.helpers import upload
from tests.face_images import face_image_bytes

pytestmark = [pytest.mark.slow, pytest.mark.services]


def _wait_final(fetch, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = fetch()
        if data["status"] in ("done", "failed"):
            return data
        assert time.monotonic() < deadline, f"still {data['status']} after {timeout}s"
        time.sleep(0.5)


VERDICTS = ("real", "fake", "uncertain")


def _assert_verdict(data: dict) -> None:
    """A verdict on the one face in the upload, as the API gives it, consistent with it."""
    assert data["label"] in VERDICTS, data
    assert len(data["faces"]) == 1, data
    assert 0.0 <= data["fake_probability"] <= 1.0
    decided = [f for f in data["faces"] if f["index"] == data["deciding_face"]]
    assert len(decided) == 1, data
    assert decided[0]["fake_probability"] == data["fake_probability"]
    assert decided[0]["box"] == data["face_box"]


def _api_client(user, name: str) -> APIClient:
    """An API client authenticated with a new token of `user`."""
    _, key = api_token_create(user=user, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_api_upload_with_token_gets_a_verdict(e2e, user):
    client = _api_client(user, "e2e")

    response = client.post(
        "/api/v1/detections/",
        {"image": [upload("one.jpg", face_image_bytes()),
                   upload("two.png", face_image_bytes("PNG"), "image/png")]},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    items = response.json()["detections"]
    assert len(items) == 2

    for item in items:
        data = _wait_final(lambda url=item["url"]: client.get(url).json())
        assert data["status"] == "done", data
        _assert_verdict(data)
        assert data["model_version"] == e2e["model_version"]
        assert data["attempts"] == 1
        row = Detection.objects.get(id=item["id"])
        assert row.status == Detection.Status.DONE
        assert row.model_version == e2e["model_version"]
        assert row.started_at <= row.finished_at


def test_form_upload_gets_a_verdict(e2e, client, user):
    client.force_login(user)
    response = client.post(reverse("detection:upload"),
                           {"images": [upload("face.jpg", face_image_bytes())]})
    assert response.status_code == 302
    detection = Detection.objects.get(owner=user)
    assert response["Location"] == reverse("detection:detail", args=[detection.id])

    data = _wait_final(
        lambda: client.get(reverse("detection:status", args=[detection.id])).json()
    )
    assert data["status"] == "done"
    detection.refresh_from_db()
    assert detection.label in VERDICTS
    assert detection.faces.count() == 1
    assert detection.model_version == e2e["model_version"]
    page = client.get(response["Location"]).content.decode()
    assert detection.model_version in page


def test_one_request_waits_for_the_verdict(e2e, user):
    # The worker's announcement (Redis pub/sub) ends the wait: one GET, no polling.
    client = _api_client(user, "e2e-wait")
    response = client.post(
        "/api/v1/detections/", {"image": upload("face.jpg", face_image_bytes())},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    [item] = response.json()["detections"]
    data = client.get(f"{item['url']}?wait=60").json()
    assert data["status"] == "done", data
    _assert_verdict(data)


def test_an_upload_can_wait_for_its_verdicts(e2e, user):
    # Stored, queued on commit, then waited for: the verdicts come back in the upload's answer.
    client = _api_client(user, "e2e-upload-wait")
    response = client.post(
        "/api/v1/detections/?wait=60",
        # Two different files: the same bytes twice would be analysed once.
        {
            "image": [
                upload("a.jpg", face_image_bytes()),
                upload("b.jpg", face_image_bytes(size=(170, 130))),
            ]
        },
        format="multipart",
    )
    assert response.status_code == 200, response.content
    items = response.json()["detections"]
    assert [item["status"] for item in items] == ["done", "done"], items
    for item in items:
        _assert_verdict(item)
