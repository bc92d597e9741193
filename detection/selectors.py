"""Every read of detections, always scoped to one user; and the workers' heartbeats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, QuerySet, Subquery
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
    WorkerHeartbeat,
)


def _scoped(user: AbstractBaseUser) -> QuerySet[Detection]:
    if not getattr(user, "is_authenticated", False):
        return Detection.objects.none()
    return Detection.objects.filter(owner=user)


def _with_faces(qs: QuerySet[Detection]) -> QuerySet[Detection]:
    # Every verdict is shown with its faces: one query for all the faces of a page, not one per
    # row. (Django sets each face's `detection` from the prefetch, so face boxes cost nothing.)
    return qs.prefetch_related("faces")


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
        return _with_faces(_scoped(user)).get(id=detection_id)
    except (Detection.DoesNotExist, ValueError, TypeError):
        raise Http404("No such detection.") from None


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
)
CSV_HEADER = [name for name, _value, _write in CSV_COLUMNS]


def detection_csv_rows(
    *, user: AbstractBaseUser, filters: DetectionFilterSet | None = None
) -> Iterator[list[str]]:
    """The header, then one row per detection of `detection_list` with the same filters.

    One query however many rows: plain values (no model instances), each row's face count from
    a subquery on the faces' detection index instead of prefetching every face.
    """
    faces = (
        DetectionFace.objects.filter(detection=OuterRef("pk"))
        .order_by()
        .values("detection")
        .annotate(n=Count("id"))
        .values("n")
    )
    qs = _listed(user, filters).annotate(face_count=Coalesce(Subquery(faces), 0))
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


# --- [repeats] ------------------------------------------------------------------------------

# --- [share] --------------------------------------------------------------------------------

# --- [pages] --------------------------------------------------------------------------------

# --- [feedback+models] ----------------------------------------------------------------------
