"""Every read of detections, always scoped to one user; and the workers' heartbeats."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from detection.filters import DEFAULT_ORDERING, DetectionFilterSet, detection_order
from detection.models import WORKER_STALE_AFTER, Detection, DetectionBatch, WorkerHeartbeat


def _scoped(user: AbstractBaseUser) -> QuerySet[Detection]:
    if not getattr(user, "is_authenticated", False):
        return Detection.objects.none()
    return Detection.objects.filter(owner=user)


def _with_faces(qs: QuerySet[Detection]) -> QuerySet[Detection]:
    # Every verdict is shown with its faces: one query for all the faces of a page, not one per
    # row. (Django sets each face's `detection` from the prefetch, so face boxes cost nothing.)
    return qs.prefetch_related("faces")


def detection_list(
    *, user: AbstractBaseUser, filters: DetectionFilterSet | None = None
) -> QuerySet[Detection]:
    """The user's detections with their faces, newest first, narrowed and ordered by a
    validated filter set."""
    qs = _with_faces(detection_order(_scoped(user), DEFAULT_ORDERING))
    if filters is None:
        return qs
    if not filters.is_valid():
        raise ValueError("detection_list takes a valid filter set; check is_valid() first")
    return filters.filter_queryset(qs)


def detection_get(*, user: AbstractBaseUser, detection_id: int) -> Detection:
    """The user's detection with its faces; Http404 for a missing id and for another user's,
    alike."""
    try:
        return _with_faces(_scoped(user)).get(id=detection_id)
    except (Detection.DoesNotExist, ValueError, TypeError):
        raise Http404("No such detection.") from None


def detection_list_by_ids(*, user: AbstractBaseUser, ids: list[int]) -> QuerySet[Detection]:
    """The user's detections among `ids` (others' ids are silently left out)."""
    return detection_order(_scoped(user).filter(id__in=ids))


def detection_batch_get(*, user: AbstractBaseUser, batch_id: int) -> DetectionBatch:
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such batch.")
    try:
        return DetectionBatch.objects.get(owner=user, id=batch_id)
    except DetectionBatch.DoesNotExist:
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


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _probability(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


# The export's columns, in order: one list, the header and each row come from it.
CSV_COLUMNS: tuple[tuple[str, Callable[[Detection], str]], ...] = (
    ("id", lambda d: str(d.id)),
    ("created_at", lambda d: d.created_at.isoformat()),
    ("original_name", lambda d: _csv_safe(d.original_name)),
    ("status", lambda d: d.status),
    ("label", lambda d: d.label),
    ("fake_probability", lambda d: _probability(d.fake_probability)),
    ("threshold", lambda d: _probability(d.threshold)),
    ("uncertain_low", lambda d: _probability(d.uncertain_low)),
    ("uncertain_high", lambda d: _probability(d.uncertain_high)),
    ("model_name", lambda d: _csv_safe(d.model_name)),
    ("model_version", lambda d: _csv_safe(d.model_version)),
    ("width", lambda d: str(d.width)),
    ("height", lambda d: str(d.height)),
    ("format", lambda d: d.format),
    ("byte_size", lambda d: str(d.byte_size)),
    ("sha256", lambda d: d.sha256),
    ("finished_at", lambda d: _iso(d.finished_at)),
    ("error", lambda d: _csv_safe(d.error)),
    # Added at the end, so scripts that read the columns by position keep working. 0 before a
    # verdict and when no face was found (then label is no_face).
    ("face_count", lambda d: str(len(d.faces.all()))),
)
CSV_HEADER = [name for name, _value in CSV_COLUMNS]


def detection_csv_rows(
    *, user: AbstractBaseUser, filters: DetectionFilterSet | None = None
) -> Iterator[list[str]]:
    """The header, then one row per detection of `detection_list` with the same filters (its
    faces prefetched per chunk of the iterator)."""
    yield CSV_HEADER
    for detection in detection_list(user=user, filters=filters).iterator(chunk_size=500):
        yield [value(detection) for _name, value in CSV_COLUMNS]


def worker_heartbeats_fresh() -> list[WorkerHeartbeat]:
    """The worker processes that reported in recently, newest first (for /health/)."""
    return list(
        WorkerHeartbeat.objects.filter(
            last_seen__gte=timezone.now() - WORKER_STALE_AFTER
        ).order_by("-last_seen")
    )
