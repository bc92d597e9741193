"""Saving a private check's verdict (never the image): services.detection_private_save and
POST /api/v1/private-checks/, and what the detections endpoints do with such a row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.services import api_token_create
from detection import services
from detection.models import Detection, DetectionShare
from detection.tests.factories import DetectionFactory
from detection.tests.private_checks import (
    WEB_VERSION,
    private_detection,
    web_manifest_write,
)
from detection.web_model import web_model_get

pytestmark = pytest.mark.django_db

URL = "/api/v1/private-checks/"
EXPORTED_MODEL_DIR = Path(django_settings.BASE_DIR) / "static" / "private-check" / "model"


@pytest.fixture(autouse=True)
def web_model_dir(settings, tmp_path):
    """The browser model's manifest, written by the test (not the exported one)."""
    folder = tmp_path / "web-model"
    web_manifest_write(folder)
    settings.DETECTION_WEB_MODEL_DIR = str(folder)
    return folder


@pytest.fixture
def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='t')[1]}")
    return client


def _body(**overrides) -> dict:
    body = {
        "model_version": WEB_VERSION,
        "width": 200,
        "height": 100,
        "inference_ms": 312.5,
        "faces": [
            {"box": [10, 10, 40, 40], "fake_probability": 0.2, "detector_confidence": 0.99},
            {"box": [60, 10, 30, 30], "fake_probability": 0.83, "detector_confidence": 0.95},
        ],
    }
    body.update(overrides)
    return body


def _post(client, body) -> object:
    return client.post(URL, json.dumps(body), content_type="application/json")


# --- the service ----------------------------------------------------------------------------


def test_service_stores_a_done_private_row_without_an_image(user):
    detection = private_detection(owner=user)
    assert detection.kind == Detection.Kind.PRIVATE
    assert detection.status == Detection.Status.DONE
    assert not detection.image
    assert (detection.sha256, detection.format, detection.byte_size) == ("", "", 0)
    assert (detection.width, detection.height) == (200, 100)
    assert detection.thumbnail is None and detection.phash is None
    assert detection.model_name == "web-model" and detection.model_version == WEB_VERSION
    assert (detection.threshold, detection.uncertain_low, detection.uncertain_high) == (
        0.5,
        0.4,
        0.6,
    )
    assert detection.inference_ms == 123.4
    assert detection.label == "fake" and detection.fake_probability == 0.83
    # Faces numbered largest first; the most suspicious one decides.
    faces = list(detection.faces.all())
    assert [(f.index, f.box, f.label) for f in faces] == [
        (1, [10, 10, 40, 40], "real"),
        (2, [60, 10, 30, 30], "fake"),
    ]
    assert detection.deciding_face == 2 and detection.face_box == [60, 10, 30, 30]
    assert faces[0].detector_confidence == 0.99


def test_service_numbers_faces_largest_first_whatever_order_they_come_in(user):
    detection = private_detection(
        owner=user,
        faces=[
            {"box": [0, 0, 20, 20], "fake_probability": 0.9},
            {"box": [50, 0, 60, 60], "fake_probability": 0.1},
        ],
    )
    assert [f.box for f in detection.faces.all()] == [[50, 0, 60, 60], [0, 0, 20, 20]]
    assert detection.deciding_face == 2


@pytest.mark.parametrize(
    ("p", "label"),
    [
        (0.0, "real"),
        (0.39, "real"),
        (0.4, "uncertain"),  # the band's ends are in it, as in ml.calibration.label_for
        (0.5, "uncertain"),
        (0.6, "uncertain"),
        (0.61, "fake"),
        (1.0, "fake"),
    ],
)
def test_labels_follow_the_manifests_rule(user, p, label):
    detection = private_detection(
        owner=user, faces=[{"box": [0, 0, 50, 50], "fake_probability": p}]
    )
    assert detection.label == label
    assert detection.faces.get().label == label


def test_a_threshold_outside_the_band_is_applied_as_ml_applies_it(user, web_model_dir):
    # label_for: uncertain inside the band, else fake only at or above the threshold.
    web_manifest_write(web_model_dir, threshold=0.7)
    detection = private_detection(
        owner=user, faces=[{"box": [0, 0, 50, 50], "fake_probability": 0.65}]
    )
    assert detection.label == "real"


def test_no_face_is_a_no_face_verdict_without_probability(user):
    detection = private_detection(owner=user, faces=[])
    assert detection.label == Detection.Label.NO_FACE
    assert detection.fake_probability is None
    assert detection.deciding_face is None and detection.face_box is None
    assert detection.faces.count() == 0


def test_service_refuses_another_model_version(user):
    with pytest.raises(ValidationError) as exc:
        private_detection(owner=user, model_version="web-model-older")
    assert exc.value.code == "stale_model"
    assert "reload the page" in exc.value.messages[0]
    assert not Detection.objects.exists()


def test_service_refuses_when_no_browser_model_is_installed(user, settings, tmp_path):
    settings.DETECTION_WEB_MODEL_DIR = str(tmp_path / "nothing-here")
    with pytest.raises(ValidationError) as exc:
        private_detection(owner=user)
    assert exc.value.code == "model_unavailable"


def test_a_new_export_is_read_without_a_restart(web_model_dir):
    assert web_model_get().version == WEB_VERSION
    web_manifest_write(web_model_dir, version="web-model-newer-version")
    assert web_model_get().version == "web-model-newer-version"


def test_the_exported_manifest_is_readable_when_installed(settings):
    # The committed export (python -m ml export-web), when this tree has one.
    settings.DETECTION_WEB_MODEL_DIR = str(EXPORTED_MODEL_DIR)
    if not (EXPORTED_MODEL_DIR / "manifest.json").is_file():
        pytest.skip("no browser model exported in this tree")
    model = web_model_get()
    assert model is not None
    assert model.uncertain_low <= model.uncertain_high


# --- the API --------------------------------------------------------------------------------


def test_api_saves_and_answers_201_with_the_detection_and_its_page(token_client, user):
    response = _post(token_client, _body())
    assert response.status_code == 201, response.content
    data = response.json()
    detection = Detection.objects.get()
    assert detection.owner == user
    assert data["id"] == detection.id
    assert data["kind"] == "private"
    # The same body as GET gives: `url` the record, `page_url` the result page.
    assert data["page_url"].endswith(reverse("detection:detail", args=[detection.id]))
    assert data["url"].endswith(reverse("api:detection-detail", args=[detection.id]))
    assert data["status"] == "done" and data["label"] == "fake"
    assert data["fake_probability"] == 0.83
    assert data["image_url"] is None and data["thumbnail_url"] is None
    assert [f["heatmap_url"] for f in data["faces"]] == [None, None]
    assert [f["label"] for f in data["faces"]] == ["real", "fake"]
    assert data["model_version"] == WEB_VERSION
    assert data["inference_ms"] == 312.5


def test_a_box_may_pass_the_edge_by_the_one_pixel_of_rounding(token_client):
    # ml.faces rounds a clipped box's corner and size separately: x + w can be width + 1.
    body = _body(faces=[{"box": [101, 0, 100, 100], "fake_probability": 0.1}])
    assert _post(token_client, body).status_code == 201


def test_client_labels_are_ignored(token_client):
    body = _body(label="real", fake_probability=0.01)
    for face in body["faces"]:
        face["label"] = "real"
    response = _post(token_client, body)
    assert response.status_code == 201
    assert response.json()["label"] == "fake"
    assert Detection.objects.get().faces.get(index=2).label == "fake"


def test_api_stale_model_version_is_409(token_client):
    response = _post(token_client, _body(model_version="web-model-20250101-000000000000"))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "stale_model"
    assert WEB_VERSION in body["detail"] and "reload the page" in body["detail"]
    assert not Detection.objects.exists()


def test_api_without_a_browser_model_is_503(token_client, settings, tmp_path):
    settings.DETECTION_WEB_MODEL_DIR = str(tmp_path / "none")
    response = _post(token_client, _body())
    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"


def _face(**overrides) -> dict:
    return {"box": [0, 0, 20, 20], "fake_probability": 0.5, **overrides}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"faces": {"box": [0, 0, 1, 1]}}, "faces"),
        ({"faces": "none"}, "faces"),
        ({"faces": [_face(box=[0, 0, 20])]}, "faces[0].box"),
        ({"faces": [_face(box=[0, 0, 20, 20, 1])]}, "faces[0].box"),
        ({"faces": [_face(), _face(box=[-1, 0, 20, 20])]}, "faces[1].box[0]"),
        ({"faces": [_face(box=[0, 0, 0, 20])]}, "faces[0].box"),
        ({"faces": [_face(box=[190, 0, 20, 20])]}, "faces[0].box"),  # past the right edge
        ({"faces": [_face(box=[0, 90, 20, 12])]}, "faces[0].box"),  # 2 px past the bottom
        ({"faces": [_face(box=[0.5, 0, 20, 20])]}, "faces[0].box[0]"),
        ({"faces": [_face(fake_probability=1.5)]}, "faces[0].fake_probability"),
        ({"faces": [_face(fake_probability=-0.1)]}, "faces[0].fake_probability"),
        ({"faces": [_face(fake_probability="NaN")]}, "faces[0].fake_probability"),
        ({"faces": [_face(fake_probability="Infinity")]}, "faces[0].fake_probability"),
        ({"faces": [_face(fake_probability=None)]}, "faces[0].fake_probability"),
        ({"faces": [_face(detector_confidence=2)]}, "faces[0].detector_confidence"),
        ({"faces": [_face()] * 11}, "faces"),
        ({"width": -5}, "width"),
        ({"width": 0}, "width"),
        ({"height": "tall"}, "height"),
        ({"width": 10_000, "height": 10_000}, "width"),  # 100 Mpx, over DETECTION_MAX_PIXELS
        ({"inference_ms": -1}, "inference_ms"),
        ({"inference_ms": "NaN"}, "inference_ms"),
        ({"model_version": ""}, "model_version"),
        ({"model_version": None}, "model_version"),
    ],
)
def test_api_malformed_input_is_400_with_field_errors(token_client, overrides, field):
    response = _post(token_client, _body(**overrides))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in [item["field"] for item in body["errors"]], body
    assert not Detection.objects.exists()


@pytest.mark.parametrize("missing", ["model_version", "width", "height", "inference_ms", "faces"])
def test_api_missing_fields_are_400(token_client, missing):
    body = _body()
    del body[missing]
    response = _post(token_client, body)
    assert response.status_code == 400
    assert missing in [item["field"] for item in response.json()["errors"]]


def test_api_a_json_nan_literal_is_400(token_client):
    raw = json.dumps(_body()).replace("0.83", "NaN")
    response = token_client.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert not Detection.objects.exists()


def test_api_takes_json_only(token_client):
    response = token_client.post(URL, {"model_version": WEB_VERSION}, format="multipart")
    assert response.status_code == 415


def test_api_needs_authentication():
    response = _post(APIClient(), _body())
    assert response.status_code in (401, 403)
    assert not Detection.objects.exists()


def test_session_save_needs_the_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    refused = _post(client, _body())
    assert refused.status_code == 403
    assert not Detection.objects.exists()
    client.get(reverse("accounts:profile"))  # a page the site rendered sets the cookie
    csrf = client.cookies["csrftoken"].value
    accepted = client.post(
        URL, json.dumps(_body()), content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201, accepted.content
    assert Detection.objects.get().owner == user


def test_saves_are_counted_against_the_upload_budget(token_client, monkeypatch, settings):
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "uploads": "2/min", "uploads_daily": "1000/day"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    cache.clear()
    codes = [_post(token_client, _body()).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert int(_post(token_client, _body())["Retry-After"]) > 0
    assert Detection.objects.count() == 2


def test_get_is_not_an_operation_here(token_client):
    assert token_client.get(URL).status_code == 405


# --- the detections endpoints with a private row ----------------------------------------------


@pytest.fixture
def private_row(user) -> Detection:
    return private_detection(owner=user)


def test_api_detail_list_and_filter_show_a_private_row(token_client, user, private_row):
    DetectionFactory(owner=user, done=True)
    detail = token_client.get(reverse("api:detection-detail", args=[private_row.id])).json()
    assert detail["kind"] == "private"
    assert detail["image_url"] is None and detail["thumbnail_url"] is None
    assert detail["video_url"] is None and detail["heatmap_status"] == ""
    assert detail["original_name"] == "" and detail["sha256"] == ""
    listed = token_client.get("/api/v1/detections/").json()
    assert {row["kind"] for row in listed["results"]} == {"private", "image"}
    only = token_client.get("/api/v1/detections/?kind=private").json()
    assert [row["id"] for row in only["results"]] == [private_row.id]
    images = token_client.get("/api/v1/detections/?kind=image").json()
    assert private_row.id not in [row["id"] for row in images["results"]]


def test_api_delete_of_a_private_row(token_client, private_row):
    url = reverse("api:detection-detail", args=[private_row.id])
    assert token_client.delete(url).status_code == 204
    assert not Detection.objects.exists()


def test_another_users_private_row_is_404(other_user, private_row):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {api_token_create(user=other_user, name='t')[1]}"
    )
    detail = reverse("api:detection-detail", args=[private_row.id])
    assert client.get(detail).status_code == 404
    assert client.delete(detail).status_code == 404
    assert Detection.objects.filter(id=private_row.id).exists()
    listed = client.get("/api/v1/detections/?kind=private").json()
    assert listed["count"] == 0


@pytest.mark.parametrize(
    ("method", "name", "more", "status"),
    [
        ("get", "api:detection-image", (), 404),
        ("get", "api:detection-thumbnail", (), 404),
        ("get", "api:detection-face-heatmap", (1,), 404),
        ("get", "api:detection-video", (), 404),
        ("post", "api:detection-share", (), 409),
        ("post", "api:detection-rerun", (), 409),
        ("post", "api:detection-recheck", (), 409),
    ],
)
def test_api_endpoints_that_need_the_image_refuse_a_private_row(
    token_client, private_row, method, name, more, status
):
    response = getattr(token_client, method)(reverse(name, args=[private_row.id, *more]))
    assert response.status_code == status, response.content
    if status == 409:
        assert response.json()["code"] in ("private_check", "not_rerunnable")
    assert not DetectionShare.objects.exists()
    assert Detection.objects.count() == 1  # no re-check was made


def test_api_feedback_on_a_private_row_is_409(token_client, private_row):
    response = token_client.post(
        reverse("api:detection-feedback", args=[private_row.id]), {"truth": "real"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "private_check"


def test_private_rows_are_never_repeats_or_similar_images_of_uploads(user, private_row):
    # An upload looks for earlier checks of the same bytes or a similar picture: a private row
    # has neither (no sha256, no perceptual hash), so it is never matched.
    assert services._repeats_find(user=user, sha256s=[""]) == {}
    assert private_row.phash is None


def test_the_database_refuses_a_private_row_with_a_file(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        DetectionFactory(owner=user, kind=Detection.Kind.PRIVATE)


def test_the_private_check_page_gives_a_signed_in_browser_what_saving_needs(user):
    # The page's Save button posts to this API with the CSRF token of the page's own cookie.
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(reverse("detection:private-check"))
    assert f'data-save-url="{URL}"' in page.content.decode()
    csrf = client.cookies["csrftoken"].value
    saved = client.post(
        URL, json.dumps(_body()), content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert saved.status_code == 201
