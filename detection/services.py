"""The web side's writes: intake (validate, store, create rows, enqueue on commit), the sweeper,
deletes and the retention purge. The run itself is the worker's (detection.worker.services)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from detection import publish
from detection.models import UPLOADS_DIR, Detection, DetectionBatch
from detection.selectors import detection_get
from detection.uploads import filename_sanitize, image_validate
from detection.uploads.messages import naming_file

logger = logging.getLogger(__name__)

Status = Detection.Status

# --- create and enqueue ---------------------------------------------------------------------


def detection_create_many(
    *, user: AbstractBaseUser, uploads: Sequence[UploadedFile]
) -> list[Detection]:
    """Validate every upload, then store them all (or nothing) and queue each for the model.

    Raises ValidationError naming each refused file; nothing is stored when one is refused.
    """
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
            errors.extend(naming_file(file=name, error=exc))
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
    """Publish the run message. A broker error is logged, never raised: the sweeper retries.

    The row records when (queued_at) and which message (message_id) was published last, so the
    sweeper can tell a message still in the broker from one it lost.
    """
    try:
        message_id = publish.detection_run_publish(detection_id=detection_id)
    except Exception:  # noqa: BLE001 - the upload has succeeded; the sweeper queues it later
        logger.warning(
            "Could not queue detection %s; the sweeper will retry",
            detection_id,
            exc_info=True,
            extra={"detection_id": str(detection_id)},
        )
        return False
    Detection.objects.filter(id=detection_id, status__in=_SWEPT_STATUSES).update(
        queued_at=timezone.now(), message_id=message_id or ""
    )
    return True


_SWEPT_STATUSES = (Status.PENDING, Status.RUNNING)
# Publishes per sweep: after a long outage the queue refills over a few sweeps, not at once.
_SWEEP_MAX_PUBLISHES = 1000


def detection_sweep(*, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Queue again the rows whose message the broker lost; returns how many were queued.

    A row is a candidate when it is pending and its last publish (queued_at, or created_at if
    no publish ever succeeded) is older than `older_than`, or running past the hard time limit
    (its worker died). A candidate is published again only when the broker no longer holds a
    message for it (publish.run_messages_held: queued, or delivered and unacknowledged): the
    message was lost (a Redis restart without persistence, a publish that failed, a message
    acknowledged by a worker that left the row pending, an embedded-broker message whose worker
    died). A row still waiting behind a backlog keeps its one message however long it waits.

    When the broker cannot be asked (another transport) the rule falls back to age: a candidate
    is published again only once its last publish is older than the broker's visibility timeout
    too. If asking fails (the broker is down), nothing is published: it would fail as well.

    Only publishes older than `older_than` are judged, so a message published while the sweep
    runs (after the broker was read) belongs to no candidate. A message a worker is taking in
    the same instant (between kombu's queue and its unacked hash) may be missed and sent twice,
    as may a lost one by two sweeps at once: safe, the worker's conditional claim gives one row
    one model call. At most _SWEEP_MAX_PUBLISHES are published per sweep.
    """
    now = now or timezone.now()
    running_deadline = now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
    candidates = Detection.objects.filter(
        Q(status=Status.PENDING, queued_at__lt=now - older_than)
        | Q(status=Status.PENDING, queued_at__isnull=True, created_at__lt=now - older_than)
        | Q(status=Status.RUNNING, started_at__lt=running_deadline)
    ).order_by()
    if not candidates.exists():
        return 0
    try:
        held = publish.run_messages_held()
    except Exception:  # noqa: BLE001 - the broker is down: publishing would fail as well
        logger.warning("Sweeper could not read the broker; nothing queued", exc_info=True)
        return 0
    published_before = now - max(
        older_than, dt.timedelta(seconds=settings.CELERY_BROKER_VISIBILITY_TIMEOUT)
    )
    lost: list[int] = []
    # Every candidate is looked at, not the first thousand: held rows keep their old queued_at,
    # so a long backlog would otherwise hide a lost message behind it for as long as it lasts.
    rows = candidates.values_list("id", "message_id", "claim_token", "queued_at", "created_at")
    for detection_id, message_id, claim_token, queued_at, created_at in rows.iterator(
        chunk_size=2000
    ):
        if held is None:
            gone = (queued_at or created_at) < published_before
        else:
            gone = not ({message_id, claim_token} - {""}) & held
        if gone:
            lost.append(detection_id)
            if len(lost) >= _SWEEP_MAX_PUBLISHES:
                break  # the rest next time
    count = 0
    for detection_id in lost:
        if detection_enqueue(detection_id=detection_id):
            count += 1
    if count:
        logger.info("Sweeper queued %d detections again", count)
    return count


def detection_orphan_files_delete(
    *, older_than: dt.timedelta, now: dt.datetime | None = None
) -> int:
    """Delete stored uploads that no row refers to, once they are older than `older_than`.

    Files are not transactional: an upload whose rows were rolled back by an enclosing
    transaction (or whose process died before commit) leaves its file behind. The grace period
    keeps the files of transactions still open. Returns how many files were removed.
    """
    now = now or timezone.now()
    cutoff = now - older_than
    removed = 0
    for names in _stored_upload_batches(root=UPLOADS_DIR):
        referenced = set(
            Detection.objects.filter(image__in=names).values_list("image", flat=True)
        )
        for name in names:
            if name in referenced:
                continue
            try:
                if default_storage.get_modified_time(name) >= cutoff:
                    continue
            # Gone meanwhile, or a storage that cannot say: leave it. Any error, not only
            # OSError: an object store raises its own (botocore's ClientError for a 404).
            except Exception:  # noqa: BLE001, S112
                continue
            detection_file_delete(name=name)
            removed += 1
    if removed:
        logger.info("Removed %d stored files that no detection refers to", removed)
    return removed


def _stored_upload_batches(*, root: str, size: int = 500) -> Iterator[list[str]]:
    """Storage names below `root`, a few hundred at a time (one query per batch)."""
    batch: list[str] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            dirs, files = default_storage.listdir(folder)
        except (OSError, NotImplementedError):
            continue  # no uploads yet
        pending.extend(f"{folder}/{d}" for d in dirs)
        for file in files:
            batch.append(f"{folder}/{file}")
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


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


# --- [repeats] ------------------------------------------------------------------------------

# --- [share] --------------------------------------------------------------------------------

# --- [feedback+models] ----------------------------------------------------------------------
