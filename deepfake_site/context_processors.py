from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    return {
        "SITE_NAME": "Deepfake Detector",
        "RETENTION_DAYS": settings.DETECTION_RETENTION_DAYS,
    }
