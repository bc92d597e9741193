"""Heatmaps on the web side: the PNG view and API action (owner only), the API fields and schema,
the result page's toggle and notes, and the status poll that waits for them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from detection.models import Detection
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import heatmap_png_bytes

pytestmark = pytest.mark.django_db

Heatmap = Detection.HeatmapStatus
PNG = heatmap_png_bytes(6)
CAPTION = "A heatmap shows where the network looked, not proof."


def _with_heatmaps(**fields) -> Detection:
    """A done detection of the factory's 64 x 48 image with two faces, both explained."""
    return DetectionFactory(
        done=True,
        fake_probability=0.83,
        deciding_face=2,
        heatmap_status=Heatmap.DONE,
        faces=[
            {"box": [0, 0, 20, 20], "fake_probability": 0.2, "label": "real",
             "heatmap": PNG, "heatmap_box": [0, 0, 32, 32]},
            {"box": [40, 10, 10, 10], "fake_probability": 0.83, "label": "fake",
             "heatmap": b"\x89PNG second", "heatmap_box": [32, 8, 24, 24]},
        ],
        **fields,
    )  # fmt: skip


def _page_url(detection: Detection, index: int) -> str:
    return reverse("detection:face-heatmap", args=[detection.id, index])


def _api_url(detection: Detection, index: int) -> str:
    return f"/api/v1/detections/{detection.id}/faces/{index}/heatmap/"


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


# --- the PNG, on the site and through the API -----------------------------------------------


def _assert_png(response, body: bytes) -> None:
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == body
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert "sandbox" in response["Content-Security-Policy"]


def test_the_owner_gets_each_faces_heatmap(signed_in, user):
    detection = _with_heatmaps(owner=user)
    assert _page_url(detection, 1) == f"/detections/{detection.id}/faces/1/heatmap.png"
    _assert_png(signed_in.get(_page_url(detection, 1)), PNG)
    _assert_png(signed_in.get(_page_url(detection, 2)), b"\x89PNG second")


def test_another_users_heatmap_is_a_404(client, other_user, user):
    detection = _with_heatmaps(owner=user)
    client.force_login(other_user)
    assert client.get(_page_url(detection, 1)).status_code == 404


def test_signed_out_is_sent_to_sign_in(client, user):
    detection = _with_heatmaps(owner=user)
    response = client.get(_page_url(detection, 1))
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_missing_heatmap_is_a_404(signed_in, user):
    detection = _with_heatmaps(owner=user)
    assert signed_in.get(_page_url(detection, 3)).status_code == 404  # no such face
    assert signed_in.get(_page_url(detection, 2**40)).status_code == 404  # out of any range
    pending = DetectionFactory(owner=user, done=True, heatmap_status=Heatmap.PENDING)
    assert signed_in.get(_page_url(pending, 1)).status_code == 404  # not made yet
    assert signed_in.get(f"/detections/{detection.id + 999}/faces/1/heatmap.png").status_code == 404


def test_api_action_is_owner_only(token_client, user, other_user, api_client):
    detection = _with_heatmaps(owner=user)
    _assert_png(token_client.get(_api_url(detection, 1)), PNG)
    missing = token_client.get(_api_url(detection, 3))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api_client.get(_api_url(detection, 1)).status_code == 401
    api_client.force_authenticate(other_user)
    assert api_client.get(_api_url(detection, 1)).status_code == 404


# --- API fields and schema ------------------------------------------------------------------


def test_api_fields(token_client, user):
    detection = _with_heatmaps(owner=user)
    data = token_client.get(f"/api/v1/detections/{detection.id}/").json()
    assert data["heatmap_status"] == "done"
    first, second = data["faces"]
    assert first["heatmap_url"] == f"http://testserver{_api_url(detection, 1)}"
    assert first["heatmap_box"] == [0, 0, 32, 32]
    assert second["heatmap_box"] == [32, 8, 24, 24]
    # The URL it gives is the PNG.
    _assert_png(token_client.get(first["heatmap_url"]), PNG)


def test_api_fields_without_heatmaps(token_client, user):
    pending = DetectionFactory(owner=user, done=True, heatmap_status=Heatmap.PENDING)
    no_face = DetectionFactory(owner=user, no_face=True, heatmap_status=Heatmap.NOT_APPLICABLE)
    queued = DetectionFactory(owner=user)
    rows = {d["id"]: d for d in token_client.get("/api/v1/detections/").json()["results"]}
    assert rows[pending.id]["heatmap_status"] == "pending"
    assert rows[pending.id]["faces"][0]["heatmap_url"] is None
    assert rows[pending.id]["faces"][0]["heatmap_box"] is None
    assert rows[no_face.id]["heatmap_status"] == "none"
    assert rows[queued.id]["heatmap_status"] == ""


def test_api_says_failed_for_heatmaps_a_lost_worker_left_pending(token_client, user, settings):
    started = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    stale = DetectionFactory(
        owner=user, done=True, heatmap_status=Heatmap.PENDING, started_at=started
    )
    assert stale.heatmap_state == Heatmap.FAILED and not stale.heatmap_waiting
    data = token_client.get(f"/api/v1/detections/{stale.id}/").json()
    assert data["heatmap_status"] == "failed"


def test_schema_documents_the_heatmaps():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(public=True)
    components = schema["components"]["schemas"]
    face = components["DetectionFace"]["properties"]
    assert face["heatmap_url"]["format"] == "uri" and face["heatmap_url"]["nullable"] is True
    assert "not proof" in face["heatmap_url"]["description"]
    assert face["heatmap_box"]["nullable"] is True
    status = components["Detection"]["properties"]["heatmap_status"]
    assert "pending" in status["description"]
    operation = schema["paths"]["/api/v1/detections/{id}/faces/{index}/heatmap/"]["get"]
    assert operation["responses"]["200"]["content"] == {
        "image/png": {"schema": {"type": "string", "format": "binary"}}
    }
    assert "404" in operation["responses"]
    assert {p["name"] for p in operation["parameters"]} == {"id", "index"}


# --- the result page ------------------------------------------------------------------------


def _page(client, detection: Detection) -> str:
    response = client.get(reverse("detection:detail", args=[detection.id]))
    assert response.status_code == 200
    return response.content.decode()


def test_page_lays_each_heatmap_over_its_region_behind_a_toggle(signed_in, user):
    detection = _with_heatmaps(owner=user)
    html = _page(signed_in, detection)
    assert 'id="show-heatmap"' in html and "Show heatmap" in html
    assert 'type="checkbox"' in html and "data-heatmap-toggle" in html
    assert CAPTION in html
    assert "js/heatmap-toggle.js" in html
    # [0, 0, 32, 32] and [32, 8, 24, 24] on a 64 x 48 image, as percentages.
    images = re.findall(r"<image [^>]*>", html)
    assert len(images) == 2
    assert f'href="{_page_url(detection, 1)}"' in images[0]
    assert 'x="0.0%" y="0.0%" width="50.0%" height="66.667%"' in images[0]
    assert 'x="50.0%" y="16.667%" width="37.5%" height="50.0%"' in images[1]
    # Hidden by default: the overlay's CSS class, no style attribute (the CSP allows none).
    assert 'class="heatmap-overlay"' in html and "style=" not in html.split("<main")[-1]
    assert "checked" not in re.search(r'<input [^>]*id="show-heatmap"[^>]*>', html).group(0)
    # Nothing left to wait for: the page does not poll.
    assert 'data-poll-url=""' in html


def test_page_while_heatmaps_are_made_says_so_and_keeps_polling(signed_in, user):
    detection = DetectionFactory(owner=user, done=True, heatmap_status=Heatmap.PENDING)
    html = _page(signed_in, detection)
    assert "Making the heatmap" in html
    assert "Show heatmap" not in html and "<image " not in html
    assert f'data-poll-url="{reverse("detection:status", args=[detection.id])}"' in html


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ("", "No heatmap was made for this verdict"),
        (Heatmap.FAILED, "No heatmap: it could not be made for this verdict."),
    ],
)
def test_page_without_heatmaps_says_why(signed_in, user, state, says):
    detection = DetectionFactory(owner=user, done=True, heatmap_status=state)
    html = _page(signed_in, detection)
    assert says in html
    assert "Show heatmap" not in html and "Making the heatmap" not in html


def test_page_without_a_face_says_nothing_about_heatmaps(signed_in, user):
    detection = DetectionFactory(owner=user, no_face=True, heatmap_status=Heatmap.NOT_APPLICABLE)
    html = _page(signed_in, detection)
    assert "heatmap" not in html.split('class="result-grid"')[1].split('class="verdict-panel"')[0]


# --- the status poll ------------------------------------------------------------------------


def _status(client, detection: Detection) -> dict:
    response = client.get(reverse("detection:status", args=[detection.id]))
    assert response.status_code == 200
    return response.json()


def test_status_is_not_final_until_the_heatmaps_are_made(signed_in, user, settings):
    detection = DetectionFactory(owner=user, done=True, heatmap_status=Heatmap.PENDING)
    data = _status(signed_in, detection)
    assert (data["status"], data["final"]) == ("done", False)
    assert "Making the heatmap" in data["html"]

    Detection.objects.filter(id=detection.id).update(heatmap_status=Heatmap.DONE)
    detection.faces.update(heatmap=PNG, heatmap_box=[0, 0, 48, 48])
    data = _status(signed_in, detection)
    assert data["final"] is True
    assert "Show heatmap" in data["html"] and CAPTION in data["html"]

    # Heatmaps a killed worker left pending do not keep the page polling for ever.
    started = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    Detection.objects.filter(id=detection.id).update(
        heatmap_status=Heatmap.PENDING, started_at=started
    )
    data = _status(signed_in, detection)
    assert data["final"] is True
    assert "could not be made" in data["html"]


def test_status_of_a_running_detection_is_not_final(signed_in, user):
    detection = DetectionFactory(owner=user, status=Detection.Status.RUNNING)
    assert _status(signed_in, detection)["final"] is False
    failed = DetectionFactory(owner=user, status=Detection.Status.FAILED, error="boom")
    assert _status(signed_in, failed)["final"] is True
