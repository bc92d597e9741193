"""What the pages (detection.views) and the API (detection.api) share. Neither imports the other;
both import this."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse

from detection import throttles
from detection.models import Detection
from detection.uploads import ACCEPT_ATTR, ALLOWED_FORMATS
from detection.uploads.fingerprint import THUMBNAIL_CONTENT_TYPE

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
        "accept": ACCEPT_ATTR,
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
