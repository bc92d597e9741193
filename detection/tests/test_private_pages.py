"""The pages with a saved private check: a verdict without an image (history, result page, CSV,
filter, delete), and the pages that need the image refusing it."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from detection.models import Detection, DetectionFeedback, DetectionShare
from detection.tests.factories import DetectionFactory
from detection.tests.private_checks import WEB_VERSION, private_detection, web_manifest_write

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def web_model_dir(settings, tmp_path):
    folder = tmp_path / "web-model"
    web_manifest_write(folder)
    settings.DETECTION_WEB_MODEL_DIR = str(folder)
    return folder


@pytest.fixture
def private_row(user) -> Detection:
    return private_detection(owner=user)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _text(response) -> str:
    return response.content.decode()


def test_history_shows_a_private_row_without_a_thumbnail(signed_in, user, private_row):
    upload = DetectionFactory(owner=user, done=True)
    page = _text(signed_in.get(reverse("detection:history")))
    row = page.split(f'id="detection-{private_row.id}"')[1].split("</tr>")[0]
    assert "Private check" in row and "image never uploaded" in row
    assert reverse("detection:thumbnail", args=[private_row.id]) not in page
    assert 'class="badge badge-fake">Fake<' in row
    assert "83.0%" in row
    # An upload in the same list keeps its thumbnail.
    assert reverse("detection:thumbnail", args=[upload.id]) in page


def test_history_filter_by_kind(signed_in, user, private_row):
    upload = DetectionFactory(owner=user, done=True)
    page = _text(signed_in.get(reverse("detection:history") + "?kind=private"))
    assert f'id="detection-{private_row.id}"' in page
    assert f'id="detection-{upload.id}"' not in page
    assert '<option value="private" selected>Private check</option>' in page


def test_result_page_of_a_private_check(signed_in, private_row):
    response = signed_in.get(reverse("detection:detail", args=[private_row.id]))
    assert response.status_code == 200
    page = _text(response)
    assert "<h1 class=\"detail-title\">Private check</h1>" in page
    assert "Checked privately in your browser on" in page
    assert (
        "the image never left your device; this verdict was computed by your browser with "
        f"model <code>{WEB_VERSION}</code> and reported by it." in page
    )
    assert 'id="detection-label">Fake<' in page
    # The faces, with their boxes as numbers (there is no picture to draw them on).
    assert 'id="faces-table"' in page
    assert "10, 10, 40 × 40" in page and "60, 10, 30 × 30" in page
    assert "200 × 100 px" in page
    # Nothing that needs the image: no picture, heatmap, share, PDF, re-run, re-check, report.
    for absent in (
        reverse("detection:image", args=[private_row.id]),
        reverse("detection:report-pdf", args=[private_row.id]),
        reverse("detection:share-create", args=[private_row.id]),
        reverse("detection:rerun", args=[private_row.id]),
        reverse("detection:recheck", args=[private_row.id]),
        reverse("detection:feedback", args=[private_row.id]),
        "heatmap-toggle",
        "SHA-256",
    ):
        assert absent not in page.replace("js/heatmap-toggle.js", ""), absent
    assert reverse("detection:delete", args=[private_row.id]) in page
    assert reverse("detection:private-check") in page


def test_result_page_of_a_private_check_without_a_face(signed_in, user):
    detection = private_detection(owner=user, faces=[])
    page = _text(signed_in.get(reverse("detection:detail", args=[detection.id])))
    assert "No face found." in page
    assert 'id="faces-table"' not in page


def test_status_endpoint_renders_a_private_row(signed_in, private_row):
    data = signed_in.get(reverse("detection:status", args=[private_row.id])).json()
    assert data["final"] is True and data["kind"] == "private"
    assert "Checked privately in your browser" in data["html"]


def test_csv_export_has_the_private_row(signed_in, private_row):
    response = signed_in.get(reverse("detection:export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    (row,) = rows
    assert row["id"] == str(private_row.id)
    assert row["kind"] == "private"
    assert row["label"] == "fake" and row["fake_probability"] == "0.8300"
    assert (row["original_name"], row["format"], row["sha256"], row["byte_size"]) == (
        "",
        "",
        "",
        "0",
    )
    assert row["model_version"] == WEB_VERSION
    assert (row["width"], row["height"], row["face_count"]) == ("200", "100", "2")


def test_delete_a_private_row(signed_in, private_row):
    confirm = signed_in.get(reverse("detection:delete", args=[private_row.id]))
    assert "Private check (no image was ever stored)" in _text(confirm)
    done = signed_in.post(reverse("detection:delete", args=[private_row.id]))
    assert done.status_code == 302
    assert not Detection.objects.exists()


@pytest.mark.parametrize(
    "name", ["detection:image", "detection:thumbnail", "detection:report-pdf"]
)
def test_pages_that_serve_the_image_are_404(signed_in, private_row, name):
    response = signed_in.get(reverse(name, args=[private_row.id]))
    assert response.status_code == 404


def test_face_heatmap_page_is_404(signed_in, private_row):
    response = signed_in.get(reverse("detection:face-heatmap", args=[private_row.id, 1]))
    assert response.status_code == 404


def test_share_create_refuses_with_a_message(signed_in, private_row):
    response = signed_in.post(
        reverse("detection:share-create", args=[private_row.id]), follow=True
    )
    assert "A private check cannot be shared" in _text(response)
    assert not DetectionShare.objects.exists()


@pytest.mark.parametrize("name", ["detection:recheck", "detection:rerun"])
def test_recheck_and_rerun_refuse_with_a_message(signed_in, private_row, name):
    response = signed_in.post(reverse(name, args=[private_row.id]), follow=True)
    assert "A private check cannot be" in _text(response)
    assert Detection.objects.count() == 1
    assert Detection.objects.get().status == Detection.Status.DONE


def test_feedback_form_post_is_refused(signed_in, private_row):
    response = signed_in.post(
        reverse("detection:feedback", args=[private_row.id]), {"truth": "real"}
    )
    assert response.status_code == 400
    assert "cannot be reported as wrong" in _text(response)
    assert not DetectionFeedback.objects.exists()
