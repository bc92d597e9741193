"""API input parsing and output shapes. No queries here: views call selectors and services."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.models import Detection, DetectionFace


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


def _box_field(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(),
        allow_null=True,
        read_only=True,
        min_length=4,
        max_length=4,
        help_text=help_text,
    )


class DetectionFaceSerializer(serializers.ModelSerializer):
    index = serializers.IntegerField(
        read_only=True, min_value=1, help_text="The face's number, 1 for the largest face."
    )
    box = _box_field(
        "[x, y, width, height] in image pixels; null when unknown (a verdict of the old model, "
        "which judged the whole image)."
    )
    fake_probability = serializers.FloatField(
        read_only=True,
        min_value=0,
        max_value=1,
        help_text="Calibrated probability that this face is fake, 0..1.",
    )
    label = serializers.ChoiceField(
        choices=DetectionFace.Label.choices, read_only=True, help_text="The verdict on this face."
    )
    detector_confidence = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="How sure the face detector was that this is a face; null when unknown.",
    )

    class Meta:
        model = DetectionFace
        fields = ["index", "box", "fake_probability", "label", "detector_confidence"]
        read_only_fields = fields


class DetectionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This record in the API.")
    page_url = serializers.SerializerMethodField(help_text="The result page in the browser.")
    image_url = serializers.SerializerMethodField(
        help_text="The stored image (metadata removed); same authentication as the API."
    )
    face_box = _box_field(
        "[x, y, width, height] in image pixels of the deciding face (the same as its `box` in "
        "`faces`); null until done, when no face was found, and for old whole-image verdicts."
    )
    faces = DetectionFaceSerializer(
        many=True,
        read_only=True,
        help_text=(
            "Every face the detector found, largest first, each with its own verdict; empty "
            "until done and when no face was found."
        ),
    )
    deciding_face = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        min_value=1,
        help_text=(
            "The `index` of the face that decided the verdict (the most likely fake one); null "
            "until done and when no face was found."
        ),
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
        help_text=(
            "The verdict; blank until the detection is done. `no_face`: the detector found no "
            "face, and the model judges faces only, so there is no real/fake verdict."
        ),
    )
    fake_probability = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text=(
            "Calibrated probability that the image is fake (that of the deciding face), 0..1; "
            "null until done and when no face was found."
        ),
    )
    threshold = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="The decision threshold of the model that made this verdict; null until done.",
    )
    uncertain_low = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text=(
            "Lower end of that model's uncertain band: below it the verdict is real; "
            "null until done."
        ),
    )
    uncertain_high = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="Upper end of the uncertain band: above it the verdict is fake; null until done.",
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
            "threshold",
            "uncertain_low",
            "uncertain_high",
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
            "faces",
            "deciding_face",
            "removed_metadata",
            "image_url",
            "batch",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "inference_ms",
            # [repeats]
            # [heatmap]
            # [provenance]
            # [feedback+models]
            # [share]
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

    # --- [repeats] methods ---

    # --- [heatmap] methods ---

    # --- [provenance] methods ---

    # --- [feedback+models] methods ---

    # --- [share] methods ---


class DetectionCreatedItemSerializer(DetectionSerializer):
    class Meta(DetectionSerializer.Meta):
        fields = ["id", "status", "url", "page_url", "original_name"]
        read_only_fields = fields


class DetectionCreatedSerializer(serializers.Serializer):
    detections = DetectionCreatedItemSerializer(many=True)


class DetectionWaitedSerializer(serializers.Serializer):
    """An upload that waited for its verdicts (?wait=): every detection in full."""

    detections = DetectionSerializer(many=True)


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file part of a multipart request (binary in the schema)."""


# The largest `wait` a client may ask for; the server waits at most API_MAX_WAIT_SECONDS of it.
WAIT_MAX_SECONDS = 60


class DetectionWaitSerializer(serializers.Serializer):
    """How long a request waits for verdicts: one detection's, or an upload's."""

    wait = serializers.FloatField(
        required=False,
        default=0.0,
        min_value=0,
        max_value=WAIT_MAX_SECONDS,
        help_text=(
            "Seconds to wait for the verdict before answering: the answer comes as soon as the "
            "detection (an upload: every one of its detections) is done or failed, or when the "
            "time is up (then it is still pending or running; ask again). At most "
            f"{WAIT_MAX_SECONDS}; the server waits at most {settings.API_MAX_WAIT_SECONDS} s. "
            "0 (the default) answers at once."
        ),
    )


class DetectionUploadSerializer(serializers.Serializer):
    image = serializers.ListField(
        # Empty files pass here so that detection.uploads refuses them with its clear message.
        child=UploadedFileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        min_length=1,  # documents minItems: an empty list is refused
        help_text=(
            "One or more images (repeat the field for several). Formats: JPEG, PNG, WebP; "
            f"at most {settings.DETECTION_MAX_UPLOAD_BYTES // (1024 * 1024)} MiB each and "
            f"{settings.DETECTION_MAX_FILES_PER_REQUEST} per request."
        ),
    )
