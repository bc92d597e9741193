"""Request and detection ids carried through every log line, in the web and in the worker."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
detection_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("detection_id", default="-")

# A client-supplied id is kept only if it is short and plain, so it cannot forge log lines.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs 4xx/5xx after the middleware has returned, with the request attached.
        request = getattr(record, "request", None)
        record.request_id = (
            getattr(record, "request_id", None)
            or getattr(request, "request_id", None)
            or request_id_var.get()
        )
        record.detection_id = getattr(record, "detection_id", None) or detection_id_var.get()
        return True


class RequestIdMiddleware:
    """Takes X-Request-ID from the proxy (or makes one) and echoes it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
