"""Forms that parse page input. The image checks themselves live in detection.images."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.forms.utils import ErrorDict
from django.template.defaultfilters import filesizeformat

from detection.models import Detection
from detection.selectors import DEFAULT_ORDERING, DetectionFilters


class UploadLimitHandler(FileUploadHandler):
    """First of FILE_UPLOAD_HANDLERS: refuses an upload while it streams in, before it is whole.

    Django's own handlers read a file part of any size (to a temporary file past
    FILE_UPLOAD_MAX_MEMORY_SIZE). This one stops the parser (StopUpload: the rest of the body is
    not read) as soon as one file passes DETECTION_MAX_UPLOAD_BYTES, or at the first file part when
    the request's Content-Length is above DETECTION_MAX_REQUEST_BYTES, and leaves the reason on the
    request as ``upload_refusal`` (a ValidationError with code "too_large") for the upload page and
    the API to report. Fields before the first file (the CSRF token) are still parsed.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request_too_large = content_length > settings.DETECTION_MAX_REQUEST_BYTES
        return None  # parse as usual; the refusal happens at the first file part

    def new_file(self, field_name, file_name, *args, **kwargs) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if getattr(self, "request_too_large", False):
            self._refuse(
                ValidationError(
                    "The upload is too large in all; the limit is %(limit)s per request "
                    "(%(max_files)d images of at most %(max_bytes)s).",
                    code="too_large",
                    params={
                        "limit": filesizeformat(settings.DETECTION_MAX_REQUEST_BYTES),
                        "max_files": settings.DETECTION_MAX_FILES_PER_REQUEST,
                        "max_bytes": filesizeformat(settings.DETECTION_MAX_UPLOAD_BYTES),
                    },
                )
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = settings.DETECTION_MAX_UPLOAD_BYTES
        if start + len(raw_data) > limit:
            from detection.images import filename_sanitize

            name = filename_sanitize(self.file_name)
            reason = ValidationError(
                "The file is too large; the limit is %(limit)s.",
                params={"limit": filesizeformat(limit)},
            ).messages[0]
            self._refuse(
                ValidationError(
                    "%(file)s: %(reason)s",
                    code="too_large",
                    params={"file": name, "reason": reason},
                )
            )
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) builds the upload

    def _refuse(self, error: ValidationError) -> None:
        self.request.upload_refusal = error
        # connection_reset: the parser stops here instead of reading the rest of the body.
        raise StopUpload(connection_reset=True)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A list of uploaded files from one <input type=file multiple>."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list:
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose at least one image.", code="required")
        # Contents are checked by the service (detection.images); only the count is checked here.
        max_files = settings.DETECTION_MAX_FILES_PER_REQUEST
        if len(files) > max_files:
            raise forms.ValidationError(
                "At most %(max)d images per upload; you chose %(count)d.",
                code="too_many_files",
                params={"max": max_files, "count": len(files)},
            )
        return files


class UploadForm(forms.Form):
    images = MultipleFileField(label="Images")

    def __init__(self, *args: object, accept: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        attrs = self.fields["images"].widget.attrs
        attrs["multiple"] = True
        if accept:
            attrs["accept"] = accept

    def refuse(self, error: ValidationError) -> None:
        """Show a refusal made while the request streamed in (UploadLimitHandler); no cleaning."""
        self.cleaned_data = {}
        self._errors = ErrorDict()
        self.add_error(None, error)


ORDERING_CHOICES = [
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-fake_probability", "Most likely fake first"),
    ("fake_probability", "Most likely real first"),
    ("original_name", "File name A–Z"),
]


class DetectionFilterForm(forms.Form):
    """History filters (GET). Invalid values are dropped rather than shown as errors."""

    search = forms.CharField(required=False, max_length=100, label="File name")
    label = forms.ChoiceField(
        required=False, choices=[("", "Any verdict"), *Detection.Label.choices], label="Verdict"
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Detection.Status.choices], label="Status"
    )
    created_after = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_before = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    ordering = forms.ChoiceField(required=False, choices=ORDERING_CHOICES, label="Order")

    def filters(self) -> DetectionFilters:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return DetectionFilters(
            label=data.get("label") or "",
            status=data.get("status") or "",
            created_after=data.get("created_after"),
            created_before=data.get("created_before"),
            search=data.get("search") or "",
            ordering=data.get("ordering") or DEFAULT_ORDERING,
        )


class DetectionIdsForm(forms.Form):
    """The ids ticked in the history table for a bulk delete."""

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here; ownership is enforced by the service.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()  # type: ignore[attr-defined]
