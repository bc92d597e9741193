"""What is stored and served is a fresh image under a random name, without metadata or payloads."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from detection.models import Detection
from detection.tests import hostile

from .conftest import API_LIST

pytestmark = pytest.mark.django_db

STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")


def _api_upload(token_client, data: bytes, name: str) -> Detection:
    response = token_client.post(
        API_LIST, {"image": hostile.upload(data, name)}, format="multipart"
    )
    assert response.status_code == 202, response.content
    return Detection.objects.get(id=response.json()["detections"][0]["id"])


def _stored_path(detection: Detection, settings) -> Path:
    path = Path(detection.image.path).resolve()
    assert path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert STORED_NAME.match(path.name), path.name
    return path


def test_png_html_polyglot_is_stored_and_served_as_a_plain_png(token_client, signed_in, settings):
    detection = _api_upload(token_client, hostile.png_html_polyglot(), "cat.png")
    stored = _stored_path(detection, settings).read_bytes()
    assert b"<script" not in stored and b"<html" not in stored
    assert Image.open(BytesIO(stored)).format == "PNG"

    page = signed_in.get(reverse("detection:image", args=[detection.id]))
    api = token_client.get(reverse("api:detection-image", args=[detection.id]))
    for response in (page, api):
        assert response.status_code == 200
        body = b"".join(response.streaming_content)
        assert b"<script" not in body
        assert body == stored
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]


HOSTILE_NAMES = [
    ("../../../../etc/passwd.jpg", "passwd.jpg"),
    ("..\\..\\windows\\win.ini.jpg", "win.ini.jpg"),
    ("evil\x00.php.jpg", None),  # NUL: dropped (by Django's parser or by us), never stored raw
    ("é" * 300 + ".jpg", None),
    ("фото 😀 \u202egpj.exe.jpg", None),
]


@pytest.mark.parametrize(("name", "shown"), HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_file_names_are_stored_under_a_uuid_and_sanitised_for_display(
    token_client, signed_in, settings, name, shown
):
    detection = _api_upload(token_client, hostile.jpeg(), name)
    path = _stored_path(detection, settings)
    assert path.suffix == ".jpg"  # the format decides, not the client's name
    display = detection.original_name
    assert "/" not in display and "\\" not in display and "\x00" not in display
    assert "\u202e" not in display  # no bidirectional override to disguise the extension
    assert 0 < len(display) <= 100
    if shown is not None:
        assert display == shown
    # The history page shows the sanitised name, escaped.
    page = signed_in.get(reverse("detection:history")).content.decode()
    assert "etc/passwd" not in page


@pytest.mark.parametrize("channel", ["page", "api"])
def test_stored_image_has_no_exif_or_gps_and_the_user_is_told(
    channel, token_client, signed_in, settings
):
    data = hostile.jpeg_with_metadata()
    assert b"Exif" in data and hostile.CAMERA_MAKE.encode() in data  # the input has them
    if channel == "api":
        detection = _api_upload(token_client, data, "holiday.jpg")
    else:
        response = signed_in.post(
            reverse("detection:upload"), {"images": [hostile.upload(data, "holiday.jpg")]}
        )
        assert response.status_code == 302
        detection = Detection.objects.get()

    stored = _stored_path(detection, settings).read_bytes()
    assert b"Exif" not in stored and hostile.CAMERA_MAKE.encode() not in stored
    assert hostile.COMMENT not in stored
    img = Image.open(BytesIO(stored))
    assert not img.getexif() and not img.getexif().get_ifd(0x8825)  # no EXIF, no GPS IFD
    assert "EXIF" in detection.removed_metadata and "GPS location" in detection.removed_metadata

    page = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "Removed metadata" in page and "GPS location" in page
    api = token_client.get(reverse("api:detection-detail", args=[detection.id])).json()
    assert "GPS location" in api["removed_metadata"] and "EXIF" in api["removed_metadata"]
