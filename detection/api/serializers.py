"""API input parsing and output shapes. No queries here: views call selectors and services."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.models import Detection
from detection.selectors import DEFAULT_ORDERING, ORDERINGS, DetectionFilters


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


class DetectionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This record in the API.")
    page_url = serializers.SerializerMethodField(help_text="The result page in the browser.")
    image_url = serializers.SerializerMethodField(
        help_text="The stored image (metadata removed); same authentication as the API."
    )
    face_box = serializers.ListField(
        child=serializers.IntegerField(),
        allow_null=True,
        read_only=True,
        min_length=4,
        max_length=4,
        help_text="[x, y, width, height] in image pixels of the face the model looked at.",
    )
    removed_metadata = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Metadata removed from the stored copy (EXIF, GPS, ...).",
    )
    label = serializers.ChoiceField(
        choices=Detection.Label.choices,
        allow_blank=True,
        read_only=True,
        help_text="The verdict; blank until the detection is done.",
    )
    fake_probability = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="Calibrated probability that the image is fake, 0..1; null until done.",
    )

    class Meta:
        model = Detection
        fields = [
            "id",
            "url",
            "page_url",
            "status",
            "label",
            "fake_probability",
            "model_name",
            "model_version",
            "error",
            "attempts",
            "original_name",
            "format",
            "width",
            "height",
            "byte_size",
            "sha256",
            "face_box",
            "removed_metadata",
            "image_url",
            "batch",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "inference_ms",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj: Detection) -> str:
        return _absolute(
            self.context.get("request"), reverse("api:detection-detail", args=[obj.id])
        )

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, obj: Detection) -> str:
        return _absolute(self.context.get("request"), reverse("detection:detail", args=[obj.id]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_url(self, obj: Detection) -> str:
        return _absolute(
            self.context.get("request"), reverse("api:detection-image", args=[obj.id])
        )


class DetectionCreatedItemSerializer(DetectionSerializer):
    class Meta(DetectionSerializer.Meta):
        fields = ["id", "status", "url", "page_url", "original_name"]
        read_only_fields = fields


class DetectionCreatedSerializer(serializers.Serializer):
    detections = DetectionCreatedItemSerializer(many=True)


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file part of a multipart request (binary in the schema)."""


class DetectionUploadSerializer(serializers.Serializer):
    image = serializers.ListField(
        # Empty files pass here so that detection.images refuses them with its clear message.
        child=UploadedFileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        min_length=1,  # documents minItems: an empty list is refused
        help_text=(
            "One or more images (repeat the field for several). Formats: JPEG, PNG, WebP; "
            f"at most {settings.DETECTION_MAX_UPLOAD_BYTES // (1024 * 1024)} MiB each and "
            f"{settings.DETECTION_MAX_FILES_PER_REQUEST} per request."
        ),
    )


class UploadErrorItemSerializer(serializers.Serializer):
    file = serializers.CharField(allow_blank=True)
    code = serializers.CharField()
    message = serializers.CharField()


class UploadErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = UploadErrorItemSerializer(many=True)


class QueryDateField(serializers.DateField):
    """A date query parameter: absent means no bound; present but blank is refused (400).

    DRF treats a blank optional value as absent, which a YYYY-MM-DD parameter (as the schema
    documents it) does not allow.
    """

    def get_value(self, dictionary):
        if dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


class SearchField(serializers.CharField):
    """Free text matched against file names. NUL characters are dropped rather than refused:
    no stored name has one (detection.images.filename_sanitize), and the schema cannot say
    "any string but NUL"."""

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str):
            data = data.replace("\x00", "")
        return super().run_validation(data)


class DetectionFilterSerializer(serializers.Serializer):
    """Query parameters of the list."""

    # A blank value (`?label=`, as an HTML form sends it) means "any": allowed, and documented.
    label = serializers.ChoiceField(
        choices=Detection.Label.choices, required=False, allow_blank=True
    )
    status = serializers.ChoiceField(
        choices=Detection.Status.choices, required=False, allow_blank=True
    )
    created_after = QueryDateField(
        required=False, help_text="Created on or after this day (YYYY-MM-DD)."
    )
    created_before = QueryDateField(
        required=False, help_text="Created on or before this day (YYYY-MM-DD)."
    )
    search = SearchField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Part of the original file name.",
    )
    ordering = serializers.ChoiceField(
        choices=list(ORDERINGS), required=False, allow_blank=True, default=DEFAULT_ORDERING
    )

    def to_filters(self) -> DetectionFilters:
        data = self.validated_data
        return DetectionFilters(
            label=data.get("label", ""),
            status=data.get("status", ""),
            created_after=data.get("created_after"),
            created_before=data.get("created_before"),
            search=data.get("search", ""),
            ordering=data.get("ordering") or DEFAULT_ORDERING,
        )
