"""Refusing an upload while it streams in, before it is whole.

Django's own upload handlers read a file part of any size (to a temporary file past
FILE_UPLOAD_MAX_MEMORY_SIZE). ``UploadLimitHandler``, first of FILE_UPLOAD_HANDLERS, stops the
parser (StopUpload: the rest of the body is not read) as soon as one file passes its limit, or
at the first file part when the request's Content-Length is above DETECTION_MAX_REQUEST_BYTES.
A file's limit depends on what its first bytes say it is (``sniff.upload_kind``, as the upload
gate decides): DETECTION_MAX_UPLOAD_BYTES for an image, DETECTION_VIDEO_MAX_BYTES for a video.
The reason is kept for the request and read back with ``upload_refusal_get`` by the upload page
and the API. Fields before the first file (the CSRF token) are still parsed.
"""

from __future__ import annotations

import weakref

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

from detection.uploads import messages
from detection.uploads.filenames import filename_sanitize
from detection.uploads.sniff import upload_kind

# Bytes of a file part looked at to tell an image from a video (every signature fits; the
# first chunk the parser hands over is 64 KiB, so waiting for them costs nothing).
_SNIFF_BYTES = 512

# Keyed by the request object and dropped with it: a typed channel from the handler to the view,
# instead of an ad-hoc attribute on the request.
_refusals: weakref.WeakKeyDictionary[HttpRequest, ValidationError] = weakref.WeakKeyDictionary()


def upload_refusal_get(*, request: HttpRequest) -> ValidationError | None:
    """The refusal (code "too_large") made while this request streamed in, if any.

    Takes Django's request or DRF's (whose underlying Django request is the key).
    """
    return _refusals.get(getattr(request, "_request", request))


class UploadLimitHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request_too_large = content_length > settings.DETECTION_MAX_REQUEST_BYTES
        return None  # parse as usual; the refusal happens at the first file part

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.head = b""
        self.limit = None  # known once the first bytes have come
        if getattr(self, "request_too_large", False):
            self._refuse(
                messages.request_too_large(
                    limit=settings.DETECTION_MAX_REQUEST_BYTES,
                    max_files=settings.DETECTION_MAX_FILES_PER_REQUEST,
                    max_bytes=settings.DETECTION_MAX_UPLOAD_BYTES,
                    max_video_bytes=settings.DETECTION_VIDEO_MAX_BYTES,
                )
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = self._limit(raw_data)
        if start + len(raw_data) > limit:
            [error] = messages.naming_file(
                file=filename_sanitize(self.file_name),
                error=messages.file_too_large_while_streaming(limit),
            )
            self._refuse(error)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) builds the upload

    def _limit(self, raw_data: bytes) -> int:
        """This file's limit, by what its first bytes are; the larger one until they have come."""
        if self.limit is None:
            self.head += raw_data[: _SNIFF_BYTES - len(self.head)]
            if len(self.head) < _SNIFF_BYTES and raw_data:
                return max(settings.DETECTION_MAX_UPLOAD_BYTES, settings.DETECTION_VIDEO_MAX_BYTES)
            kind = upload_kind(
                head=self.head, name=self.file_name or "", content_type=self.content_type or ""
            )
            self.limit = (
                settings.DETECTION_VIDEO_MAX_BYTES
                if kind == "video"
                else settings.DETECTION_MAX_UPLOAD_BYTES
            )
        return self.limit

    def _refuse(self, error: ValidationError) -> None:
        _refusals[self.request] = error
        # connection_reset: the parser stops here instead of reading the rest of the body.
        raise StopUpload(connection_reset=True)
