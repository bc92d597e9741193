"""Every read of detections, always scoped to one user; and the workers' heartbeats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from detection import events
from detection.filters import DEFAULT_ORDERING, DetectionFilterSet, detection_order
from detection.models import (
    WORKER_STALE_AFTER,
    Detection,
    DetectionBatch,
    DetectionFace,
    DetectionFeedback,
    DetectionShare,
    VideoFace,
    VideoTrack,
    WorkerHeartbeat,
)


def _scoped(user: AbstractBaseUser) -> QuerySet[Detection]:
    if not getattr(user, "is_authenticated", False):
        return Detection.objects.none()
    # The thumbnail's bytes are read by its own view only (detection_thumbnail).
    return Detection.objects.filter(owner=user).defer("thumbnail")


def _with_faces(qs: QuerySet[Detection]) -> QuerySet[Detection]:
    # Every verdict is shown with its faces: one query for all the faces of a page, not one per
    # row. (Django sets each face's `detection` from the prefetch, so face boxes cost nothing.)
    # The owner's report on the verdict, if any, comes in the same query (a join, not a query
    # per row of a list).
    qs = qs.select_related("feedback")
    # The heatmaps' bytes stay behind: their own view reads them; heatmap_box says one exists.
    return qs.prefetch_related(Prefetch("faces", queryset=DetectionFace.objects.defer("heatmap")))


def _listed(user: AbstractBaseUser, filters: DetectionFilterSet | None) -> QuerySet[Detection]:
    qs = detection_order(_scoped(user), DEFAULT_ORDERING)
    if filters is None:
        return qs
    if not filters.is_valid():
        raise ValueError("detection_list takes a valid filter set; check is_valid() first")
    return filters.filter_queryset(qs)


def detection_list(
    *, user: AbstractBaseUser, filters: DetectionFilterSet | None = None
) -> QuerySet[Detection]:
    """The user's detections with their faces, newest first, narrowed and ordered by a
    validated filter set."""
    return _with_faces(_listed(user, filters))


def detection_get(*, user: AbstractBaseUser, detection_id: int) -> Detection:
    """The user's detection with its faces; Http404 for a missing id and for another user's,
    alike."""
    try:
        detection = _with_faces(_scoped(user)).get(id=detection_id)
    # OverflowError: an id past SQLite's integer range (PostgreSQL just finds nothing).
    except (Detection.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such detection.") from None
    return _with_tracks_of(detection)


def detection_get_finished(
    *, user: AbstractBaseUser, detection_id: int, wait: float
) -> Detection:
    """The user's detection, once it is finished (done or failed) or after ``wait`` seconds,
    whichever comes first; Http404 like ``detection_get``. A client waits for its verdict in one
    request instead of polling (detection.events says how the wait is woken)."""
    detection = detection_get(user=user, detection_id=detection_id)
    if wait > 0 and detection.status not in _FINISHED:
        _wait_finished(user=user, detection_ids=[detection_id], wait=wait)
        detection = detection_get(user=user, detection_id=detection_id)
    return detection


def detection_list_finished(
    *, user: AbstractBaseUser, detection_ids: list[int], wait: float
) -> list[Detection]:
    """The user's detections among ``detection_ids``, in that order, once all are finished or
    after ``wait`` seconds, whichever comes first (an upload that waits for its verdicts)."""
    if wait > 0:
        _wait_finished(user=user, detection_ids=detection_ids, wait=wait)
    rows = {d.id: d for d in _with_faces(_scoped(user).filter(id__in=detection_ids))}
    detection_tracks_read(detections=list(rows.values()))
    return [rows[i] for i in detection_ids if i in rows]


def _wait_finished(*, user: AbstractBaseUser, detection_ids: list[int], wait: float) -> None:
    deadline = time.monotonic() + wait
    unfinished = _scoped(user).filter(id__in=detection_ids).exclude(status__in=_FINISHED)
    with events.detection_finished_listen(detection_ids=detection_ids) as sleep:
        # Listening before each look: an announcement made meanwhile is not missed.
        while unfinished.exists():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sleep(remaining)


_FINISHED = (Detection.Status.DONE, Detection.Status.FAILED)


def detection_list_by_ids(*, user: AbstractBaseUser, ids: list[int]) -> QuerySet[Detection]:
    """The user's detections among `ids` (others' ids are silently left out)."""
    return detection_order(_scoped(user).filter(id__in=ids))


def detection_batch_get(*, user: AbstractBaseUser, batch_id: int) -> DetectionBatch:
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such batch.")
    try:
        return DetectionBatch.objects.get(owner=user, id=batch_id)
    except (DetectionBatch.DoesNotExist, OverflowError):
        raise Http404("No such batch.") from None


def detection_batch_items(*, user: AbstractBaseUser, batch_id: int) -> QuerySet[Detection]:
    batch = detection_batch_get(user=user, batch_id=batch_id)
    return _with_faces(_scoped(user).filter(batch=batch).order_by("id"))


def _csv_safe(value: object) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection via a file name)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _probability(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


# The export's columns, in order: (name, the value it is made from, how it is written). One
# list: the header, the query's columns and each row come from it.
CSV_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("id", "id", str),
    ("created_at", "created_at", _iso),
    ("original_name", "original_name", _csv_safe),
    ("status", "status", str),
    ("label", "label", str),
    ("fake_probability", "fake_probability", _probability),
    ("threshold", "threshold", _probability),
    ("uncertain_low", "uncertain_low", _probability),
    ("uncertain_high", "uncertain_high", _probability),
    ("model_name", "model_name", _csv_safe),
    ("model_version", "model_version", _csv_safe),
    ("width", "width", str),
    ("height", "height", str),
    ("format", "format", str),
    ("byte_size", "byte_size", str),
    ("sha256", "sha256", str),
    ("finished_at", "finished_at", _iso),
    ("error", "error", _csv_safe),
    # Added at the end, so scripts that read the columns by position keep working. 0 before a
    # verdict and when no face was found (then label is no_face).
    ("face_count", "face_count", str),
    # image or video; appended, like face_count.
    ("kind", "kind", str),
)
CSV_HEADER = [name for name, _value, _write in CSV_COLUMNS]


def detection_csv_rows(
    *, user: AbstractBaseUser, filters: DetectionFilterSet | None = None
) -> Iterator[list[str]]:
    """The header, then one row per detection of `detection_list` with the same filters.

    One query however many rows: plain values (no model instances), each row's face count from
    a subquery on the faces' detection index instead of prefetching every face.
    """
    yield from _csv_rows(_listed(user, filters))


def _csv_rows(listed: QuerySet[Detection]) -> Iterator[list[str]]:
    faces = (
        DetectionFace.objects.filter(detection=OuterRef("pk"))
        .order_by()
        .values("detection")
        .annotate(n=Count("id"))
        .values("n")
    )
    qs = listed.annotate(face_count=Coalesce(Subquery(faces), 0))
    writers = [write for _name, _value, write in CSV_COLUMNS]
    yield CSV_HEADER
    for values in qs.values_list(*(value for _name, value, _write in CSV_COLUMNS)).iterator(
        chunk_size=2000
    ):
        yield [write(v) for write, v in zip(writers, values, strict=True)]


def worker_heartbeats_fresh() -> list[WorkerHeartbeat]:
    """The worker processes that reported in recently, newest first (for /health/)."""
    return list(
        WorkerHeartbeat.objects.filter(
            last_seen__gte=timezone.now() - WORKER_STALE_AFTER
        ).order_by("-last_seen")
    )


# --- Heatmaps -------------------------------------------------------------------------------


def detection_face_heatmap_get(*, user: AbstractBaseUser, detection_id: int, index: int) -> bytes:
    """The heatmap PNG of face ``index`` of the user's detection, in one query; Http404 for
    another user's detection, a missing face and a face without a heatmap alike."""
    return _owned_blob(
        user=user,
        rows=DetectionFace.objects.filter(detection_id=detection_id, index=index),
        field="heatmap",
        missing="No such heatmap.",
    )


def _owned_blob(*, user: AbstractBaseUser, rows: QuerySet, field: str, missing: str) -> bytes:
    """One binary column of a row (among `rows`) of the user's own detection, in one query;
    Http404 alike for another user's detection, a missing row and an empty column."""
    if not getattr(user, "is_authenticated", False):
        raise Http404(missing)
    try:
        blob = (
            rows.filter(detection__owner=user, **{f"{field}__isnull": False})
            .values_list(field, flat=True)
            .first()
        )
    # An id past SQLite's integer range (OverflowError), or not a number at all.
    except (ValueError, TypeError, OverflowError):
        blob = None
    if not blob:
        raise Http404(missing)
    return bytes(blob)


# --- Shared reports -------------------------------------------------------------------------

# A link's token is secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
# Anything else is refused before a query.
_SHARE_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def detection_share_get(*, token: str) -> DetectionShare:
    """The active share a link's token names, with its detection and the detection's faces (not
    the heatmaps' bytes); Http404 for an unknown, revoked or malformed token alike."""
    if not isinstance(token, str) or not 32 <= len(token) <= 64 or set(token) - _SHARE_TOKEN_CHARS:
        raise Http404("No such report.")
    try:
        return (
            DetectionShare.objects.select_related("detection")
            .defer("detection__thumbnail")
            .prefetch_related(
                Prefetch("detection__faces", queryset=DetectionFace.objects.defer("heatmap"))
            )
            .get(token=token, revoked_at__isnull=True)
        )
    except DetectionShare.DoesNotExist:
        raise Http404("No such report.") from None


def detection_share_find(*, user: AbstractBaseUser, detection_id: int) -> DetectionShare | None:
    """The active link of one of the user's detections, or None; Http404 for another user's."""
    return detection_share_active(detection=detection_get(user=user, detection_id=detection_id))


def detection_share_active(*, detection: Detection) -> DetectionShare | None:
    """The active link of a detection already read for its owner (detection_get), or None."""
    return detection.shares.filter(revoked_at__isnull=True).first()


@dataclass(frozen=True)
class VideoReportParts:
    """What a video's report shows instead of the picture: its most suspicious frame (JPEG
    bytes, with that face's box and time), or its poster thumbnail; and its tracks."""

    frame: bytes | None
    box: list[int] | None
    time_s: float | None
    tracks: list[VideoTrack]


def detection_video_report_parts(*, detection: Detection) -> VideoReportParts:
    """The report parts of a video detection already read for its owner or through its link."""
    face = (
        VideoFace.objects.filter(detection=detection, snapshot__isnull=False)
        .order_by("-fake_probability", "sample")
        .only("snapshot", "box", "time_s")
        .first()
    )
    tracks = list(VideoTrack.objects.filter(detection=detection).order_by("index"))
    if face is not None:
        return VideoReportParts(bytes(face.snapshot), face.box, face.time_s, tracks)
    poster = (
        Detection.objects.filter(id=detection.id).values_list("thumbnail", flat=True).first()
    )
    return VideoReportParts(bytes(poster) if poster else None, None, None, tracks)


def detection_heatmaps(*, detection: Detection) -> dict[int, bytes]:
    """The heatmap PNGs of a detection already read for its owner or through its link, by face
    index (faces without one are left out)."""
    rows = DetectionFace.objects.filter(detection=detection, heatmap__isnull=False).values_list(
        "index", "heatmap"
    )
    return {index: bytes(png) for index, png in rows if png}


def detection_heatmap(*, detection: Detection, index: int) -> bytes:
    """One face's heatmap PNG, of a detection already read for its owner or through its link;
    Http404 when the face has none (or no such face can exist: an index out of the column's
    range would be a database error, not an answer)."""
    if not 1 <= index <= 32767:
        raise Http404("No heatmap for this face.")
    png = (
        DetectionFace.objects.filter(detection=detection, index=index, heatmap__isnull=False)
        .values_list("heatmap", flat=True)
        .first()
    )
    if not png:
        raise Http404("No heatmap for this face.")
    return bytes(png)

# --- Batch pages ----------------------------------------------------------------------------


def detection_batch_csv_rows(*, user: AbstractBaseUser, batch_id: int) -> Iterator[list[str]]:
    """The export's header and rows (CSV_COLUMNS) for one batch of the user's, in upload order.

    Http404 at once, when called, for a missing batch and another user's alike: a streamed
    response could no longer turn into a 404 once its rows are read."""
    batch = detection_batch_get(user=user, batch_id=batch_id)
    return _csv_rows(_scoped(user).filter(batch=batch).order_by("id"))

# --- Feedback and model versions ------------------------------------------------------------


def detection_feedback_of(detection: Detection) -> DetectionFeedback | None:
    """The owner's report on a detection already read for them (detection_get reads it in the
    same query), or None."""
    try:
        return detection.feedback
    except DetectionFeedback.DoesNotExist:
        return None


def detection_feedback_for_export(
    *, model_version: str = "", since: datetime | None = None
) -> Iterator[DetectionFeedback]:
    """Every user's reports, for the operator's export (manage.py export_feedback), oldest
    detection first, each with its detection; only those about verdicts of `model_version` and
    made at or after `since` when given."""
    qs = DetectionFeedback.objects.select_related("detection").defer("detection__thumbnail")
    if model_version:
        qs = qs.filter(model_version=model_version)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    return qs.order_by("detection_id").iterator(chunk_size=500)


# The verdict labels and reporters' answers counted per model version on the admin page.
FEEDBACK_COUNTED_LABELS = ("real", "fake", "uncertain")


def detection_feedback_counts() -> list[dict[str, Any]]:
    """Reports per model version (of the verdict reported), for the admin: how many, which
    verdicts were reported (label_<label>), what the reporters said the images are
    (truth_<truth>), and how many real/fake/uncertain verdicts that version made in all
    (`verdicts`, the base of `rate`, reports per 100 verdicts). Most reported first."""
    counts = {"reports": Count("id")}
    for label in FEEDBACK_COUNTED_LABELS:
        counts[f"label_{label}"] = Count("id", filter=Q(label=label))
    for truth in DetectionFeedback.Truth.values:
        counts[f"truth_{truth}"] = Count("id", filter=Q(truth=truth))
    rows = list(
        DetectionFeedback.objects.order_by().values("model_version").annotate(**counts)
    )
    verdicts = dict(
        Detection.objects.filter(
            status=Detection.Status.DONE,
            label__in=FEEDBACK_COUNTED_LABELS,
            model_version__in=[row["model_version"] for row in rows],
        )
        .order_by()
        .values("model_version")
        .annotate(n=Count("id"))
        .values_list("model_version", "n")
    )
    for row in rows:
        row["verdicts"] = verdicts.get(row["model_version"], 0)
        row["rate"] = round(100 * row["reports"] / row["verdicts"], 2) if row["verdicts"] else None
    rows.sort(key=lambda row: (-row["reports"], row["model_version"]))
    return rows


def detection_rechecks(*, detection: Detection) -> list[Detection]:
    """The re-checks of a detection already read for its owner, newest first."""
    return list(
        Detection.objects.filter(owner_id=detection.owner_id, rechecked_from_id=detection.id)
        .defer("thumbnail")
        .order_by("-created_at", "-id")
    )


def detection_rechecked_from(*, detection: Detection) -> Detection | None:
    """The earlier detection a re-check was made from (with its faces), of the same owner;
    None when it is not a re-check or the earlier one was deleted."""
    if detection.rechecked_from_id is None:
        return None
    return (
        _with_faces(Detection.objects.filter(owner_id=detection.owner_id).defer("thumbnail"))
        .filter(id=detection.rechecked_from_id)
        .first()
    )


# --- Video pages ---

# A video's tracks, each with its faces in time order (for the timeline and the API's points);
# the frames' pictures stay behind, `has_snapshot` says which faces have one.
VIDEO_PREFETCH = (
    Prefetch(
        "tracks",
        queryset=VideoTrack.objects.order_by("index").prefetch_related(
            Prefetch(
                "faces",
                queryset=VideoFace.objects.defer("snapshot")
                .annotate(
                    has_snapshot=ExpressionWrapper(
                        Q(snapshot__isnull=False), output_field=BooleanField()
                    )
                )
                .order_by("sample", "id"),
            )
        ),
    ),
)


def _with_tracks_of(detection: Detection) -> Detection:
    detection_tracks_read(detections=[detection])
    return detection


def detection_tracks_read(*, detections: list[Detection]) -> list[Detection]:
    """Reads the tracks of the videos among detections already read for their owner (a page of
    a list), with their faces: two queries whatever the number of videos, none without one (an
    image has no tracks)."""
    videos = [d for d in detections if d.kind == Detection.Kind.VIDEO]
    if videos:
        prefetch_related_objects(videos, *VIDEO_PREFETCH)
    return detections


def detection_video_get(*, user: AbstractBaseUser, detection_id: int) -> Detection:
    """The user's video, with only what serving its file needs (a player asks for many
    ranges); Http404 for an image, a missing id and another user's alike."""
    try:
        return (
            _scoped(user)
            .filter(kind=Detection.Kind.VIDEO)
            .only("id", "owner_id", "kind", "image", "format")
            .get(id=detection_id)
        )
    except (Detection.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such video.") from None


def detection_video_frame_get(*, user: AbstractBaseUser, detection_id: int, face_id: int) -> bytes:
    """The picture the worker kept of one face's frame (JPEG) of the user's video, in one
    query; Http404 for another user's video, a missing face and a face without one alike."""
    return _owned_blob(
        user=user,
        rows=VideoFace.objects.filter(detection_id=detection_id, id=face_id),
        field="snapshot",
        missing="No such frame.",
    )
