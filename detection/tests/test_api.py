from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from detection.models import Detection
from detection.tests.factories import DetectionFactory, detection_with_three_faces
from detection.tests.helpers import image_bytes, upload

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/detections/"


def test_upload_one_is_202_with_the_new_detection(
    token_client, user, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = token_client.post(LIST_URL, {"image": upload("me.jpg")}, format="multipart")
    assert response.status_code == 202, response.content
    [item] = response.json()["detections"]
    detection = Detection.objects.get()
    assert item["id"] == detection.id
    assert item["status"] == "pending"
    assert item["url"] == f"http://testserver{LIST_URL}{detection.id}/"
    assert detection.owner == user
    assert len(callbacks) == 1 and enqueued == [detection.id]


def test_upload_several(token_client, enqueued, django_capture_on_commit_callbacks):
    files = [
        upload("a.jpg"),
        upload("b.png", image_bytes("PNG"), "image/png"),
        upload("c.jpg", image_bytes(color=(10, 20, 30))),  # not a.jpg again: analysed once
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client.post(LIST_URL, {"image": files}, format="multipart")
    assert response.status_code == 202
    assert len(response.json()["detections"]) == 3
    assert len(enqueued) == 3
    assert Detection.objects.values("batch").distinct().count() == 1


def test_refused_file_is_400_naming_it_and_stores_nothing(token_client, enqueued):
    files = [upload("ok.jpg"), upload("bad.jpg", b"GIF89a nope")]
    response = token_client.post(LIST_URL, {"image": files}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert "bad.jpg" in body["detail"] and "Nothing was stored" in body["detail"]
    _assert_error_shape(body)
    assert body["code"] == "upload_refused"
    assert [e["file"] for e in body["errors"]] == ["bad.jpg"]
    assert body["errors"][0]["field"] == "image"
    assert body["errors"][0]["code"] in ("not_an_image", "unsupported_format")
    assert Detection.objects.count() == 0


def test_oversize_is_413(token_client, settings):
    settings.DETECTION_MAX_UPLOAD_BYTES = 200
    response = token_client.post(LIST_URL, {"image": upload("big.jpg")}, format="multipart")
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "too_large"
    assert Detection.objects.count() == 0


def test_upload_without_image_field_is_400(token_client):
    response = token_client.post(LIST_URL, {"file": upload()}, format="multipart")
    assert response.status_code == 400
    assert "image" in response.json()["detail"]


def test_detail_has_the_full_record(token_client, user):
    detection = DetectionFactory(owner=user, done=True, removed_metadata=["EXIF"])
    data = token_client.get(f"{LIST_URL}{detection.id}/").json()
    for key in ["id", "status", "label", "fake_probability", "model_version", "model_name",
                "error", "image_url", "created_at", "finished_at", "face_box", "width", "height",
                "format", "original_name", "attempts", "queued_at", "started_at",
                "inference_ms", "removed_metadata"]:
        assert key in data, key
    assert data["status"] == "done" and data["label"] == "fake"
    assert data["fake_probability"] == pytest.approx(0.87)
    assert data["face_box"] == [4, 3, 20, 24]
    assert data["removed_metadata"] == ["EXIF"]
    image = token_client.get(data["image_url"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert image["X-Content-Type-Options"] == "nosniff"


def test_list_paginates_and_filters(token_client, user, other_user, settings):
    now = timezone.now()
    old = DetectionFactory(owner=user, created_at=now - dt.timedelta(days=5), original_name="a.jpg")
    fake = DetectionFactory(owner=user, done=True, original_name="Party.JPG")
    real = DetectionFactory(
        owner=user, done=True, label="real", fake_probability=0.05, original_name="b.jpg"
    )
    DetectionFactory(owner=other_user, done=True)

    def ids(**params):
        response = token_client.get(LIST_URL, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    body = token_client.get(LIST_URL).json()
    assert body["count"] == 3 and "next" in body
    assert ids()[-1] == old.id
    assert ids(label="real") == [real.id]
    assert ids(status="pending") == [old.id]
    assert ids(search="party") == [fake.id]
    assert ids(created_before=(now - dt.timedelta(days=1)).date().isoformat()) == [old.id]
    assert old.id not in ids(created_after=now.date().isoformat())
    assert ids(ordering="fake_probability", status="done") == [real.id, fake.id]
    assert ids(ordering="created_at")[0] == old.id


def test_list_page_size_and_next(token_client, user):
    DetectionFactory.create_batch(27, owner=user)
    body = token_client.get(LIST_URL).json()
    assert len(body["results"]) == 25 and body["next"]
    assert len(token_client.get(body["next"]).json()["results"]) == 2


def _assert_error_shape(body: dict) -> None:
    assert set(body) == {"detail", "code", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    for item in body["errors"]:
        assert set(item) == {"code", "message", "field", "file"}, item


def test_bad_filters_are_400_in_the_one_error_shape(token_client):
    response = token_client.get(LIST_URL, {"label": "maybe", "created_after": "soon"})
    assert response.status_code == 400
    body = response.json()
    _assert_error_shape(body)
    assert body["code"] == "invalid"
    assert {e["field"] for e in body["errors"]} == {"label", "created_after"}
    assert "label" in body["detail"]


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda c: APIClient().get(LIST_URL), 401, "not_authenticated"),
        (lambda c: c.get(f"{LIST_URL}999999/"), 404, "not_found"),
        (lambda c: c.get(LIST_URL, {"page": "9"}), 404, "not_found"),
        (lambda c: c.put(f"{LIST_URL}1/"), 405, "method_not_allowed"),
        (lambda c: c.post(LIST_URL, "{}", content_type="application/json"), 415, None),
        (lambda c: c.get("/api/v1/no-such-endpoint/"), 404, "not_found"),
    ],
)
def test_every_refusal_has_the_one_error_shape(token_client, call, status, code):
    response = call(token_client)
    assert response.status_code == status
    body = response.json()
    _assert_error_shape(body)
    if code:
        assert body["code"] == code


def test_delete_removes_row_and_file(token_client, user, django_capture_on_commit_callbacks):
    detection = DetectionFactory(owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client.delete(f"{LIST_URL}{detection.id}/")
    assert response.status_code == 204
    assert not Detection.objects.exists()
    assert not default_storage.exists(detection.image.name)


def test_session_auth_needs_csrf_for_writes(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    detection = DetectionFactory(owner=user)
    assert client.get(f"{LIST_URL}{detection.id}/").status_code == 200
    assert client.delete(f"{LIST_URL}{detection.id}/").status_code == 403
    assert Detection.objects.filter(id=detection.id).exists()


def test_upload_throttle(token_client, settings, enqueued):
    rates = dict(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], uploads="2/min")
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    from rest_framework.throttling import SimpleRateThrottle

    # The upload budget (images) reads the settings on every call; DRF's read throttle reads the
    # rates once at import, so point it at the new ones for this test.
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    cache.clear()  # locmem caches with one LOCATION share their data across tests
    try:
        codes = [
            token_client.post(LIST_URL, {"image": upload()}, format="multipart").status_code
            for _ in range(3)
        ]
        reads = token_client.get(LIST_URL).status_code
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert codes == [202, 202, 429]
    assert reads == 200  # reads have their own budget


def test_read_throttle(token_client):
    from rest_framework.throttling import SimpleRateThrottle

    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**original, "reads": "2/min"}
    cache.clear()  # locmem caches with one LOCATION share their data across tests
    try:
        codes = [token_client.get(LIST_URL).status_code for _ in range(3)]
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert codes == [200, 200, 429]


def test_openapi_schema_validates_without_warnings(tmp_path):
    root = Path(django_settings.BASE_DIR)
    out = tmp_path / "schema.yml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    schema = out.read_text()
    assert "/api/v1/detections/{id}/:" in schema
    assert "format: binary" in schema


def test_schema_and_docs_pages(client, user):
    client.force_login(user)
    assert client.get(reverse("api-schema")).status_code == 200
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    # Swagger UI comes from the sidecar package: served here, no CDN.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content.decode()


def test_too_many_files_is_a_clear_400(token_client, settings):
    settings.DETECTION_MAX_FILES_PER_REQUEST = 3
    files = [upload(f"{i}.jpg") for i in range(4)]
    response = token_client.post(LIST_URL, {"image": files}, format="multipart")
    assert response.status_code == 400
    assert "At most 3 images per upload" in response.json()["detail"]
    assert Detection.objects.count() == 0


def test_file_flood_is_refused_as_json(token_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [upload(f"{i}.jpg") for i in range(3)]
    response = token_client.post(LIST_URL, {"image": files}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_many_files"


# --- faces and "no face" ------------------------------------------------------------------


def test_detail_has_every_face_and_the_deciding_one(token_client, user):
    detection = detection_with_three_faces(owner=user)
    data = token_client.get(f"{LIST_URL}{detection.id}/").json()
    assert data["deciding_face"] == 2
    assert data["face_box"] == [32, 24, 16, 12]
    # no heatmaps on these faces: their own fields are tested in test_heatmaps.py
    for face in data["faces"]:
        assert face.pop("heatmap_url") is None and face.pop("heatmap_box") is None
    assert data["faces"] == [
        {"index": 1, "box": [0, 0, 32, 24], "fake_probability": 0.2, "label": "real",
         "detector_confidence": 0.99},
        {"index": 2, "box": [32, 24, 16, 12], "fake_probability": 0.83, "label": "fake",
         "detector_confidence": 0.98},
        {"index": 3, "box": [48, 0, 8, 8], "fake_probability": 0.5, "label": "uncertain",
         "detector_confidence": 0.98},
    ]  # fmt: skip


def test_no_face_detail_has_no_probability_and_no_faces(token_client, user):
    detection = DetectionFactory(owner=user, no_face=True)
    data = token_client.get(f"{LIST_URL}{detection.id}/").json()
    assert data["status"] == "done" and data["label"] == "no_face"
    assert data["fake_probability"] is None
    assert data["faces"] == [] and data["deciding_face"] is None and data["face_box"] is None
    # The decision rule of the model that looked is still there.
    assert (data["uncertain_low"], data["uncertain_high"]) == (0.4, 0.6)


def test_list_filters_no_face(token_client, user, other_user):
    no_face = DetectionFactory(owner=user, no_face=True)
    DetectionFactory(owner=user, done=True)
    DetectionFactory(owner=other_user, no_face=True)
    response = token_client.get(LIST_URL, {"label": "no_face"})
    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["results"]] == [no_face.id]


def test_list_queries_do_not_grow_with_rows_or_faces(token_client, user):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = token_client.get(LIST_URL)
        assert response.status_code == 200
        return len(captured)

    detection_with_three_faces(owner=user)
    DetectionFactory(owner=user)
    queries()  # the token's first use of the minute is recorded once: not part of the list
    few = queries()
    for _ in range(4):
        detection_with_three_faces(owner=user)
    DetectionFactory(owner=user, no_face=True)
    more = queries()
    assert len(token_client.get(LIST_URL).json()["results"]) == 7
    assert more == few
    # The rows in one query, and all their faces in one more.
    assert few == 4  # token, count, detections, faces


def test_schema_documents_faces_and_no_face():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(public=True)
    components = schema["components"]["schemas"]
    detection = components["Detection"]["properties"]
    assert "no_face" in components["LabelEnum"]["enum"]
    assert detection["fake_probability"]["nullable"] is True
    assert detection["deciding_face"]["nullable"] is True
    assert detection["faces"]["items"] == {"$ref": "#/components/schemas/DetectionFace"}
    face = components["DetectionFace"]["properties"]
    assert set(face) == {
        "index", "box", "fake_probability", "label", "detector_confidence",
        "heatmap_url", "heatmap_box",
    }  # fmt: skip
    assert face["box"]["nullable"] is True
    assert components["FaceLabelEnum"]["enum"] == ["real", "fake", "uncertain"]
    [label] = [
        p for p in schema["paths"]["/api/v1/detections/"]["get"]["parameters"]
        if p["name"] == "label"
    ]  # fmt: skip
    assert "no_face" in label["schema"]["enum"]


def test_detail_can_wait_for_the_verdict(token_client, user, settings, monkeypatch):
    pending = DetectionFactory(owner=user)
    done = DetectionFactory(owner=user, done=True)
    calls = []

    def wait_for(*, user, detection_id, wait):
        calls.append((user.id, detection_id, wait))
        return Detection.objects.get(id=detection_id)

    monkeypatch.setattr("detection.selectors.detection_get_finished", wait_for)
    settings.API_MAX_WAIT_SECONDS = 5
    assert token_client.get(f"{LIST_URL}{pending.id}/?wait=2.5").json()["status"] == "pending"
    # A longer wait than the server allows waits the server's longest.
    assert token_client.get(f"{LIST_URL}{done.id}/?wait=60").json()["status"] == "done"
    # No wait: answered at once, as before.
    token_client.get(f"{LIST_URL}{done.id}/")
    assert calls == [(user.id, pending.id, 2.5), (user.id, done.id, 5), (user.id, done.id, 0)]


@pytest.mark.parametrize("wait", ["soon", "-1", "61", "nan"])
def test_a_bad_wait_is_400_in_the_one_error_shape(token_client, user, wait):
    detection = DetectionFactory(owner=user)
    response = token_client.get(f"{LIST_URL}{detection.id}/?wait={wait}")
    assert response.status_code == 400
    body = response.json()
    _assert_error_shape(body)
    assert body["errors"][0]["field"] == "wait"


def test_waiting_for_another_users_detection_is_404(token_client, other_user, settings):
    settings.API_MAX_WAIT_SECONDS = 30
    theirs = DetectionFactory(owner=other_user)
    response = token_client.get(f"{LIST_URL}{theirs.id}/?wait=30")
    assert response.status_code == 404
    _assert_error_shape(response.json())


def test_upload_can_wait_for_its_verdicts(
    token_client, user, settings, monkeypatch, enqueued, django_capture_on_commit_callbacks
):
    calls = []

    def wait_for(*, user, detection_ids, wait):
        calls.append((user.id, list(detection_ids), wait))
        # As if the worker had finished the first one meanwhile.
        Detection.objects.filter(id=detection_ids[0]).update(
            status="done", label="no_face", uncertain_low=0.4, uncertain_high=0.6
        )
        return list(Detection.objects.filter(id__in=detection_ids).order_by("id"))

    monkeypatch.setattr("detection.selectors.detection_list_finished", wait_for)
    settings.API_MAX_WAIT_SECONDS = 5
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client.post(
            f"{LIST_URL}?wait=10",
            {"image": [upload("a.jpg"), upload("b.jpg", image_bytes(color=(10, 20, 30)))]},
            format="multipart",
        )
    assert response.status_code == 200, response.content
    items = response.json()["detections"]
    ids = [d.id for d in Detection.objects.order_by("id")]
    # (That they are queued before the wait begins needs a real commit: tests/e2e shows it.)
    assert enqueued == ids
    assert calls == [(user.id, ids, 5)]
    assert [(i["id"], i["status"]) for i in items] == [(ids[0], "done"), (ids[1], "pending")]
    assert "faces" in items[0] and "fake_probability" in items[0]  # the full record


def test_upload_with_a_bad_wait_stores_nothing(token_client, enqueued):
    response = token_client.post(
        f"{LIST_URL}?wait=soon", {"image": upload("a.jpg")}, format="multipart"
    )
    assert response.status_code == 400
    _assert_error_shape(response.json())
    assert response.json()["errors"][0]["field"] == "wait"
    assert Detection.objects.count() == 0 and enqueued == []
