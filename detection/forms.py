"""Forms that parse page input. The image checks themselves live in detection.images."""

from __future__ import annotations

from django import forms
from django.conf import settings

from detection.models import Detection
from detection.selectors import DEFAULT_ORDERING, DetectionFilters


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
