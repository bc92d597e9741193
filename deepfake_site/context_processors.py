from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

# Also written into the last-resort error page (deepfake_site.errors).
SITE_NAME = "Deepfake Detector"


def site(request: HttpRequest) -> dict[str, object]:
    return {
        "SITE_NAME": SITE_NAME,
        "RETENTION_DAYS": settings.DETECTION_RETENTION_DAYS,
    }
