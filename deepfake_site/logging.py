"""Request and detection ids carried through every log line, in the web and in the worker."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Mapping

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


def _access_status(record: logging.LogRecord) -> int | None:
    """The HTTP status of a web server's access line; None for the server's other messages."""
    if isinstance(record.args, Mapping):
        # gunicorn.access: one record per request, its atoms (a mapping) as the arguments.
        try:
            return int(record.args["s"])
        except (KeyError, TypeError, ValueError):
            return None
    # runserver (django.server): a request line has arguments and a status_code; its other
    # messages (the "accessing the development server over HTTPS" hint) have no arguments.
    if record.args:
        return getattr(record, "status_code", None)
    return None


class ServerAccessFilter(logging.Filter):
    """On the web server's access log (runserver's django.server, gunicorn.access): keeps the
    line of a response below 400 and drops the line of a 4xx/5xx.

    django.request already writes one line for every 4xx/5xx Django answers, with the request id
    and a level that says how bad it is (see the health view); the server's line for the same
    request would be a second one. Requests below 400 have no django.request line, so the
    server's is their only one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = _access_status(record)
        if status is not None and status >= 400:
            return False
        if isinstance(record.args, Mapping):
            # gunicorn logs after the middleware has returned: take the id from the response.
            request_id = record.args.get("{x-request-id}o")
            if request_id and _SAFE_ID.match(str(request_id)):
                record.request_id = request_id
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
