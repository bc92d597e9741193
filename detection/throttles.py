"""Per-user API throttles; the rates are in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]."""

from rest_framework.throttling import UserRateThrottle


class UploadRateThrottle(UserRateThrottle):
    scope = "uploads"


class UploadDailyThrottle(UserRateThrottle):
    scope = "uploads_daily"


class ReadRateThrottle(UserRateThrottle):
    scope = "reads"
