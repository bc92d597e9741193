"""API input parsing and output shapes. No queries here: views call selectors and services."""

from __future__ import annotations

import math

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.api.provenance_serializers import ProvenanceSerializer
from detection.models import Detection, DetectionFace, DetectionFeedback, VideoFace, VideoTrack


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
    heatmap_url = serializers.SerializerMethodField(
        help_text=(
            "This face's heatmap: a small RGBA PNG (Grad-CAM) of where the network looked for "
            "this face's verdict, brighter and more opaque where it weighed more. It shows where "
            "the network looked, not proof. Stretch it over `heatmap_box`. Same authentication "
            "as the API. Null when there is none (the detection's `heatmap_status` says why)."
        )
    )
    heatmap_box = _box_field(
        "[x, y, width, height] in image pixels: the square of the image the model saw for this "
        "face (a crop around it, or the image's centre square when the face fills the picture), "
        "which the heatmap covers; null when there is no heatmap."
    )

    class Meta:
        model = DetectionFace
        fields = [
            "index",
            "box",
            "fake_probability",
            "label",
            "detector_confidence",
            "heatmap_url",
            "heatmap_box",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_heatmap_url(self, obj: DetectionFace) -> str | None:
        # The worker stores a face's heatmap and its box together: the box says there is one
        # without reading the PNG's bytes (the selectors leave them behind).
        if obj.heatmap_box is None:
            return None
        url = reverse("api:detection-face-heatmap", args=[obj.detection_id, obj.index])
        return _absolute(self.context.get("request"), url)


class LinkedDetectionSerializer(serializers.ModelSerializer):
    """Another of your detections, named by a field of this one."""

    url = serializers.SerializerMethodField(help_text="That detection in the API.")
    checked_at = serializers.DateTimeField(
        source="created_at", read_only=True, help_text="When it was uploaded."
    )
    label = serializers.ChoiceField(
        choices=Detection.Label.choices, allow_blank=True, read_only=True
    )
    fake_probability = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Detection
        fields = ["id", "url", "checked_at", "label", "fake_probability", "model_version"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj: Detection) -> str:
        return _absolute(
            self.context.get("request"), reverse("api:detection-detail", args=[obj.id])
        )


class DetectionFeedbackSerializer(serializers.ModelSerializer):
    """Your report that a verdict is wrong."""

    truth = serializers.ChoiceField(
        choices=DetectionFeedback.Truth.choices,
        read_only=True,
        help_text="What you said the image really is: real, fake, or unknown (only that the "
        "verdict is wrong).",
    )
    note = serializers.CharField(read_only=True, help_text="Your note; blank if none.")
    created_at = serializers.DateTimeField(read_only=True, help_text="When you reported it.")

    class Meta:
        model = DetectionFeedback
        fields = ["truth", "note", "created_at"]
        read_only_fields = fields
# --- Video pages ---


class _VideoOnly:
    """A field of videos only: null for an image, whatever the column holds."""

    def get_attribute(self, instance):
        if getattr(instance, "kind", None) != Detection.Kind.VIDEO:
            return None
        return super().get_attribute(instance)


class _VideoFloatField(_VideoOnly, serializers.FloatField):
    pass


class _VideoIntegerField(_VideoOnly, serializers.IntegerField):
    pass


class _VideoCharField(_VideoOnly, serializers.CharField):
    pass


class VideoPointSerializer(serializers.ModelSerializer):
    """A face of a track in one sampled frame."""

    time_s = serializers.FloatField(
        read_only=True, help_text="When, in seconds from the start of the video."
    )
    fake_probability = serializers.FloatField(
        read_only=True, min_value=0, max_value=1, help_text="P(fake) of this face in this frame."
    )
    box = _box_field("[x, y, width, height] of the face in video pixels.")

    class Meta:
        model = VideoFace
        fields = ["time_s", "fake_probability", "box"]
        read_only_fields = fields


class FrameSoFarSerializer(serializers.Serializer):
    time_s = serializers.FloatField(help_text="The frame's time in the video, in seconds.")
    fake_probability = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="P(fake) of the frame's most suspicious face; null when it had no face.",
    )


class VideoTrackSerializer(serializers.ModelSerializer):
    """One face followed through the video, with its P(fake) in each frame it was seen in."""

    index = serializers.IntegerField(
        read_only=True, min_value=1, help_text="The track's number, 1 for the first face seen."
    )
    fake_probability = serializers.FloatField(
        read_only=True,
        min_value=0,
        max_value=1,
        help_text="The track's P(fake): its frames' combined as `aggregate_method` says.",
    )
    label = serializers.ChoiceField(
        choices=VideoTrack.Label.choices, read_only=True, help_text="The verdict on this track."
    )
    max_probability = serializers.FloatField(
        read_only=True, min_value=0, max_value=1, help_text="P(fake) of its most suspicious frame."
    )
    frames = serializers.IntegerField(
        read_only=True, help_text="How many sampled frames it was seen in."
    )
    start_s = serializers.FloatField(read_only=True, help_text="First seen, in seconds.")
    end_s = serializers.FloatField(read_only=True, help_text="Last seen, in seconds.")
    points = VideoPointSerializer(
        source="faces", many=True, read_only=True, help_text="Its frames, in time order."
    )

    class Meta:
        model = VideoTrack
        fields = [
            "index",
            "fake_probability",
            "label",
            "max_probability",
            "frames",
            "start_s",
            "end_s",
            "points",
        ]
        read_only_fields = fields


class DetectionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This record in the API.")
    page_url = serializers.SerializerMethodField(help_text="The result page in the browser.")
    image_url = serializers.SerializerMethodField(
        help_text=(
            "The stored image (metadata removed); same authentication as the API. Null for a "
            "private check (`kind` `private`): its image never left the browser."
        )
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
            "thumbnail_url",
            "kind",
            "video_url",
            "duration_s",
            "frame_rate",
            "frame_count",
            "video_codec",
            "frames_total",
            "frames_done",
            "progress",
            "frames_so_far",
            "deciding_track",
            "aggregate_method",
            "tracks",
            "reused_from",
            "similar_to",
            "heatmap_status",
            "provenance",
            "feedback",
            "rechecked_from",
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

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_image_url(self, obj: Detection) -> str | None:
        if obj.is_private:
            return None
        return _absolute(
            self.context.get("request"), reverse("api:detection-image", args=[obj.id])
        )

    # --- Repeats and thumbnails ---
    thumbnail_url = serializers.SerializerMethodField(
        help_text=(
            "A small WebP of the stored image (at most 160 px a side); same authentication. "
            "Null for a private check."
        )
    )
    reused_from = serializers.SerializerMethodField(
        help_text=(
            "Set when you had checked the same file before with the model that serves now: the "
            "verdict was copied from that detection at once instead of running the model again "
            "(POST `rerun/` runs it again). Null otherwise."
        )
    )
    similar_to = serializers.SerializerMethodField(
        help_text=(
            "Your most recent earlier detection of a very similar image (nearly the same "
            "picture at a small size: a re-saved, resized or lightly edited copy), when there "
            "is one; null otherwise. Only your own detections are compared."
        )
    )

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_thumbnail_url(self, obj: Detection) -> str | None:
        if obj.is_private:
            return None
        return _absolute(
            self.context.get("request"), reverse("api:detection-thumbnail", args=[obj.id])
        )

    @extend_schema_field(LinkedDetectionSerializer(allow_null=True))
    def get_reused_from(self, obj: Detection) -> dict | None:
        return self._linked(obj.reused_from if obj.reused_from_id else None)

    @extend_schema_field(LinkedDetectionSerializer(allow_null=True))
    def get_similar_to(self, obj: Detection) -> dict | None:
        return self._linked(obj.similar_to if obj.similar_to_id else None)

    def _linked(self, other: Detection | None) -> dict | None:
        if other is None:
            return None
        return LinkedDetectionSerializer(other, context=self.context).data

    # --- Heatmaps ---
    heatmap_status = serializers.ChoiceField(
        source="heatmap_state",
        choices=Detection.HeatmapStatus.choices,
        allow_blank=True,
        read_only=True,
        help_text=(
            "The faces' heatmaps, made just after the verdict: `pending` while they are being "
            "made (a few seconds at most; ask again), `done` when each face has its "
            "`heatmap_url`, `failed` when they could not be made (the verdict stands), `none` "
            "when no face was found (nothing to explain); blank before the verdict, for "
            "verdicts made before heatmaps existed, and for private checks (no image to "
            "explain)."
        ),
    )

    # --- Provenance ---
    provenance = ProvenanceSerializer(
        read_only=True,
        help_text=(
            "What the uploaded file said about itself (EXIF, PNG text, XMP, C2PA Content "
            "Credentials), read before its metadata was stripped. Evidence separate from the "
            "model's verdict: metadata can be added or removed by anyone, and its absence "
            "proves nothing."
        ),
    )

    # --- Feedback and model versions ---
    feedback = DetectionFeedbackSerializer(
        read_only=True,
        allow_null=True,
        help_text=(
            "Your report that this verdict is wrong (POST `feedback/` makes or replaces it, "
            "DELETE withdraws it); null when you have not reported it."
        ),
    )
    rechecked_from = serializers.SerializerMethodField(
        help_text=(
            "The earlier detection of the same image that this one re-checks with a newer "
            "model (POST `recheck/` there made it), to compare both verdicts; null when this is "
            "not a re-check or the earlier one was deleted."
        )
    )

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_rechecked_from(self, obj: Detection) -> str | None:
        if obj.rechecked_from_id is None:
            return None
        return _absolute(
            self.context.get("request"),
            reverse("api:detection-detail", args=[obj.rechecked_from_id]),
        )


    # --- Video pages ---
    kind = serializers.ChoiceField(
        choices=Detection.Kind.choices,
        read_only=True,
        help_text=(
            "`image`, `video`, or `private`: a private check, a verdict made in your browser on "
            "the private check page and saved without the image (no `image_url`, "
            "`thumbnail_url` or heatmaps; `original_name`, `format` and `sha256` blank, "
            "`byte_size` 0; its labels were judged again by the server from each face's P(fake)). "
            "The fields below up to `tracks` are null for an image and a private check."
        ),
    )
    video_url = serializers.SerializerMethodField(
        help_text=(
            "The stored video (metadata removed), with HTTP range requests; same "
            "authentication as the API. Null for an image."
        )
    )
    duration_s = _VideoFloatField(read_only=True, allow_null=True, help_text="Length, seconds.")
    frame_rate = _VideoFloatField(
        read_only=True, allow_null=True, help_text="Average frames per second."
    )
    frame_count = _VideoIntegerField(
        read_only=True, allow_null=True, help_text="Frames in the video stream."
    )
    video_codec = _VideoCharField(
        read_only=True, allow_null=True, help_text="The video stream's codec (h264, vp9, ...)."
    )
    frames_total = _VideoIntegerField(
        read_only=True,
        allow_null=True,
        help_text=(
            "How many frames, spread evenly over the video, the model judges; null until the "
            "worker has opened the video."
        ),
    )
    frames_done = _VideoIntegerField(
        read_only=True, allow_null=True, help_text="How many of them it has judged so far."
    )
    progress = serializers.SerializerMethodField(
        help_text=(
            "`frames_done / frames_total`, 0..1 (1 once done); null for an image and until "
            "`frames_total` is known."
        )
    )
    frames_so_far = serializers.SerializerMethodField(
        help_text=(
            "While a video is analysed (and after): each frame judged so far, in order, with "
            "its time and the P(fake) of its most suspicious face (null: no face in it), so a "
            "client can draw the timeline as it fills in; the per-face `tracks` come with the "
            "verdict. Empty for an image."
        )
    )
    deciding_track = _VideoIntegerField(
        read_only=True,
        allow_null=True,
        min_value=1,
        help_text=(
            "The `index` of the track that decided the verdict (the most suspicious one); "
            "null until done and when no face was found."
        ),
    )
    aggregate_method = _VideoCharField(
        read_only=True,
        allow_null=True,
        help_text=(
            "How each track's frames are combined into its P(fake), and whether that rule was "
            "calibrated on video data; blank until done."
        ),
    )
    tracks = serializers.SerializerMethodField(
        help_text=(
            "Each face followed through the video, first seen first, with its P(fake) per "
            "frame; empty for an image, until done, and when no face was found."
        )
    )

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_video_url(self, obj: Detection) -> str | None:
        if obj.kind != Detection.Kind.VIDEO:
            return None
        return _absolute(self.context.get("request"), reverse("api:detection-video", args=[obj.id]))

    @extend_schema_field(
        {"type": "number", "format": "double", "minimum": 0, "maximum": 1, "nullable": True}
    )
    def get_progress(self, obj: Detection) -> float | None:
        if obj.kind != Detection.Kind.VIDEO:
            return None
        if obj.status == Detection.Status.DONE:
            return 1.0
        if not obj.frames_total:
            return None
        return round(min(obj.frames_done, obj.frames_total) / obj.frames_total, 4)

    @extend_schema_field(FrameSoFarSerializer(many=True))
    def get_frames_so_far(self, obj: Detection) -> list[dict]:
        if obj.kind != Detection.Kind.VIDEO:
            return []
        return [
            {"time_s": t, "fake_probability": p}
            for t, p in (obj.progress_points or [])
            if t is not None
        ]

    @extend_schema_field(VideoTrackSerializer(many=True))
    def get_tracks(self, obj: Detection) -> list[dict]:
        if obj.kind != Detection.Kind.VIDEO:
            return []
        return VideoTrackSerializer(obj.tracks.all(), many=True, context=self.context).data


class DetectionCreatedItemSerializer(DetectionSerializer):
    class Meta(DetectionSerializer.Meta):
        fields = ["id", "kind", "status", "url", "page_url", "original_name"]
        read_only_fields = fields


class DetectionShareSerializer(serializers.Serializer):
    """A detection's read-only report link (or its absence)."""

    active = serializers.BooleanField(help_text="Whether the detection has a live link now.")
    url = serializers.URLField(
        allow_null=True,
        help_text=(
            "The report page: anyone who has this address can open it, signed out too, until "
            "you revoke it. Null without a live link."
        ),
    )
    pdf_url = serializers.URLField(allow_null=True, help_text="The same report as a PDF.")
    created_at = serializers.DateTimeField(allow_null=True)


class DuplicateFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The file left out.")
    same_as = serializers.CharField(help_text="The earlier file of this upload with its bytes.")


class DetectionCreatedSerializer(serializers.Serializer):
    detections = DetectionCreatedItemSerializer(many=True)
    duplicates = DuplicateFileSerializer(
        many=True,
        default=list,
        help_text=(
            "Files of this upload that were the same bytes as an earlier one: analysed once, "
            "not twice; empty when there were none."
        ),
    )


class DetectionWaitedSerializer(serializers.Serializer):
    """An upload that waited for its verdicts (?wait=): every detection in full."""

    detections = DetectionSerializer(many=True)
    duplicates = DuplicateFileSerializer(
        many=True, default=list, help_text="As in the answer without `wait`."
    )


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
            f"{settings.DETECTION_MAX_FILES_PER_REQUEST} per request. "
            "Video clips go in the same field: MP4, WebM or MOV (recognised by content, not "
            f"by name), at most {settings.DETECTION_VIDEO_MAX_BYTES // (1024 * 1024)} MiB, "
            f"{settings.DETECTION_VIDEO_MAX_SECONDS:g} s, "
            f"{settings.DETECTION_VIDEO_MAX_PIXELS / 1e6:g} megapixels a frame, "
            f"{settings.DETECTION_VIDEO_MAX_FRAME_RATE:g} frames a second and "
            f"{settings.DETECTION_VIDEO_MAX_FRAMES} frames each; their detections have "
            "`kind` `video`. Metadata is removed from every stored copy."
        ),
    )


# --- Feedback and model versions ---
class DetectionFeedbackInputSerializer(serializers.Serializer):
    """A report that the verdict is wrong: what the image really is, and an optional note."""

    truth = serializers.ChoiceField(
        choices=DetectionFeedback.Truth.choices,
        help_text=(
            "What the image really is: `real`, `fake`, or `unknown` (you only know that the "
            "verdict is wrong). It must differ from the verdict; an `uncertain` verdict needs "
            "`real` or `fake`."
        ),
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Optional: anything that helps, such as where the image comes from.",
    )


# --- Private checks ---


def _finite(value: float) -> None:
    # "NaN" and "Infinity" parse as floats and pass any min/max comparison.
    if not math.isfinite(value):
        raise serializers.ValidationError("A finite number is required.", code="not_finite")


class PrivateCheckFaceInputSerializer(serializers.Serializer):
    """One face the browser found and judged."""

    box = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        min_length=4,
        max_length=4,
        help_text=(
            "[x, y, width, height] in image pixels, whole numbers; inside the image (one pixel "
            "past its right or bottom edge is allowed: rounding), width and height at least 1."
        ),
    )
    fake_probability = serializers.FloatField(
        min_value=0,
        max_value=1,
        validators=[_finite],
        help_text="The browser model's calibrated P(fake) of this face, 0..1.",
    )
    detector_confidence = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=1,
        validators=[_finite],
        help_text="How sure the face detector was, 0..1; null or absent when unknown.",
    )


class PrivateCheckInputSerializer(serializers.Serializer):
    """A verdict the browser made on the private check page: the image's size and each face's
    box and P(fake), never the image. Any other field (a `label` included) is ignored."""

    model_version = serializers.CharField(
        max_length=100,
        help_text=(
            "The browser model's version (its manifest's `model.version`): it must be the one "
            "the private check page serves now, else 409."
        ),
    )
    width = serializers.IntegerField(
        min_value=1,
        max_value=settings.DETECTION_MAX_PIXELS,
        help_text=(
            "The image's width in pixels (after EXIF orientation); width × height at most "
            f"{settings.DETECTION_MAX_PIXELS}."
        ),
    )
    height = serializers.IntegerField(
        min_value=1, max_value=settings.DETECTION_MAX_PIXELS, help_text="Its height in pixels."
    )
    inference_ms = serializers.FloatField(
        min_value=0,
        max_value=3_600_000,
        validators=[_finite],
        help_text="How long the browser took to judge the image, in milliseconds.",
    )
    # A ListField (not many=True) so that the schema states maxItems.
    faces = serializers.ListField(
        child=PrivateCheckFaceInputSerializer(),
        allow_empty=True,
        max_length=settings.DETECTION_MAX_FACES,
        help_text=(
            "Every face found, largest first (empty when none was found: the verdict is then "
            f"`no_face`); at most {settings.DETECTION_MAX_FACES}."
        ),
    )

