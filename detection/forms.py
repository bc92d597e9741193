"""Forms that parse page input. The image checks themselves live in detection.uploads, the
history filters in detection.filters."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict


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
        # Contents are checked by the service (detection.uploads); only the count is checked here.
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
        """Show a refusal made while the request streamed in (detection.uploads.streaming)."""
        self.cleaned_data = {}
        self._errors = ErrorDict()
        self.add_error(None, error)


class DetectionIdsForm(forms.Form):
    """The ids ticked in the history table for a bulk delete."""

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here; ownership is enforced by the service.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()  # type: ignore[attr-defined]


class DetectionFeedbackForm(forms.Form):
    """"Is this verdict wrong?": what the image really is, and an optional note. The rules
    (which answers fit which verdict) are the service's; this offers only answers that say the
    verdict is wrong."""

    truth = forms.ChoiceField(label="What is the image really?", widget=forms.RadioSelect)
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 2000}),
        help_text="For example, where the image comes from. Staff may read it.",
    )

    ANSWERS = {
        "real": "Real",
        "fake": "Fake",
        "unknown": "I don't know, but the verdict is wrong",
    }

    def __init__(self, *args: object, label: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        answers = [(value, text) for value, text in self.ANSWERS.items() if value != label]
        if label == "uncertain":
            answers = [(v, t) for v, t in answers if v != "unknown"]
        self.fields["truth"].choices = answers
