"""The PDF report: a real PDF with the verdict, faces, heatmaps, provenance and model, whatever
the file name; built uncompressed here so that its text can be read."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from PIL import Image

from detection.models import Detection
from detection.report_pdf import pdf_text, report_filename, report_pdf
from detection.tests.factories import DetectionFactory, detection_with_three_faces
from detection.uploads.provenance import provenance_summary

pytestmark = pytest.mark.django_db


def heatmap_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (16, 16), (255, 0, 0, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def build(detection: Detection, **kwargs) -> bytes:
    options = {
        "faces": list(detection.faces.all()),
        "heatmaps": {},
        "provenance": None,
        "compress": False,
        "generated_at": dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC),
    }
    options.update(kwargs)
    return report_pdf(detection=detection, **options)


def images_in(pdf: bytes) -> int:
    return len(re.findall(rb"/Subtype\s*/Image", pdf))


def test_pdf_text_keeps_what_the_fonts_have_and_replaces_the_rest():
    assert pdf_text("ça_😀.jpg") == "ça_?.jpg"
    assert pdf_text("Łódź – “x” × 2") == "?ódz – “x” × 2"
    assert pdf_text("a\x00b\u200bc") == "abc"
    assert pdf_text("日本.png") == "??.png"


def test_report_has_the_verdict_faces_model_and_disclaimer():
    detection = detection_with_three_faces(original_name="portrait.jpg")
    pdf = build(detection, model_card_url="http://testserver/models/fake-model/")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    for text in (
        b"Detection report",
        b"portrait.jpg",
        b"Fake",
        b"83.0%",
        b"Between 40.0% and 60.0%",
        b"Yes, this face decided",
        b"fake-model-20260101-abcdef123456",
        b"Decision threshold",
        b"http://testserver/models/fake-model/",
        b"not proof.",
        b"2026-03-01 12:30:00 UTC",
    ):
        assert text in pdf, text
    # The picture, drawn once (the face boxes are vector lines over it).
    assert images_in(pdf) == 1
    # A4, in points.
    assert re.search(rb"/MediaBox\s*\[\s*0 0 595\.2\d* 841\.8\d*", pdf)


def test_heatmaps_are_laid_over_their_faces():
    detection = detection_with_three_faces(heatmap_status=Detection.HeatmapStatus.DONE)
    # Regions of their own (one reaches past the picture's edge): two different tiles, as
    # reportlab stores identical pictures once.
    detection.faces.filter(index=1).update(heatmap_box=[0, 0, 40, 40])
    detection.faces.filter(index=2).update(heatmap_box=[40, 30, 40, 40])
    pdf = build(detection, heatmaps={1: heatmap_png(), 2: heatmap_png()})
    assert images_in(pdf) == 3
    assert b"Heatmaps" in pdf and b"where the network looked, not proof." in pdf
    # A heatmap that is not a PNG is left out, not an error.
    pdf = build(detection, heatmaps={1: b"not a png", 2: heatmap_png()})
    assert images_in(pdf) == 2


def test_provenance_is_printed():
    detection = DetectionFactory(done=True)
    summary = provenance_summary(
        {
            "version": 1,
            "exif": {
                "make": "TestCam",
                "model": "Model X",
                "software": "Adobe Photoshop 25.0",
                "gps_present": True,
            },
            "editing_software": [{"source": "EXIF", "name": "Adobe Photoshop"}],
        }
    )
    pdf = build(detection, provenance=summary)
    assert b"What the file says about itself" in pdf
    # Parentheses are escaped in PDF strings.
    assert rb"Camera and software \(EXIF\)" in pdf
    assert b"TestCam" in pdf and b"Model X" in pdf
    assert rb"\(Adobe Photoshop\)" in pdf
    assert rb"present in the file \(the position is not kept\)" in pdf
    assert b"proves nothing." in pdf


@pytest.mark.parametrize(
    ("provenance", "expected"),
    [
        ({}, b"Not recorded"),
        ({"version": 1}, b"no camera data, no software names and no Content Credentials"),
    ],
)
def test_provenance_not_recorded_or_empty(provenance, expected):
    pdf = build(DetectionFactory(done=True), provenance=provenance_summary(provenance))
    assert expected in pdf


def test_non_ascii_file_name_does_not_break_the_pdf():
    detection = DetectionFactory(done=True, original_name="ça_😀 <b>&.jpg")
    pdf = build(detection)
    assert pdf.startswith(b"%PDF-")
    # Windows-1252 "ç" (octal 347 in a PDF string), the emoji replaced; markup printed as text.
    assert re.search(rb"(\\347|\xe7)a_\? <b>&.jpg", pdf)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"no_face": True}, b"No face"),
        (
            {"status": Detection.Status.FAILED, "error": "The image could not be decoded."},
            b"No verdict: The image could not be decoded.",
        ),
        ({}, b"has not finished yet"),
    ],
)
def test_reports_without_a_real_or_fake_verdict(fields, expected):
    pdf = build(DetectionFactory(**fields))
    assert expected in pdf


def test_missing_image_is_said_not_raised():
    detection = DetectionFactory(done=True)
    detection.image.delete(save=False)
    pdf = build(detection)
    assert b"The image could not be read for this report." in pdf
    assert images_in(pdf) == 0


def test_a_large_photo_is_reduced():
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), (90, 120, 200)).save(buffer, format="JPEG", quality=95)
    from django.core.files.base import ContentFile

    detection = DetectionFactory(done=True, width=4000, height=3000, face_box=[100, 100, 800, 900])
    detection.image.save("big.jpg", ContentFile(buffer.getvalue()), save=True)
    pdf = build(detection, compress=True)
    match = re.search(rb"/Width (\d+)", pdf)
    assert match and int(match.group(1)) <= 1800


def test_many_faces_flow_onto_more_pages():
    faces = [
        {"box": [i % 60, i % 40, 4, 4], "fake_probability": 0.1, "label": "real"} for i in range(60)
    ]
    detection = DetectionFactory(
        done=True, faces=faces, fake_probability=0.1, label="real", deciding_face=1
    )
    pdf = build(detection)
    pages = len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))
    assert pages >= 2
    assert b"Page 2" in pdf


def test_report_filename():
    assert report_filename(DetectionFactory.build(original_name="holiday.photo.jpg")) == (
        "holiday.photo - report.pdf"
    )
    unnamed = DetectionFactory(original_name="")
    assert report_filename(unnamed) == f"detection-{unnamed.id} - report.pdf"


def test_a_video_report_shows_its_most_suspicious_frame_and_its_tracks(client, user):
    from django.urls import reverse

    from detection.selectors import detection_video_report_parts
    from detection.tests.video_records import video_detection

    detection = video_detection(owner=user, done=True)
    parts = detection_video_report_parts(detection=detection)
    assert parts.frame and parts.box is not None and len(parts.tracks) == 2
    pdf = build(
        detection,
        video_frame=(parts.frame, parts.box, parts.time_s),
        tracks=parts.tracks,
    )
    assert images_in(pdf) == 1
    text = pdf.decode("latin-1")
    assert "with the most suspicious face outlined" in text
    assert "2 face tracks" in text and "Track" in text
    assert "The image could not be read" not in text

    # Through the owner's download: the view gathers the same parts.
    client.force_login(user)
    response = client.get(reverse("detection:report-pdf", args=[detection.id]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert images_in(response.content) == 1


def test_a_video_report_without_frames_falls_back_to_its_poster(user):
    from detection.selectors import detection_video_report_parts
    from detection.tests.video_records import video_detection

    detection = video_detection(owner=user, no_face=True, label="no_face", status="done")
    parts = detection_video_report_parts(detection=detection)
    assert parts.frame and parts.box is None and parts.tracks == []
    pdf = build(detection, video_frame=(parts.frame, None, None))
    assert images_in(pdf) == 1
    assert "its first frame" in pdf.decode("latin-1")
