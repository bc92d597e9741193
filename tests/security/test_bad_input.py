"""Hostile and broken uploads, end to end through the upload page AND the API.

Each must give the person a clear error, never a 500, and leave nothing half-stored: no Detection
row, no file in MEDIA_ROOT. The file checks themselves are unit-tested in
detection/tests/test_images.py; these tests prove the whole request path uses them.
"""

from __future__ import annotations

import time

import pytest
from django.test.client import FakePayload
from django.urls import reverse

from detection.models import Detection
from detection.tests import hostile

from .conftest import API_LIST

pytestmark = pytest.mark.django_db

UPLOAD_PAGE = "/upload/"

# (case id, bytes, file name, API error code, words the person is shown)
BAD_FILES = [
    ("text as .jpg", hostile.text_file, "notes.jpg", "not_an_image", "not an image we can read"),
    ("html as .jpg", hostile.html_file, "page.jpg", "not_an_image", "not an image we can read"),
    ("truncated jpeg", hostile.truncated_jpeg, "cut.jpg", "truncated", "incomplete or damaged"),
    ("empty file", lambda: b"", "empty.jpg", "empty", "The file is empty"),
    ("tiff as .jpg", hostile.tiff, "scan.jpg", "unsupported_format", "TIFF files are not"),
    ("fits as .jpg", hostile.fits, "sky.jpg", "unsupported_format", "FITS files are not"),
    ("svg as .png", hostile.svg_file, "logo.png", "unsupported_format", "SVG files are not"),
    ("30000x30000 png bomb", hostile.png_bomb, "bomb.png", "too_many_pixels", "too many pixels"),
]


def _nothing_stored(stored_files) -> None:
    assert Detection.objects.count() == 0
    assert stored_files() == []


def _post(channel: str, signed_in, token_client, files):
    if channel == "page":
        return signed_in.post(UPLOAD_PAGE, {"images": files})
    return token_client.post(API_LIST, {"image": files}, format="multipart")


@pytest.mark.parametrize("channel", ["page", "api"])
@pytest.mark.parametrize(
    ("case", "make", "name", "code", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_is_refused_clearly_and_nothing_is_stored(
    channel, signed_in, token_client, stored_files, case, make, name, code, words
):
    started = time.monotonic()
    response = _post(channel, signed_in, token_client, [hostile.upload(make(), name)])
    assert time.monotonic() - started < 10  # a bomb is refused from its header, not decoded
    if channel == "api":
        assert response.status_code == 400, response.content
        body = response.json()
        assert [e["code"] for e in body["errors"]] == [code]
        assert body["errors"][0]["file"] == name
        assert words in body["detail"] and "Nothing was stored" in body["detail"]
    else:
        assert response.status_code == 400
        page = response.content.decode()
        assert "Nothing was uploaded" in page and name in page and words in page
    _nothing_stored(stored_files)


def test_bomb_pixels_are_never_allocated(token_client, stored_files, monkeypatch):
    """Memory stays bounded in the web process: the bomb is refused from its header, before
    Pillow allocates its 900 MB of pixels (any image core of more than the limit would be)."""
    from PIL import Image

    allocated: list[tuple[int, int]] = []
    real_new = Image.core.new

    def spy(mode, size, *args):
        allocated.append(size)
        if size[0] * size[1] > 40_000_000:
            raise MemoryError("refusing to allocate the bomb's pixels in a test")
        return real_new(mode, size, *args)

    monkeypatch.setattr(Image.core, "new", spy)
    response = token_client.post(
        API_LIST, {"image": hostile.upload(hostile.png_bomb(), "bomb.png")}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_many_pixels"
    assert all(w * h <= 40_000_000 for w, h in allocated), allocated
    _nothing_stored(stored_files)


# --- Zero-byte and nameless multipart parts (written by hand: clients do send these) ---------

BOUNDARY = "----security-test-boundary"


def _multipart(field: str, filename: str, content: bytes) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


@pytest.mark.parametrize("channel", ["page", "api"])
@pytest.mark.parametrize(
    ("filename", "words"),
    [("a.jpg", "The file is empty"), ("", "")],
    ids=["zero-byte part with a name", "part with an empty file name"],
)
def test_zero_byte_and_nameless_parts(
    channel, signed_in, token_client, stored_files, filename, words
):
    field, url, client = (
        ("images", UPLOAD_PAGE, signed_in)
        if channel == "page"
        else ("image", API_LIST, token_client)
    )
    response = client.generic(
        "POST",
        url,
        _multipart(field, filename, b""),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )
    assert response.status_code == 400
    text = response.content.decode()
    if filename:
        assert words in text
    elif channel == "page":
        assert "Choose at least one image" in text  # Django drops a part with no file name
    else:
        assert "Send one or more files in the `image` field" in text
    _nothing_stored(stored_files)


# --- Size limits: refused while streaming, before the file is read whole ---------------------


@pytest.fixture
def bytes_read(monkeypatch) -> list[int]:
    """How many bytes of the request body the server read (the test client's body stream)."""
    counter = [0]
    real_read = FakePayload.read

    def read(self, size=-1):
        data = real_read(self, size)
        counter[0] += len(data)
        return data

    monkeypatch.setattr(FakePayload, "read", read)
    return counter


def _big(size: int) -> bytes:
    # Starts like a JPEG, so only the size can refuse it.
    return (hostile.jpeg() + b"\x00" * size)[:size]


@pytest.mark.parametrize("channel", ["page", "api"])
def test_oversized_file_is_refused_before_it_is_read_whole(
    channel, signed_in, token_client, stored_files, settings, bytes_read
):
    settings.DETECTION_MAX_UPLOAD_BYTES = 100_000
    big = 8 * 1024 * 1024
    response = _post(channel, signed_in, token_client, [hostile.upload(_big(big), "huge.jpg")])
    if channel == "api":
        assert response.status_code == 413
        body = response.json()
        assert body["errors"][0]["code"] == "too_large"
        assert body["errors"][0]["file"] == "huge.jpg"
        assert "the limit is 97.7\xa0KB" in body["detail"]  # the limit, for people
    else:
        assert response.status_code == 400
        assert "huge.jpg" in response.content.decode()
        assert "too large" in response.content.decode()
    # The upload handler stopped the parser a chunk or two past the limit: the other ~8 MB were
    # never read (nor spooled to a temporary file).
    assert bytes_read[0] < 500_000, bytes_read[0]
    _nothing_stored(stored_files)


@pytest.mark.parametrize("channel", ["page", "api"])
def test_request_over_the_total_cap_is_refused_unread(
    channel, signed_in, token_client, stored_files, settings, bytes_read
):
    # Each file is within its own limit (10 MB); together they are above the request cap.
    settings.DETECTION_MAX_REQUEST_BYTES = 1024 * 1024
    files = [hostile.upload(_big(3 * 1024 * 1024), f"part{i}.jpg") for i in range(2)]
    response = _post(channel, signed_in, token_client, files)
    if channel == "api":
        assert response.status_code == 413
        assert response.json()["errors"][0]["code"] == "too_large"
        assert "too large in all" in response.json()["detail"]
    else:
        assert response.status_code == 400
        assert "too large in all" in response.content.decode()
    assert bytes_read[0] < 300_000, bytes_read[0]  # at most the first chunk of 6 MB
    _nothing_stored(stored_files)


@pytest.mark.parametrize("channel", ["page", "api"])
def test_too_many_files_in_one_request(channel, signed_in, token_client, stored_files, settings):
    settings.DETECTION_MAX_FILES_PER_REQUEST = 3
    files = [hostile.upload(hostile.jpeg(), f"{i}.jpg") for i in range(4)]
    response = _post(channel, signed_in, token_client, files)
    assert response.status_code == 400
    assert "At most 3 images per upload" in response.content.decode()
    _nothing_stored(stored_files)


def test_upload_page_reverse_is_what_the_tests_post_to():
    assert reverse("detection:upload") == UPLOAD_PAGE


def test_the_model_engine_refuses_a_bomb_too(settings):
    """Defence in depth: the worker only reads re-encoded files, and ml's own decoder refuses a
    bomb from its header too, with the same pixel limit as the upload gate (the worker passes
    DETECTION_MAX_PIXELS to the engine; no TensorFlow needed here)."""
    from ml.preprocess import ImageDecodeError, load_image

    with pytest.raises(ImageDecodeError, match="too large"):
        load_image(hostile.png_bomb(), max_pixels=settings.DETECTION_MAX_PIXELS)
