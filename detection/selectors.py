"""Every read of detections, always scoped to one user."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from detection.models import Detection, DetectionBatch

# What people and API clients may order by; anything else falls back to newest first.
ORDERINGS = {
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
    "fake_probability": ("fake_probability", "-created_at", "-id"),
    "-fake_probability": ("-fake_probability", "-created_at", "-id"),
    "original_name": ("original_name", "-created_at", "-id"),
    "-original_name": ("-original_name", "-created_at", "-id"),
}
DEFAULT_ORDERING = "-created_at"


@dataclass(frozen=True)
class DetectionFilters:
    label: str = ""
    status: str = ""
    created_after: dt.date | None = None  # inclusive, a calendar day in the site's time zone
    created_before: dt.date | None = None  # inclusive
    search: str = ""  # part of the original file name, case-insensitive
    ordering: str = DEFAULT_ORDERING

    def __post_init__(self) -> None:
        if self.ordering not in ORDERINGS:
            object.__setattr__(self, "ordering", DEFAULT_ORDERING)


def _scoped(user: AbstractBaseUser) -> QuerySet[Detection]:
    if not getattr(user, "is_authenticated", False):
        return Detection.objects.none()
    return Detection.objects.filter(owner=user)


def detection_list(
    *, user: AbstractBaseUser, filters: DetectionFilters | None = None
) -> QuerySet[Detection]:
    filters = filters or DetectionFilters()
    qs = _scoped(user)
    if filters.label:
        qs = qs.filter(label=filters.label)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.created_after:
        qs = qs.filter(created_at__date__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(created_at__date__lte=filters.created_before)
    if filters.search:
        qs = qs.filter(original_name__icontains=filters.search.strip())
    return qs.order_by(*ORDERINGS[filters.ordering])


def detection_get(*, user: AbstractBaseUser, detection_id: int) -> Detection:
    """The user's detection; Http404 for a missing id and for another user's, alike."""
    try:
        return _scoped(user).get(id=detection_id)
    except (Detection.DoesNotExist, ValueError, TypeError):
        raise Http404("No such detection.") from None


def detection_list_by_ids(*, user: AbstractBaseUser, ids: list[int]) -> QuerySet[Detection]:
    """The user's detections among `ids` (others' ids are silently left out)."""
    return _scoped(user).filter(id__in=ids).order_by(*ORDERINGS[DEFAULT_ORDERING])


@dataclass(frozen=True)
class UncertainBand:
    """The current model's "uncertain" band, in percent, for explaining verdicts to people."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return round(self.high - self.low, 1)


def model_uncertain_band() -> UncertainBand | None:
    """From the model card the workers load (card.json; no TensorFlow); None when unknown."""
    from django.conf import settings

    from ml import read_card

    try:
        card = read_card(settings.ML_MODEL_DIR or None)
        return UncertainBand(
            low=round(float(card["uncertain_low"]) * 100, 1),
            high=round(float(card["uncertain_high"]) * 100, 1),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def detection_batch_get(*, user: AbstractBaseUser, batch_id: int) -> DetectionBatch:
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such batch.")
    try:
        return DetectionBatch.objects.get(owner=user, id=batch_id)
    except DetectionBatch.DoesNotExist:
        raise Http404("No such batch.") from None


def detection_batch_items(*, user: AbstractBaseUser, batch_id: int) -> QuerySet[Detection]:
    batch = detection_batch_get(user=user, batch_id=batch_id)
    return _scoped(user).filter(batch=batch).order_by("id")


CSV_HEADER = [
    "id",
    "created_at",
    "original_name",
    "status",
    "label",
    "fake_probability",
    "model_name",
    "model_version",
    "width",
    "height",
    "format",
    "byte_size",
    "sha256",
    "finished_at",
    "error",
]


def _csv_safe(value: object) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection via a file name)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def detection_csv_rows(
    *, user: AbstractBaseUser, filters: DetectionFilters | None = None
) -> Iterator[list[str]]:
    """The header, then one row per detection of `detection_list` with the same filters."""
    yield CSV_HEADER
    for d in detection_list(user=user, filters=filters).iterator(chunk_size=500):
        yield [
            str(d.id),
            d.created_at.isoformat(),
            _csv_safe(d.original_name),
            d.status,
            d.label,
            "" if d.fake_probability is None else f"{d.fake_probability:.4f}",
            _csv_safe(d.model_name),
            _csv_safe(d.model_version),
            str(d.width),
            str(d.height),
            d.format,
            str(d.byte_size),
            d.sha256,
            d.finished_at.isoformat() if d.finished_at else "",
            _csv_safe(d.error),
        ]
