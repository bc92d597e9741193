"""What the pages (detection.views) and the API (detection.api) share. Neither imports the other;
both import this."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse

from detection import throttles
from detection.models import PRIVATE_NO_IMAGE, Detection
from detection.uploads import ACCEPT_ATTR, ALLOWED_FORMATS, VIDEO_ACCEPT_ATTR, VIDEO_FORMATS
from detection.uploads.fingerprint import THUMBNAIL_CONTENT_TYPE
from detection.uploads.video_messages import seconds_text

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def upload_limits() -> dict[str, object]:
    """The upload limits, for the pages that explain them."""
    return {
        "max_bytes": settings.DETECTION_MAX_UPLOAD_BYTES,
        "max_files": settings.DETECTION_MAX_FILES_PER_REQUEST,
        "max_pixels": settings.DETECTION_MAX_PIXELS,
        "max_megapixels": round(settings.DETECTION_MAX_PIXELS / 1_000_000, 1),
        "formats": sorted(str(f).upper() for f in ALLOWED_FORMATS),
        # Videos: checked by content too (detection.uploads.video), with their own limits.
        "video_formats": list(VIDEO_FORMATS),
        "video_max_bytes": settings.DETECTION_VIDEO_MAX_BYTES,
        "video_max_seconds": settings.DETECTION_VIDEO_MAX_SECONDS,
        "video_max_duration": seconds_text(settings.DETECTION_VIDEO_MAX_SECONDS),
        "video_max_megapixels": round(settings.DETECTION_VIDEO_MAX_PIXELS / 1_000_000, 1),
        "video_max_frames": settings.DETECTION_VIDEO_MAX_FRAMES,
        "video_max_frame_rate": settings.DETECTION_VIDEO_MAX_FRAME_RATE,
        "accept": f"{ACCEPT_ATTR},{VIDEO_ACCEPT_ATTR}",
    }


def upload_throttle_wait(request: HttpRequest) -> int | None:
    """Seconds to wait when the user has already spent an upload budget, else None.

    Checked before the request body is read; charges nothing (upload_budget_charge does).
    """
    return throttles.upload_budget_wait(user_id=request.user.pk)


def upload_budget_charge(request: HttpRequest, *, images: int) -> int | None:
    """Charge the request's images to the user's upload budgets, before anything is stored:
    None when they fit, else the seconds to wait (and nothing is charged).

    The page and the API share the same budgets and their counters (in the shared cache), so
    the form is no way around the API's limits.
    """
    return throttles.upload_budget_charge(user_id=request.user.pk, images=images)


def upload_logged(detections: list[Detection]) -> None:
    """One log line per stored upload: it carries the request id (and the detection id)."""
    for detection in detections:
        logger.info(
            "Upload stored as detection %s (%s, %d bytes)",
            detection.id,
            detection.format,
            detection.byte_size,
            extra={"detection_id": str(detection.id)},
        )


def thumbnail_response(data: bytes) -> HttpResponse:
    """A detection's thumbnail (WebP bytes) as a private, non-sniffable response."""
    response = HttpResponse(data, content_type=THUMBNAIL_CONTENT_TYPE)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def image_response(detection: Detection) -> FileResponse:
    """The stored image as a private, non-sniffable response (pages and API alike)."""
    if detection.is_private:  # no file was ever stored
        raise Http404(PRIVATE_NO_IMAGE)
    response = FileResponse(
        detection.image.open("rb"),
        content_type=CONTENT_TYPES.get(detection.format.upper(), "application/octet-stream"),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # Opened directly, the image may not run anything or be framed.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"
    return response


def heatmap_response(png: bytes) -> HttpResponse:
    """A face's heatmap (PNG bytes) as a private, non-sniffable response (pages and API alike).
    Cached like the image: a face's heatmap changes only when its detection is run again, which
    with the same image and model makes the same map."""
    response = HttpResponse(png, content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # Opened directly, it may not run anything or be framed.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"
    return response


# --- Playback with range requests ---------------------------------------------

VIDEO_CONTENT_TYPES = {"MP4": "video/mp4", "WEBM": "video/webm", "MOV": "video/quicktime"}
# Bytes read from storage and written to the socket at a time: a seek in the player asks for a
# range, and a range is streamed, never held in memory whole.
VIDEO_CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """A Range header that names no byte of the file (answered 416)."""


def byte_range(header: str | None, *, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) a Range header asks of a file of `size` bytes, or
    None to send the whole file: no header, another unit, a malformed header or several ranges
    (RFC 9110 lets a server ignore those; players ask for one). RangeNotSatisfiable when the
    one range lies wholly past the end, or asks for the last 0 bytes."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # "bytes=-n": the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored, as the RFC asks
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def _file_chunks(fh, *, start: int, length: int) -> Iterator[bytes]:
    """`length` bytes of an open storage file from `start`, a chunk at a time; closes the file
    when done or when the client goes away (the response closes this generator)."""
    try:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            data = fh.read(min(VIDEO_CHUNK_BYTES, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        fh.close()


def video_response(
    detection: Detection, *, range_header: str | None, if_range: str | None = None
) -> HttpResponse:
    """A stored video clip, to be played in the page (pages and API alike): the whole file
    (200, with Accept-Ranges) or the one byte range asked for (206 Partial Content), streamed
    from the storage (a local folder or S3) in chunks; 416 for a range past the end.

    The ETag names the stored file (a random name, never rewritten) and its size: a player that
    resumes with If-Range gets the whole file again should they ever differ."""
    try:
        fh = detection.image.storage.open(detection.image.name, "rb")
        size = fh.size
    except (OSError, ValueError) as exc:
        logger.warning("The stored video of detection %s cannot be read", detection.id)
        raise Http404("The stored video cannot be read.") from exc
    digest = hashlib.sha256(f"{detection.image.name}:{size}".encode()).hexdigest()
    etag = f'"{digest[:32]}"'
    try:
        wanted = byte_range(range_header, size=size)
    except RangeNotSatisfiable:
        fh.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        _video_headers(response, etag=etag)
        return response
    if wanted is not None and if_range is not None and if_range.strip() != etag:
        wanted = None  # the player's copy is of another file: start again with the whole one
    start, end = wanted if wanted is not None else (0, size - 1)
    length = max(0, end - start + 1)
    response = StreamingHttpResponse(
        _file_chunks(fh, start=start, length=length),
        status=206 if wanted is not None else 200,
        content_type=VIDEO_CONTENT_TYPES.get(detection.format.upper(), "application/octet-stream"),
    )
    response["Content-Length"] = str(length)
    if wanted is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    _video_headers(response, etag=etag)
    return response


def _video_headers(response: HttpResponse, *, etag: str) -> None:
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    # Opened directly, the file may not run anything or be framed.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"


def snapshot_response(jpeg: bytes) -> HttpResponse:
    """One of a video's most suspicious frames (JPEG bytes), private and non-sniffable."""
    response = HttpResponse(jpeg, content_type="image/jpeg")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"
    return response
