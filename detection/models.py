from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.lookups import IsNull
from django.utils import timezone

# A worker writes its heartbeat every WORKER_HEARTBEAT_SECONDS; three missed beats mean gone.
WORKER_HEARTBEAT_SECONDS = 10
WORKER_STALE_AFTER = dt.timedelta(seconds=3 * WORKER_HEARTBEAT_SECONDS)


class WorkerHeartbeat(models.Model):
    """One row per live worker process: proves a worker answers and which model it serves.

    Kept in the database rather than asked over the broker, because the embedded SQLite broker
    has no broadcast channel for `celery inspect ping`.
    """

    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hostname", "pid"], name="heartbeat_unique_process")
        ]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"


# Every stored upload lives below this folder of the default storage.
UPLOADS_DIR = "uploads"

# The 404 of what needs a private check's image (file, thumbnail, PDF), pages and API alike.
PRIVATE_NO_IMAGE = (
    "This is a private check: the image never left the browser that checked it, so the server "
    "has no image of it."
)


def detection_upload_to(instance: Detection, filename: str) -> str:
    """A random name in a dated folder: the uploader's file name never reaches the disk."""
    ext = Path(filename).suffix.lower()[:8]
    now = timezone.now()
    return f"{UPLOADS_DIR}/{now:%Y}/{now:%m}/{uuid.uuid4().hex}{ext}"


@dataclass(frozen=True)
class UncertainBand:
    """A model's "uncertain" band, in percent, for explaining a verdict to people."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return round(self.high - self.low, 1)


class DetectionBatch(models.Model):
    """Several images uploaded in one request, shown together on one page."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="detection_batches"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"batch {self.pk}"


class Detection(models.Model):
    """One uploaded image and the job that gives it a verdict. The row owns the job's state."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Label(models.TextChoices):
        REAL = "real", "Real"
        FAKE = "fake", "Fake"
        UNCERTAIN = "uncertain", "Uncertain"
        # The detector found no face: the model judges faces only, so there is no real/fake
        # verdict (it must not call a landscape "real").
        NO_FACE = "no_face", "No face"

    class HeatmapStatus(models.TextChoices):
        NONE_YET = "", "Not yet"
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        NOT_APPLICABLE = "none", "No face to explain"

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        # A verdict the browser made on the private check page (/private-check/) and the owner
        # chose to save: the image never left their device, so there is no stored file (`image`
        # blank, by constraint), no thumbnail, no heatmaps; detection_private_save says which
        # intake fields it fills and how.
        PRIVATE = "private", "Private check"

    FINAL_STATUSES = (Status.DONE, Status.FAILED)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="detections"
    )
    batch = models.ForeignKey(
        DetectionBatch,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="detections",
    )
    # An image or a video clip; the stored file is in `image` either way. A private check has
    # none (blank).
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.IMAGE)
    image = models.FileField(upload_to=detection_upload_to, max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    byte_size = models.PositiveIntegerField()
    removed_metadata = models.JSONField(default=list, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Who holds the running job: the Celery task id, so a redelivery of the same message after
    # its worker was killed may take the row back, while a duplicate message may not.
    claim_token = models.CharField(max_length=64, blank=True)
    # The id of the last run message published for this row: the sweeper asks the broker whether
    # it still holds it before publishing another (a backlog must not fill up with duplicates).
    message_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    label = models.CharField(max_length=16, choices=Label.choices, blank=True)
    fake_probability = models.FloatField(null=True, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    # The decision rule of the model that made the verdict, stored with it (probabilities 0..1):
    # a later model with another band must not re-explain an old verdict.
    threshold = models.FloatField(null=True, blank=True)
    uncertain_low = models.FloatField(null=True, blank=True)
    uncertain_high = models.FloatField(null=True, blank=True)
    # The deciding face's box, [x, y, w, h] in image pixels; null when no face was found (and for
    # verdicts of the old whole-image model). Every face is in `faces` (DetectionFace).
    face_box = models.JSONField(null=True, blank=True)
    # The 1-based DetectionFace.index of the face that decided (the most suspicious one); null
    # before a verdict and when no face was found.
    deciding_face = models.PositiveSmallIntegerField(null=True, blank=True)
    inference_ms = models.FloatField(null=True, blank=True)
    # --- video only (kind "video"); null for images -----------------------------------------
    duration_s = models.FloatField(null=True, blank=True)
    frame_rate = models.FloatField(null=True, blank=True)  # average frames per second
    frame_count = models.PositiveIntegerField(null=True, blank=True)  # frames in the stream
    video_codec = models.CharField(max_length=32, blank=True)
    # Progress of the worker: how many frames it samples, and how many it has judged so far.
    frames_total = models.PositiveIntegerField(null=True, blank=True)
    frames_done = models.PositiveIntegerField(default=0)
    # The timeline so far, written with the progress: [time_s, P(fake) of the frame's most
    # suspicious face, or null without a face] per judged frame. The tracks come with the verdict.
    progress_points = models.JSONField(default=list, blank=True)
    # The 1-based VideoTrack.index of the most suspicious track (the video's verdict).
    deciding_track = models.PositiveSmallIntegerField(null=True, blank=True)
    # How each track's frames are combined into its P(fake), in words, and whether that rule was
    # calibrated on video data (it is not, until there is labelled video to calibrate on).
    aggregate_method = models.CharField(max_length=200, blank=True)
    # Grad-CAM heatmaps, made by the worker after the verdict (each face's in DetectionFace):
    # blank before a verdict, then pending, done, failed or none (no face: nothing to explain).
    heatmap_status = models.CharField(
        max_length=16, choices=HeatmapStatus.choices, blank=True, default=""
    )

    # --- evidence read at intake (web side), before re-encoding dropped the metadata --------
    # What the file said about itself: EXIF, PNG text, XMP, C2PA (detection.uploads.provenance).
    provenance = models.JSONField(default=dict, blank=True)
    # 64-bit difference hash of the stored pixels (signed, as PostgreSQL has no unsigned
    # bigint): near-duplicates differ in a few bits.
    phash = models.BigIntegerField(null=True, blank=True)
    # A small WebP for lists, made at intake (or on first request for older rows): a history page
    # must not send 25 full-size photos.
    thumbnail = models.BinaryField(null=True, blank=True, editable=False)
    # The same bytes checked before by the same user with the same model: the verdict was copied
    # from that detection instead of run again.
    reused_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reuses"
    )
    # The user's most recent earlier detection whose image looks nearly the same (phash).
    similar_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # This detection re-checks an earlier one with a newer model (side by side on the page).
    rechecked_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rechecks"
    )

    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # One user's list (history page, API, export) in every order it offers, filtered or not:
        # each index ends in that order's full key (tie-breakers included), so a page is the
        # first rows of an index scan, not a sort of the user's whole history, and its count
        # reads the index alone. Found with bench/growth.py (100k rows of one user). On
        # PostgreSQL, migration 0004 adds a trigram index for the file name search.
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="detection_owner_created"),
            models.Index(
                fields=["owner", "status", "-created_at", "-id"], name="detection_owner_status"
            ),
            models.Index(
                fields=["owner", "label", "-created_at", "-id"], name="detection_owner_label"
            ),
            # The probability orders put rows without one last (detection.filters.ORDERINGS):
            # `IS NULL` first, as an indexed expression, because SQLite cannot index NULLS LAST.
            models.Index(
                F("owner"),
                IsNull(F("fake_probability"), True),
                F("fake_probability").desc(),
                F("created_at").desc(),
                F("id").desc(),
                name="detection_owner_fake_first",
            ),
            models.Index(
                F("owner"),
                IsNull(F("fake_probability"), True),
                F("fake_probability").asc(),
                F("created_at").desc(),
                F("id").desc(),
                name="detection_owner_real_first",
            ),
            # The file name orders; and the search scans this smaller index, not the table.
            models.Index(
                fields=["owner", "original_name", "-created_at", "-id"],
                name="detection_owner_name",
            ),
            # The type filter of the history page and the API.
            models.Index(
                fields=["owner", "kind", "-created_at", "-id"], name="detection_owner_kind"
            ),
            # Repeats: the same bytes by the same user.
            models.Index(fields=["owner", "sha256"], name="detection_owner_sha256"),
            # The sweeper looks for stale pending/running rows across all users.
            models.Index(fields=["status", "queued_at"], name="detection_status_queued"),
        ]
        constraints = [
            # A done row has a verdict and the band it was made with; its probability is that of
            # the deciding face, so there is one exactly when a face was found.
            models.CheckConstraint(
                condition=~models.Q(status="done")
                | (
                    ~models.Q(label="")
                    & models.Q(uncertain_low__isnull=False, uncertain_high__isnull=False)
                    & (
                        (models.Q(label="no_face") & models.Q(fake_probability__isnull=True))
                        | (~models.Q(label="no_face") & models.Q(fake_probability__isnull=False))
                    )
                ),
                name="detection_done_has_verdict",
            ),
            models.CheckConstraint(
                condition=models.Q(fake_probability__isnull=True)
                | models.Q(fake_probability__gte=0, fake_probability__lte=1),
                name="detection_probability_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(deciding_face__isnull=True) | models.Q(deciding_face__gte=1),
                name="detection_deciding_face_numbered_from_1",
            ),
            # A private check's image never reached the server: its row can hold no file.
            models.CheckConstraint(
                condition=~models.Q(kind="private") | models.Q(image=""),
                name="detection_private_has_no_image",
            ),
        ]

    def __str__(self) -> str:
        return f"detection {self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def is_private(self) -> bool:
        """A verdict made in the owner's browser: no stored image, thumbnail or heatmap."""
        return self.kind == self.Kind.PRIVATE

    @property
    def fake_percent(self) -> float | None:
        if self.fake_probability is None:
            return None
        return round(self.fake_probability * 100, 1)

    @property
    def uncertain_band(self) -> UncertainBand | None:
        """The band this verdict was made with, in percent; None before a verdict."""
        if self.uncertain_low is None or self.uncertain_high is None:
            return None
        return UncertainBand(
            low=round(self.uncertain_low * 100, 1), high=round(self.uncertain_high * 100, 1)
        )

    @property
    def face_box_percent(self) -> dict[str, float] | None:
        """The deciding face's box as percentages of the image, to draw it over a scaled image."""
        return box_percent(self.face_box, width=self.width, height=self.height)

    @property
    def heatmap_state(self) -> str:
        """heatmap_status as people and clients should read it: "pending" turns "failed" once
        the run that makes them cannot still be working (its task's hard time limit has passed
        since it started), so that nobody waits for heatmaps a killed worker left behind."""
        if self.heatmap_status != self.HeatmapStatus.PENDING or self.status != self.Status.DONE:
            return self.heatmap_status
        limit = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        if self.started_at is None or self.started_at < timezone.now() - limit:
            return self.HeatmapStatus.FAILED
        return self.heatmap_status

    @property
    def heatmap_waiting(self) -> bool:
        """The verdict is out and its heatmaps are still being made: the page keeps polling."""
        return self.status == self.Status.DONE and self.heatmap_state == self.HeatmapStatus.PENDING

    @property
    def duration_label(self) -> str:
        """A video's length as people read it ("0:07", "1:02:05"); blank for an image."""
        if self.duration_s is None:
            return ""
        return clock_label(self.duration_s)


def clock_label(seconds: float, *, tenths: bool = False) -> str:
    """A time in a video as "m:ss" ("h:mm:ss" past an hour), with tenths when asked ("0:03.5")."""
    seconds = max(0.0, float(seconds))
    if tenths:
        whole, tenth = divmod(round(seconds * 10), 10)
    else:
        whole, tenth = round(seconds), 0
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{tenth}" if tenths else text


def box_percent(box: object, *, width: int, height: int) -> dict[str, float] | None:
    """[x, y, w, h] in pixels as percentages of a width x height image; None without a box."""
    if not isinstance(box, list | tuple) or len(box) != 4 or not width or not height:
        return None
    x, y, w, h = (float(v) for v in box)
    return {
        "left": round(100 * x / width, 3),
        "top": round(100 * y / height, 3),
        "width": round(100 * w / width, 3),
        "height": round(100 * h / height, 3),
    }


class DetectionFace(models.Model):
    """The model's verdict on one face of a detection's image; the most suspicious one decides.

    Numbered 1.. in the detector's order (largest face first), as people see them on the page.
    """

    class Label(models.TextChoices):
        REAL = "real", "Real"
        FAKE = "fake", "Fake"
        UNCERTAIN = "uncertain", "Uncertain"

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="faces")
    index = models.PositiveSmallIntegerField()
    # [x, y, w, h] in image pixels (after EXIF orientation). Null: the box is unknown and the
    # whole image was judged (verdicts of the old model, migrated as one face).
    box = models.JSONField(null=True, blank=True)
    fake_probability = models.FloatField()
    label = models.CharField(max_length=16, choices=Label.choices)
    detector_confidence = models.FloatField(null=True, blank=True)
    # Grad-CAM: where the network looked on this face, as a small RGBA PNG to lay over the face's
    # box (detection.worker); null until made, and when it could not be.
    heatmap = models.BinaryField(null=True, blank=True, editable=False)
    # The region the model saw for this face and the heatmap covers, [x, y, w, h] in image pixels
    # (a square around the face, larger than its box); null with no heatmap.
    heatmap_box = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["detection", "index"], name="face_unique_index"),
            models.CheckConstraint(
                condition=models.Q(index__gte=1), name="face_index_numbered_from_1"
            ),
            models.CheckConstraint(
                condition=models.Q(fake_probability__gte=0, fake_probability__lte=1),
                name="face_probability_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"face {self.index} of detection {self.detection_id}"

    @property
    def fake_percent(self) -> float:
        return round(self.fake_probability * 100, 1)

    @property
    def box_percent(self) -> dict[str, float] | None:
        # The detection is cached on the face when faces come from detection.faces or a
        # prefetch, so this costs no query.
        detection = self.detection
        return box_percent(self.box, width=detection.width, height=detection.height)

    @property
    def is_deciding(self) -> bool:
        return self.detection.deciding_face == self.index


class DetectionFeedback(models.Model):
    """The owner's report that a verdict is wrong: one per detection (a new report replaces it).

    The verdict and model it was about are copied in, so counts per model version survive a
    re-run of the detection.
    """

    class Truth(models.TextChoices):
        REAL = "real", "It is real"
        FAKE = "fake", "It is fake"
        UNKNOWN = "unknown", "I don't know, but the verdict is wrong"

    detection = models.OneToOneField(
        Detection, on_delete=models.CASCADE, related_name="feedback"
    )
    truth = models.CharField(max_length=16, choices=Truth.choices)
    note = models.TextField(blank=True, max_length=2000)
    label = models.CharField(max_length=16, blank=True)  # the verdict reported as wrong
    fake_probability = models.FloatField(null=True, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model_version"], name="feedback_model_version")]

    def __str__(self) -> str:
        return f"feedback on detection {self.detection_id}"


class DetectionShare(models.Model):
    """A read-only link to one detection's report, for anyone who has it, until revoked.

    The token is the link's secret (256 random bits); it is kept so that the owner can copy the
    link again from the page.
    """

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="shares")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"share of detection {self.detection_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class VideoTrack(models.Model):
    """One face followed through a video: boxes that overlap from one sampled frame to the next
    are the same person. Its P(fake) combines its frames' (Detection.aggregate_method says how);
    the most suspicious track decides the video's verdict. Numbered 1.. by first appearance."""

    class Label(models.TextChoices):
        REAL = "real", "Real"
        FAKE = "fake", "Fake"
        UNCERTAIN = "uncertain", "Uncertain"

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="tracks")
    index = models.PositiveSmallIntegerField()
    fake_probability = models.FloatField()  # the aggregate, 0..1
    label = models.CharField(max_length=16, choices=Label.choices)
    max_probability = models.FloatField()  # its most suspicious frame
    frames = models.PositiveIntegerField()  # sampled frames it was seen in
    start_s = models.FloatField()
    end_s = models.FloatField()

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["detection", "index"], name="track_unique_index"),
            models.CheckConstraint(
                condition=models.Q(fake_probability__gte=0, fake_probability__lte=1),
                name="track_probability_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"track {self.index} of detection {self.detection_id}"

    @property
    def fake_percent(self) -> float:
        return round(self.fake_probability * 100, 1)


class VideoFace(models.Model):
    """A face in one sampled frame of a video, with the model's P(fake) and its track.

    `snapshot` holds the whole frame (scaled down, JPEG) for the few most suspicious faces only,
    for the page's strip of frames."""

    detection = models.ForeignKey(
        Detection, on_delete=models.CASCADE, related_name="video_faces"
    )
    track = models.ForeignKey(VideoTrack, on_delete=models.CASCADE, related_name="faces")
    sample = models.PositiveIntegerField()  # 0-based number of the sampled frame
    time_s = models.FloatField()  # its presentation time
    box = models.JSONField()  # [x, y, w, h] in video pixels
    fake_probability = models.FloatField()
    detector_confidence = models.FloatField(null=True, blank=True)
    snapshot = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["sample", "track__index"]
        indexes = [models.Index(fields=["detection", "sample"], name="videoface_detection_sample")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fake_probability__gte=0, fake_probability__lte=1),
                name="videoface_probability_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"face at {self.time_s:.2f}s of detection {self.detection_id}"
