"""Every write of the detection pipeline: create, enqueue, run, sweep, delete, purge."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from detection.models import Detection, DetectionBatch

logger = logging.getLogger(__name__)

Status = Detection.Status

# Messages for people; the technical cause goes to the log.
ERROR_DECODE = "The image could not be decoded by the model, so no verdict was made."
ERROR_GAVE_UP = "The model failed on this image {attempts} times; we stopped trying."
ERROR_NO_MODEL = "No model could be loaded to analyse this image ({attempts} attempts)."
ERROR_WORKER_LOST = "The worker stopped while processing this image {attempts} times; we gave up."


class DetectionRetry(Exception):  # noqa: N818 - a signal to the task, not an error
    """The model failed transiently; the row is pending again and the task should retry."""


# --- create and enqueue ---------------------------------------------------------------------


def detection_create_many(
    *, user: AbstractBaseUser, uploads: Sequence[UploadedFile]
) -> list[Detection]:
    """Validate every upload, then store them all (or nothing) and queue each for the model.

    Raises ValidationError naming each refused file; nothing is stored when one is refused.
    """
    from detection.images import filename_sanitize, image_validate

    if not uploads:
        raise ValidationError("Choose at least one image.", code="no_files")
    max_files = settings.DETECTION_MAX_FILES_PER_REQUEST
    if len(uploads) > max_files:
        raise ValidationError(
            "At most %(max)d images per upload; you sent %(count)d.",
            code="too_many_files",
            params={"max": max_files, "count": len(uploads)},
        )

    cleaned = []
    errors: list[ValidationError] = []
    for upload in uploads:
        name = filename_sanitize(upload.name or "") or "image"
        try:
            cleaned.append((name, image_validate(upload=upload)))
        except ValidationError as exc:
            for message in exc.messages:
                errors.append(
                    ValidationError(
                        "%(file)s: %(reason)s",
                        code=getattr(exc, "code", None) or "invalid",
                        params={"file": name, "reason": message},
                    )
                )
    if errors:
        raise ValidationError(errors)

    written: list[str] = []
    try:
        with transaction.atomic():
            batch = DetectionBatch.objects.create(owner=user) if len(cleaned) > 1 else None
            now = timezone.now()
            detections = []
            for name, clean in cleaned:
                detection = Detection(
                    owner=user,
                    batch=batch,
                    original_name=name,
                    sha256=clean.sha256,
                    width=clean.width,
                    height=clean.height,
                    format=clean.format,
                    byte_size=len(clean.content),
                    removed_metadata=list(clean.removed_metadata),
                    created_at=now,
                    queued_at=now,
                )
                # Through the storage API; the random name comes from detection_upload_to.
                detection.image.save(
                    f"upload{clean.extension}", ContentFile(clean.content), save=False
                )
                written.append(detection.image.name)
                detection.save()
                detections.append(detection)
                transaction.on_commit(
                    lambda detection_id=detection.id: detection_enqueue(detection_id=detection_id),
                    robust=True,
                )
    except BaseException:
        # Files are not transactional: remove what was written before the rollback.
        for name in written:
            detection_file_delete(name=name)
        raise
    return detections


def detection_enqueue(*, detection_id: int) -> bool:
    """Publish the run message. A broker error is logged, never raised: the sweeper retries."""
    from detection.tasks import detection_run_task

    try:
        detection_run_task.apply_async(args=[detection_id])
    except Exception:  # noqa: BLE001 - the upload has succeeded; the sweeper queues it later
        logger.warning(
            "Could not queue detection %s; the sweeper will retry",
            detection_id,
            exc_info=True,
            extra={"detection_id": str(detection_id)},
        )
        return False
    Detection.objects.filter(id=detection_id, status=Status.PENDING).update(
        queued_at=timezone.now()
    )
    return True


def detection_sweep(*, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Queue again the rows whose message was lost: pending too long, or running past the
    hard time limit (their worker died). Returns how many were queued."""
    now = now or timezone.now()
    running_deadline = now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
    stale = Detection.objects.filter(
        Q(status=Status.PENDING, queued_at__lt=now - older_than)
        | Q(status=Status.PENDING, queued_at__isnull=True, created_at__lt=now - older_than)
        | Q(status=Status.RUNNING, started_at__lt=running_deadline)
    ).values_list("id", flat=True)
    count = 0
    for detection_id in list(stale[:1000]):
        if detection_enqueue(detection_id=detection_id):
            count += 1
    if count:
        logger.info("Sweeper queued %d detections again", count)
    return count


# --- run ------------------------------------------------------------------------------------


def _claim(*, detection_id: int, claim_token: str, now: dt.datetime) -> bool:
    """pending -> running, conditionally. Also takes back a running row whose holder is gone:
    the same message redelivered after its worker was killed (same token), or a row running
    for longer than the hard time limit allows (its worker cannot still be working on it)."""
    stale_before = now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimable = (
        Q(status=Status.PENDING)
        | Q(status=Status.RUNNING, claim_token=claim_token)
        | Q(status=Status.RUNNING, started_at__lt=stale_before)
    )
    rows = Detection.objects.filter(claimable, id=detection_id)
    max_attempts = settings.DETECTION_MAX_ATTEMPTS
    # A row that keeps killing its worker (a poison image) is failed instead of run again.
    gave_up = rows.filter(status=Status.RUNNING, attempts__gte=max_attempts).update(
        status=Status.FAILED,
        error=ERROR_WORKER_LOST.format(attempts=max_attempts),
        finished_at=now,
        claim_token="",
    )
    if gave_up:
        logger.error("Detection %s failed: its worker was lost too often", detection_id)
        return False
    return bool(
        rows.update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            claim_token=claim_token,
        )
    )


def detection_run(*, detection_id: int, claim_token: str | None = None) -> Detection | None:
    """Run the model on one detection, at most once per claim; returns the row, or None when
    another run holds it or it is finished (a duplicate or redelivered message).

    Raises DetectionRetry when the model failed and attempts are left (the row is pending).
    """
    from detection.worker import engine_get
    from ml.inference import ImageDecodeError

    token = claim_token or uuid.uuid4().hex
    if not _claim(detection_id=detection_id, claim_token=token, now=timezone.now()):
        logger.info("Detection %s not claimed: finished or held by another run", detection_id)
        return None
    mine = Detection.objects.filter(id=detection_id, status=Status.RUNNING, claim_token=token)
    detection = mine.first()
    if detection is None:  # deleted by its owner in the meantime
        return None

    try:
        engine = engine_get()
    except Exception as exc:  # noqa: BLE001 - any load failure: retried, then failed visibly
        # Not this image's fault: no verdict until a worker has a model.
        return _attempt_failed(detection, mine, exc, ERROR_NO_MODEL)
    try:
        with default_storage.open(detection.image.name, "rb") as fh:
            content = fh.read()
        prediction = engine.predict(content)
    except ImageDecodeError:
        logger.warning("Detection %s: the model could not decode the image", detection_id)
        mine.update(status=Status.FAILED, error=ERROR_DECODE, finished_at=timezone.now())
        detection.refresh_from_db()
        return detection
    except Exception as exc:  # noqa: BLE001 - any model failure: retried, then failed visibly
        return _attempt_failed(detection, mine, exc, ERROR_GAVE_UP)

    finished = mine.update(
        status=Status.DONE,
        label=prediction.label,
        fake_probability=min(max(float(prediction.fake_probability), 0.0), 1.0),
        model_name=prediction.model_name[:100],
        model_version=prediction.model_version[:100],
        face_box=[int(v) for v in prediction.face_box] if prediction.face_box else None,
        inference_ms=float(prediction.inference_ms),
        finished_at=timezone.now(),
        error="",
    )
    if not finished:
        # Another run took the row over meanwhile (ours outlived the time limit): its verdict
        # stands, ours is dropped.
        logger.warning("Detection %s: verdict dropped, the row was taken over", detection_id)
        return None
    detection.refresh_from_db()
    logger.info(
        "Detection %s done: %s %.3f",
        detection_id,
        detection.label,
        detection.fake_probability,
    )
    return detection


def _attempt_failed(
    detection: Detection, mine: QuerySet[Detection], exc: Exception, message: str
) -> Detection:
    """Pending again while attempts are left (raises DetectionRetry), else failed for good."""
    try:
        detection.refresh_from_db()
    except Detection.DoesNotExist:  # deleted while it ran (its file too): nothing to retry
        return detection
    if detection.attempts < settings.DETECTION_MAX_ATTEMPTS:
        logger.warning(
            "Detection %s: attempt %d failed, retrying",
            detection.id,
            detection.attempts,
            exc_info=True,
        )
        mine.update(status=Status.PENDING, claim_token="", queued_at=timezone.now())
        raise DetectionRetry(str(exc)) from exc
    logger.error(
        "Detection %s failed after %d attempts",
        detection.id,
        detection.attempts,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    mine.update(
        status=Status.FAILED,
        error=message.format(attempts=detection.attempts),
        finished_at=timezone.now(),
    )
    detection.refresh_from_db()
    return detection


# --- delete ---------------------------------------------------------------------------------


def detection_file_delete(*, name: str) -> None:
    """Remove a stored image; a file already gone is fine."""
    if not name:
        return
    try:
        default_storage.delete(name)
    except Exception:  # noqa: BLE001 - a leftover file must not break a delete
        logger.warning("Could not delete stored file %s", name, exc_info=True)


def detection_delete(*, user: AbstractBaseUser, detection_id: int) -> None:
    """Delete one of the user's detections and (after commit) its file; 404 for others'."""
    from detection.selectors import detection_get

    detection_get(user=user, detection_id=detection_id).delete()


def detection_delete_many(*, user: AbstractBaseUser, ids: Iterable[int]) -> int:
    """Delete the user's detections among `ids` (others' ids are ignored); returns the count."""
    deleted, per_model = Detection.objects.filter(owner=user, id__in=list(ids)).delete()
    return per_model.get(Detection._meta.label, 0)


def detection_purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete rows and files older than DETECTION_RETENTION_DAYS (0 keeps them forever)."""
    days = settings.DETECTION_RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    deleted, per_model = Detection.objects.filter(
        created_at__lt=now - dt.timedelta(days=days)
    ).delete()
    DetectionBatch.objects.filter(detections__isnull=True).delete()
    count = per_model.get(Detection._meta.label, 0)
    if count:
        logger.info("Purged %d expired detections", count)
    return count
