from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from detection.models import Detection
from detection.tests.factories import (
    DetectionBatchFactory,
    DetectionFactory,
    detection_with_three_faces,
)
from detection.tests.helpers import image_bytes, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_upload_page_shows_limits(signed_in, settings):
    settings.DETECTION_MAX_FILES_PER_REQUEST = 7
    response = signed_in.get(reverse("detection:upload"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="file"' in html and "multiple" in html
    assert 'accept="image/jpeg,image/png,image/webp' in html
    assert "7 images per upload" in html
    assert "JPEG, PNG, WEBP" in html
    assert "js/upload.js" in html


def test_upload_one_redirects_to_result(
    signed_in, user, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("detection:upload"), {"images": [upload("me.jpg")]})
    detection = Detection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("detection:detail", args=[detection.id])
    assert detection.owner == user
    assert enqueued == [detection.id]


def test_upload_several_redirects_to_batch(signed_in, enqueued, django_capture_on_commit_callbacks):
    files = [upload("a.jpg"), upload("b.png", image_bytes("PNG"), "image/png")]
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("detection:upload"), {"images": files})
    detections = list(Detection.objects.order_by("id"))
    assert len(detections) == 2
    assert response["Location"] == reverse("detection:batch", args=[detections[0].batch_id])
    assert len(enqueued) == 2
    page = signed_in.get(response["Location"])
    assert page.status_code == 200
    assert "a.jpg" in page.content.decode() and "b.png" in page.content.decode()


def test_refused_file_stores_nothing_and_says_which(signed_in):
    files = [upload("good.jpg"), upload("evil.jpg", b"<html>not an image</html>")]
    response = signed_in.post(reverse("detection:upload"), {"images": files})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was uploaded" in html
    assert "evil.jpg" in html
    assert "good.jpg:" not in html
    assert Detection.objects.count() == 0


def test_upload_without_files(signed_in):
    response = signed_in.post(reverse("detection:upload"), {})
    assert response.status_code == 400
    assert "Choose at least one image" in response.content.decode()


def test_upload_too_large_file(signed_in, settings):
    settings.DETECTION_MAX_UPLOAD_BYTES = 100
    response = signed_in.post(reverse("detection:upload"), {"images": [upload("big.jpg")]})
    assert response.status_code == 400
    assert "big.jpg" in response.content.decode()
    assert Detection.objects.count() == 0


def test_result_page_pending_polls(signed_in, user):
    detection = DetectionFactory(owner=user)
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert f'data-poll-url="{reverse("detection:status", args=[detection.id])}"' in html
    assert 'data-status="pending"' in html
    assert "js/detection-status.js" in html


def test_result_page_done_shows_verdict_band_model_and_face_box(
    signed_in, user, settings, tmp_path
):
    # Today's model card has another band: the page explains the verdict with the band it was
    # made with (stored with it), not with today's.
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "card.json").write_text(
        json.dumps({"threshold": 0.5, "uncertain_low": 0.1, "uncertain_high": 0.9})
    )
    settings.ML_MODEL_DIR = str(model_dir)
    detection = DetectionFactory(
        owner=user,
        done=True,
        removed_metadata=["EXIF", "GPS"],
        uncertain_low=0.35,
        uncertain_high=0.65,
    )
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert 'data-poll-url=""' in html  # final: no polling
    assert "badge-fake" in html and "87.0%" in html
    assert "Between 35.0% and 65.0% the model is not confident either way" in html
    assert "10.0%" not in html and "90.0%" not in html
    assert detection.model_version in html
    assert 'class="face-box" x="6.25%" y="6.25%"' in html  # 4 / 64 px, 3 / 48 px
    # The pages' Content-Security-Policy blocks style attributes: geometry is SVG attributes.
    assert "style=" not in html
    assert "EXIF, GPS" in html
    assert reverse("detection:image", args=[detection.id]) in html


def test_failed_result_says_why(signed_in, user):
    detection = DetectionFactory(
        owner=user, status=Detection.Status.FAILED, error="The image could not be decoded."
    )
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "No verdict: The image could not be decoded." in html


def test_status_json(signed_in, user):
    detection = DetectionFactory(owner=user)
    data = signed_in.get(reverse("detection:status", args=[detection.id])).json()
    assert data["status"] == "pending" and data["final"] is False
    Detection.objects.filter(id=detection.id).update(
        status="done", label="real", fake_probability=0.1, uncertain_low=0.3, uncertain_high=0.7
    )
    data = signed_in.get(reverse("detection:status", args=[detection.id])).json()
    assert data["final"] is True and data["label"] == "real"
    assert "badge-real" in data["html"]
    assert "Between 30.0% and 70.0%" in data["html"]


def test_image_view_headers(signed_in, user):
    detection = DetectionFactory(owner=user)
    response = signed_in.get(reverse("detection:image", args=[detection.id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "private" in response["Cache-Control"]
    with default_storage.open(detection.image.name) as fh:
        assert b"".join(response.streaming_content) == fh.read()


def _history_ids(response) -> list[int]:
    return [d.id for d in response.context["page"].object_list]


def test_history_newest_first_filters_and_search(signed_in, user, other_user):
    now = timezone.now()
    old = DetectionFactory(
        owner=user, created_at=now - dt.timedelta(days=10), original_name="x.jpg"
    )
    fake = DetectionFactory(owner=user, done=True, original_name="holiday-beach.jpg")
    real = DetectionFactory(
        owner=user, done=True, label="real", fake_probability=0.1, original_name="cat.png"
    )
    DetectionFactory(owner=other_user, done=True, original_name="holiday-theirs.jpg")
    url = reverse("detection:history")

    assert set(_history_ids(signed_in.get(url))) == {old.id, fake.id, real.id}
    assert _history_ids(signed_in.get(url))[-1] == old.id
    assert _history_ids(signed_in.get(url, {"label": "fake"})) == [fake.id]
    assert _history_ids(signed_in.get(url, {"status": "pending"})) == [old.id]
    assert _history_ids(signed_in.get(url, {"search": "HOLIDAY"})) == [fake.id]
    since = (now - dt.timedelta(days=1)).date().isoformat()
    assert old.id not in _history_ids(signed_in.get(url, {"created_after": since}))
    assert _history_ids(signed_in.get(url, {"created_before": since})) == [old.id]
    by_probability = {"ordering": "-fake_probability", "status": "done"}
    assert _history_ids(signed_in.get(url, by_probability)) == [fake.id, real.id]
    # Nonsense filters are ignored, not a crash.
    assert signed_in.get(url, {"created_after": "soon", "label": "maybe"}).status_code == 200


def test_history_paginates(signed_in, user):
    DetectionFactory.create_batch(27, owner=user)
    first = signed_in.get(reverse("detection:history"))
    assert len(_history_ids(first)) == 25
    assert "Page 1 of 2" in first.content.decode()
    second = signed_in.get(reverse("detection:history"), {"page": 2})
    assert len(_history_ids(second)) == 2


def test_csv_export_uses_the_filters_and_defuses_formulas(signed_in, user, other_user):
    DetectionFactory(owner=user, done=True, original_name="=HYPERLINK(evil).jpg")
    DetectionFactory(owner=user, original_name="pending.jpg")
    DetectionFactory(owner=other_user, done=True, original_name="theirs.jpg")
    response = signed_in.get(reverse("detection:export"), {"status": "done"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "id"
    assert len(rows) == 2
    assert rows[1][2] == "'=HYPERLINK(evil).jpg"


def test_delete_asks_then_deletes(signed_in, user, django_capture_on_commit_callbacks):
    detection = DetectionFactory(owner=user)
    url = reverse("detection:delete", args=[detection.id])
    confirm = signed_in.get(url)
    assert confirm.status_code == 200 and "Delete this detection?" in confirm.content.decode()
    assert Detection.objects.filter(id=detection.id).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(url)
    assert response["Location"] == reverse("detection:history")
    assert not Detection.objects.filter(id=detection.id).exists()
    assert not default_storage.exists(detection.image.name)


def test_delete_selected_confirms_then_deletes_only_own(signed_in, user, other_user):
    mine = DetectionFactory.create_batch(2, owner=user)
    theirs = DetectionFactory(owner=other_user)
    ids = [d.id for d in mine] + [theirs.id]
    url = reverse("detection:delete-many")
    confirm = signed_in.post(url, {"ids": ids})
    assert confirm.status_code == 200
    assert "Delete 2 detections?" in confirm.content.decode()
    assert theirs.original_name not in confirm.content.decode()
    assert Detection.objects.count() == 3
    response = signed_in.post(url, {"ids": ids, "confirm": "yes"})
    assert response.status_code == 302
    assert list(Detection.objects.values_list("id", flat=True)) == [theirs.id]


def test_delete_requires_csrf(client, user):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    detection = DetectionFactory(owner=user)
    response = csrf_client.post(reverse("detection:delete", args=[detection.id]))
    assert response.status_code == 403
    assert Detection.objects.filter(id=detection.id).exists()


def test_api_help_uses_the_real_host(signed_in):
    response = signed_in.get(reverse("detection:api-help"), HTTP_HOST="localhost:8123")
    html = response.content.decode()
    assert "http://localhost:8123/api/v1/detections/" in html
    assert reverse("accounts:profile") in html
    assert "/api/docs/" in html
    assert "-F image=@first.jpg -F image=@second.png" in html


# --- faces and "no face" ------------------------------------------------------------------


def _face_rows(html: str) -> dict[int, tuple[bool, str]]:
    """The faces table: face number -> (row highlighted as the deciding one, row text)."""
    rows = re.findall(r'<tr id="face-(\d+)"([^>]*)>(.*?)</tr>', html, flags=re.DOTALL)
    return {
        int(number): ("face-row-deciding" in attrs, " ".join(re.sub("<[^>]+>", " ", cells).split()))
        for number, attrs, cells in rows
    }


def test_result_page_draws_every_face_numbered_and_lists_them(signed_in, user):
    detection = detection_with_three_faces(owner=user)
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    # A box and a number tag per face, in the detector's order; only face 2 highlighted.
    assert re.findall(r'<g class="face[^"]*" data-face="(\d+)"', html) == ["1", "2", "3"]
    assert re.findall(r'<g class="face face-deciding" data-face="(\d+)"', html) == ["2"]
    assert 'class="face-box" x="50.0%" y="50.0%" width="25.0%" height="25.0%"' in html
    assert re.findall(r'class="face-number"[^>]*>(\d+)</text>', html) == ["1", "2", "3"]
    # One table row per face: its number, verdict, P(fake), and which one decided.
    rows = _face_rows(html)
    assert list(rows) == [1, 2, 3]
    assert rows == {
        1: (False, "1 Real 20.0% –"),
        2: (True, "2 Fake 83.0% Yes, this face decided"),
        3: (False, "3 Uncertain 50.0% –"),
    }
    assert "(face 2, the most likely fake)" in html
    assert "No face found" not in html
    assert "style=" not in html  # the Content-Security-Policy allows no style attribute


def test_no_face_result_says_so_plainly(signed_in, user):
    detection = DetectionFactory(owner=user, no_face=True)
    response = signed_in.get(reverse("detection:detail", args=[detection.id]))
    html = response.content.decode()
    assert 'id="detection-label">No face</span>' in html
    assert "No face found." in html
    assert "The face detector found no face in this image." in html
    assert "The model judges faces only, so there is no real or fake verdict" in html
    assert "A photo without a face, a drawing, or a face that is very small or turned" in html
    # No boxes, no faces table, and no probability to show.
    assert "face-overlay" not in html and "faces-table" not in html
    assert "Probability that the image is fake" not in html
    data = signed_in.get(reverse("detection:status", args=[detection.id])).json()
    assert data["label"] == "no_face" and data["fake_probability"] is None
    assert "No face found." in data["html"]


def test_old_whole_image_verdict_lists_its_face_without_a_box(signed_in, user):
    # A verdict of the old model, migrated to one face without a box.
    detection = DetectionFactory(owner=user, done=True, face_box=None)
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert list(_face_rows(html)) == [1]
    assert "face-overlay" not in html
    assert "did not record where the face was" in html


def test_history_and_batch_rows_say_no_face(signed_in, user):
    batch = DetectionBatchFactory(owner=user)
    no_face = DetectionFactory(owner=user, no_face=True, batch=batch)
    several = detection_with_three_faces(owner=user, batch=batch)
    history = signed_in.get(reverse("detection:history")).content.decode()
    row = history[history.index(f'id="detection-{no_face.id}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="badge badge-no_face">No face</span>' in row
    assert "–" in row  # no probability
    page = signed_in.get(reverse("detection:batch", args=[batch.id])).content.decode()
    row = page[page.index(f'id="detection-{no_face.id}"') :]
    row = row[: row.index("</tr>")]
    assert "No face</span>" in row and "No face found, so no real/fake verdict." in row
    row = page[page.index(f'id="detection-{several.id}"') :]
    assert "3 faces; face 2 decided." in row[: row.index("</tr>")]


def test_history_filter_offers_and_applies_no_face(signed_in, user, other_user):
    no_face = DetectionFactory(owner=user, no_face=True)
    DetectionFactory(owner=user, done=True)
    DetectionFactory(owner=user)
    DetectionFactory(owner=other_user, no_face=True)
    url = reverse("detection:history")
    assert '<option value="no_face">No face</option>' in signed_in.get(url).content.decode()
    response = signed_in.get(url, {"label": "no_face"})
    assert _history_ids(response) == [no_face.id]
    assert '<option value="no_face" selected>No face</option>' in response.content.decode()


def test_csv_export_filters_no_face_and_counts_faces(signed_in, user):
    no_face = DetectionFactory(owner=user, no_face=True)
    several = detection_with_three_faces(owner=user)
    DetectionFactory(owner=user)

    def export(**params) -> list[dict[str, str]]:
        response = signed_in.get(reverse("detection:export"), params)
        text = b"".join(response.streaming_content).decode()
        return list(csv.DictReader(io.StringIO(text)))

    [row] = export(label="no_face")
    assert row["id"] == str(no_face.id)
    assert (row["label"], row["fake_probability"], row["face_count"]) == ("no_face", "", "0")
    counts = {row["id"]: row["face_count"] for row in export(status="done")}
    assert counts == {str(no_face.id): "0", str(several.id): "3"}


def test_csv_export_keeps_its_columns_and_adds_the_face_count_last(signed_in, user):
    response = signed_in.get(reverse("detection:export"))
    header = next(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert header == [
        "id", "created_at", "original_name", "status", "label", "fake_probability",
        "threshold", "uncertain_low", "uncertain_high", "model_name", "model_version",
        "width", "height", "format", "byte_size", "sha256", "finished_at", "error",
        "face_count", "kind",
    ]  # fmt: skip


def _queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
        assert response.status_code == 200
        if response.streaming:
            b"".join(response.streaming_content)
    return len(captured)


@pytest.mark.parametrize(
    "params",
    [{}, {"label": "fake", "search": "photo", "ordering": "-fake_probability", "page": 2}],
)
def test_history_queries_do_not_grow_with_rows_or_faces(signed_in, user, params):
    url = reverse("detection:history")
    DetectionFactory.create_batch(26, owner=user, done=True)
    detection_with_three_faces(owner=user)
    few = _queries(signed_in, url, params)
    DetectionFactory.create_batch(30, owner=user, done=True)
    for _ in range(3):
        detection_with_three_faces(owner=user)
    assert _queries(signed_in, url, params) == few
    # Session, user, the count, the page's rows and their faces.
    assert few == 5


def test_csv_export_is_one_query_however_many_rows_and_faces(signed_in, user, monkeypatch):
    # Chunks of 2 rows: many chunks, and the export still reads every row in one query.
    monkeypatch.setattr("detection.views.CSV_ROWS_PER_CHUNK", 2)
    detection_with_three_faces(owner=user)
    DetectionFactory(owner=user)
    few = _queries(signed_in, reverse("detection:export"))
    for _ in range(3):
        detection_with_three_faces(owner=user)
    DetectionFactory.create_batch(3, owner=user, no_face=True)
    assert _queries(signed_in, reverse("detection:export")) == few
    assert few == 3  # session, user, the rows with their face counts


def test_csv_export_streams_the_header_first_then_rows_in_chunks(signed_in, user, monkeypatch):
    monkeypatch.setattr("detection.views.CSV_ROWS_PER_CHUNK", 2)
    detections = [detection_with_three_faces(owner=user) for _ in range(5)]
    response = signed_in.get(reverse("detection:export"))
    chunks = [chunk.decode() for chunk in response.streaming_content]
    assert [chunk.count("\r\n") for chunk in chunks] == [1, 2, 2, 1]
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [row["id"] for row in rows] == [str(d.id) for d in reversed(detections)]
    assert {row["face_count"] for row in rows} == {"3"}
