"""The web side's writes: intake (validate, store, create rows, enqueue on commit), the sweeper,
deletes and the retention purge. The run itself is the worker's (detection.worker.services)."""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from PIL import Image

from detection import publish
from detection.model_cards import model_version_current
from detection.models import (
    PRIVATE_NO_IMAGE,
    UPLOADS_DIR,
    Detection,
    DetectionBatch,
    DetectionFace,
    DetectionFeedback,
    DetectionShare,
)
from detection.selectors import detection_feedback_for_export, detection_get
from detection.uploads import CleanVideo, filename_sanitize, upload_validate
from detection.uploads.fingerprint import (
    NEAR_DUPLICATE_BITS,
    image_phash,
    image_small,
    image_thumbnail,
)
from detection.uploads.messages import naming_file
from detection.web_model import probability_or_none, web_model_get

logger = logging.getLogger(__name__)

Status = Detection.Status

def _private_refuse(detection: Detection, *, action: str) -> None:
    """Refuse, as a conflict with the detection's state (code "private_check"), what needs the
    stored image when the detection is a private check (it has none)."""
    if detection.is_private:
        raise ValidationError(
            "A private check cannot be %(action)s: the image never left the browser that "
            "checked it, so the server does not have it.",
            code="private_check",
            params={"action": action},
        )

# --- create and enqueue ---------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateFile:
    """A file of an upload with the same bytes as an earlier file of the same upload."""

    name: str
    same_as: str


class DetectionsCreated(list[Detection]):
    """The detections an upload made, in upload order (a list), and the files left out because
    they were the same bytes as an earlier file of that upload (analysed once, not twice)."""

    def __init__(self, detections: Iterable[Detection], duplicates: Sequence[DuplicateFile]):
        super().__init__(detections)
        self.duplicates: list[DuplicateFile] = list(duplicates)


def detection_create_many(
    *, user: AbstractBaseUser, uploads: Sequence[UploadedFile]
) -> DetectionsCreated:
    """Validate every upload, then store them all (or nothing) and queue each for the model.

    An image this user checked before (the same bytes) with the model that serves now gets that
    verdict at once (``reused_from``), without a model run; the owner may run it again
    (``detection_rerun``). The most recent earlier check of a very similar image (perceptual
    hash) is linked (``similar_to``). Both look at the user's own detections only. A file that
    repeats an earlier file of the same upload is analysed once and reported in ``duplicates``.

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
    first_name: dict[str, str] = {}  # sha256 -> the first file name with those bytes
    duplicates: list[DuplicateFile] = []
    for upload in uploads:
        name = filename_sanitize(upload.name or "") or "image"
        try:
            clean = upload_validate(upload=upload)  # an image or a video, by content
        except ValidationError as exc:
            errors.extend(naming_file(file=name, error=exc))
            continue
        if clean.sha256 in first_name:
            duplicates.append(DuplicateFile(name=name, same_as=first_name[clean.sha256]))
            continue
        first_name[clean.sha256] = name
        cleaned.append((name, clean))
    if errors:
        raise ValidationError(errors)

    # Repeats and near-duplicates are images' (a video's verdict is per track, not copied).
    images = [clean for _name, clean in cleaned if not isinstance(clean, CleanVideo)]
    earlier = _repeats_find(user=user, sha256s=[clean.sha256 for clean in images])
    similar = _similar_find(
        user=user,
        phashes=[clean.phash for clean in images if clean.sha256 not in earlier],
    )
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
                    provenance=clean.provenance,
                    phash=clean.phash,
                    thumbnail=clean.thumbnail or None,
                    created_at=now,
                    queued_at=now,
                    **_video_fields(clean),
                )
                # Through the storage API; the random name comes from detection_upload_to.
                detection.image.save(
                    f"upload{clean.extension}", ContentFile(clean.content), save=False
                )
                written.append(detection.image.name)
                root = earlier.get(clean.sha256)
                if root is not None:
                    _verdict_copy(detection=detection, root=root, now=now)
                else:
                    if not isinstance(clean, CleanVideo):
                        detection.similar_to_id = similar.get(clean.phash)
                    detection.save()
                    transaction.on_commit(
                        lambda detection_id=detection.id: detection_enqueue(
                            detection_id=detection_id
                        ),
                        robust=True,
                    )
                detections.append(detection)
    except BaseException:
        # Files are not transactional: remove what was written before the rollback.
        for name in written:
            detection_file_delete(name=name)
        raise
    return DetectionsCreated(detections, duplicates)


def _repeats_find(*, user: AbstractBaseUser, sha256s: list[str]) -> dict[str, Detection]:
    """sha256 -> the user's most recent verdict on those bytes by the model that serves now (the
    first check, not a copy of it), with its faces; a verdict of another model is no repeat."""
    if not sha256s:
        return {}
    current = model_version_current()
    if not current:
        return {}
    rows = (
        Detection.objects.filter(
            owner=user,
            sha256__in=sha256s,
            kind=Detection.Kind.IMAGE,
            status=Status.DONE,
            model_version=current,
            reused_from__isnull=True,
        )
        .defer("thumbnail")
        .prefetch_related("faces")
        .order_by("-created_at", "-id")
    )
    found: dict[str, Detection] = {}
    for row in rows:
        found.setdefault(row.sha256, row)
    return found


def _similar_find(*, user: AbstractBaseUser, phashes: list[int]) -> dict[int, int]:
    """phash -> the id of the user's most recent detection whose image hash is within
    NEAR_DUPLICATE_BITS of it. One query reads the user's hashes and numpy compares them all
    at once: about 50 ms per upload for a user with 100,000 detections on PostgreSQL, nearly
    all of it reading the rows (the comparison is 0.1 ms)."""
    if not phashes:
        return {}
    rows = list(
        Detection.objects.filter(owner=user, phash__isnull=False, kind=Detection.Kind.IMAGE)
        .order_by("-created_at", "-id")
        .values_list("id", "phash")
    )
    if not rows:
        return {}
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    hashes = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    found: dict[int, int] = {}
    for phash in set(phashes):
        distance = np.bitwise_count(hashes ^ np.int64(phash))
        near = np.flatnonzero(distance <= NEAR_DUPLICATE_BITS)
        if near.size:
            found[phash] = int(ids[near[0]])  # rows are newest first
    return found


def _verdict_copy(*, detection: Detection, root: Detection, now: dt.datetime) -> None:
    """Save ``detection`` done with ``root``'s verdict and faces (heatmaps included): no model
    run, nothing queued. Heatmaps the worker is still making for ``root`` are left pending
    here; the worker fills (or fails) them with root's (detection.worker.services)."""
    if root.heatmap_status == Detection.HeatmapStatus.PENDING:
        # Lock root's row, which the worker's heatmap save updates first: either that save has
        # committed and its heatmaps are read again now, or it waits for this transaction and
        # then finds this copy pending. Without the lock a save between the read and the commit
        # would miss the copy.
        root = (
            Detection.objects.select_for_update()
            .defer("thumbnail")
            .prefetch_related("faces")
            .filter(id=root.id)
            .first()
        ) or root
    detection.status = Status.DONE
    detection.reused_from = root
    for name in (
        "label",
        "fake_probability",
        "threshold",
        "uncertain_low",
        "uncertain_high",
        "model_name",
        "model_version",
        "face_box",
        "deciding_face",
    ):
        setattr(detection, name, getattr(root, name))
    # As root's reads: pending stays pending (filled later), pending past the time limit failed.
    detection.heatmap_status = root.heatmap_state
    detection.queued_at = None
    detection.started_at = detection.finished_at = now
    detection.save()
    DetectionFace.objects.bulk_create(
        DetectionFace(
            detection=detection,
            index=face.index,
            box=face.box,
            fake_probability=face.fake_probability,
            label=face.label,
            detector_confidence=face.detector_confidence,
            heatmap=face.heatmap,
            heatmap_box=face.heatmap_box,
        )
        for face in root.faces.all()
    )


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


# --- Repeats and thumbnails -----------------------------------------------------------------


def detection_thumbnail_get(*, user: AbstractBaseUser, detection_id: int) -> bytes:
    """The WebP thumbnail of one of the user's detections (Http404 for others'). Rows stored
    before thumbnails existed get theirs (and their image hash) made from the stored image on
    first request and kept."""
    try:
        row = (
            Detection.objects.filter(owner=user, id=detection_id)
            .values_list("thumbnail", "image", "kind")
            .first()
            if getattr(user, "is_authenticated", False)
            else None
        )
    except OverflowError:  # an id past SQLite's integer range
        row = None
    if row is None:
        raise Http404("No such detection.")
    thumbnail, name, kind = row
    if kind == Detection.Kind.PRIVATE:
        raise Http404(PRIVATE_NO_IMAGE)
    if thumbnail:
        return bytes(thumbnail)
    try:
        with default_storage.open(name, "rb") as fh, Image.open(fh) as img:
            img.load()
            small = image_small(img)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # The stored copy is ours and was decoded at intake: this is a storage problem.
        raise Http404("The stored image cannot be read.") from exc
    thumbnail = image_thumbnail(small)
    Detection.objects.filter(id=detection_id, thumbnail__isnull=True).update(
        thumbnail=thumbnail, phash=image_phash(small)
    )
    return thumbnail


def detection_rerun(*, user: AbstractBaseUser, detection_id: int) -> Detection:
    """Run the model again on one of the user's detections whose verdict was reused from an
    earlier check of the same image, or that failed: pending again, queued on commit. Others'
    are a 404; a detection that ran and is done (or still running) is refused with a
    ValidationError (re-checking with a newer model keeps the old verdict: detection_recheck)."""
    detection = detection_get(user=user, detection_id=detection_id)
    _private_refuse(detection, action="run again on the server")
    rerunnable = detection.status == Status.FAILED or (
        detection.status == Status.DONE and detection.reused_from_id is not None
    )
    if not rerunnable:
        raise ValidationError(
            "Only a reused or failed verdict can be run again.", code="not_rerunnable"
        )
    now = timezone.now()
    with transaction.atomic():
        updated = Detection.objects.filter(
            id=detection.id, status=detection.status, owner=user
        ).update(
            status=Status.PENDING,
            attempts=0,
            claim_token="",
            message_id="",
            error="",
            label="",
            fake_probability=None,
            threshold=None,
            uncertain_low=None,
            uncertain_high=None,
            model_name="",
            model_version="",
            face_box=None,
            deciding_face=None,
            inference_ms=None,
            heatmap_status="",
            reused_from=None,
            frames_done=0,
            progress_points=[],
            queued_at=now,
            started_at=None,
            finished_at=None,
        )
        if updated:
            DetectionFace.objects.filter(detection_id=detection.id).delete()
            transaction.on_commit(
                lambda: detection_enqueue(detection_id=detection.id), robust=True
            )
    return detection_get(user=user, detection_id=detection.id)

# --- Shared reports -------------------------------------------------------------------------


def detection_share_create(*, user: AbstractBaseUser, detection_id: int) -> DetectionShare:
    """The detection's read-only link: its active one if it has one (a second click must not
    scatter several live links), else a new one with a fresh 256-bit token. Http404 for another
    user's detection, as everywhere."""
    with transaction.atomic():
        # Locks the detection's row (PostgreSQL): two clicks at once make one link, not two.
        detection = detection_get(user=user, detection_id=detection_id)
        _private_refuse(detection, action="shared")
        Detection.objects.select_for_update().filter(id=detection.id).first()
        share = detection.shares.filter(revoked_at__isnull=True).first()
        if share is None:
            share = DetectionShare.objects.create(
                detection=detection, token=secrets.token_urlsafe(32)
            )
    return share


def detection_share_revoke(*, user: AbstractBaseUser, detection_id: int) -> int:
    """Revoke the detection's active link(s) for good: the token is never honoured again (a new
    link gets a new token). Returns how many were revoked; Http404 for another user's."""
    detection = detection_get(user=user, detection_id=detection_id)
    return detection.shares.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())

# --- Feedback and model versions ------------------------------------------------------------

# The verdicts a person can report as wrong: "no face" says nothing about real or fake.
FEEDBACK_LABELS = (Detection.Label.REAL, Detection.Label.FAKE, Detection.Label.UNCERTAIN)
FEEDBACK_NOTE_MAX = 2000
Truth = DetectionFeedback.Truth


def _feedback_check(*, detection: Detection, truth: str, note: str) -> None:
    # A report is tested against its image (export_feedback): a private check has none.
    _private_refuse(detection, action="reported as wrong")
    if detection.status != Status.DONE:
        raise ValidationError(
            "This detection has no verdict yet, so there is nothing to report.", code="no_verdict"
        )
    if detection.label not in FEEDBACK_LABELS:
        raise ValidationError(
            "No face was found, so there is no real or fake verdict to report as wrong.",
            code="no_verdict",
        )
    if truth not in Truth.values:
        raise ValidationError(
            {"truth": ValidationError("Say what the image really is: real, fake or unknown.",
                                      code="invalid_choice")}
        )
    if truth == detection.label:
        raise ValidationError(
            {"truth": ValidationError(
                "The verdict already says %(label)s. Choose what the image really is, or "
                "“unknown” if you only know that the verdict is wrong.",
                code="agrees_with_verdict",
                params={"label": detection.label},
            )}
        )
    if detection.label == Detection.Label.UNCERTAIN and truth == Truth.UNKNOWN:
        raise ValidationError(
            {"truth": ValidationError(
                "The verdict is “uncertain”: say whether the image is real or fake.",
                code="uncertain_needs_truth",
            )}
        )
    if len(note) > FEEDBACK_NOTE_MAX:
        raise ValidationError(
            {"note": ValidationError(
                "Keep the note to %(max)d characters; it has %(count)d.",
                code="max_length",
                params={"max": FEEDBACK_NOTE_MAX, "count": len(note)},
            )}
        )


def detection_feedback_submit(
    *, user: AbstractBaseUser, detection_id: int, truth: str, note: str = ""
) -> tuple[DetectionFeedback, bool]:
    """Report the verdict of one of the user's detections as wrong, saying what the image really
    is (`truth`: real, fake or unknown) with an optional note. A new report replaces the earlier
    one. The verdict and the model that made it are copied into the report, so that counts per
    model version survive a later re-run.

    Returns the report and whether it is the detection's first (False: it replaced one). Raises
    ValidationError with a message for people (per field where it is about one); Http404 for
    another user's detection.
    """
    detection = detection_get(user=user, detection_id=detection_id)
    note = (note or "").strip()
    _feedback_check(detection=detection, truth=truth, note=note)
    return DetectionFeedback.objects.update_or_create(
        detection=detection,
        defaults={
            "truth": truth,
            "note": note,
            "label": detection.label,
            "fake_probability": detection.fake_probability,
            "model_name": detection.model_name,
            "model_version": detection.model_version,
            "created_at": timezone.now(),
        },
    )


def detection_feedback_withdraw(*, user: AbstractBaseUser, detection_id: int) -> bool:
    """Withdraw the user's report on a detection; False when there was none. Http404 for
    another user's detection."""
    detection = detection_get(user=user, detection_id=detection_id)
    deleted, _per_model = DetectionFeedback.objects.filter(detection=detection).delete()
    return deleted > 0


def detection_recheck(*, user: AbstractBaseUser, detection_id: int) -> tuple[Detection, bool]:
    """Judge one of the user's finished detections again with the model that serves new
    verdicts now (model_cards.model_version_current), as a new detection linked to it by
    `rechecked_from`, so both verdicts stay and can be shown side by side.

    The new row gets its own copy of the stored image (deleting either row deletes only its own
    file) and the old row's intake facts; it is queued once the transaction commits. A re-check
    already waiting, or already made with the current model, is returned instead of a second
    one (a double click queues one run). Returns the re-check and whether it is new.

    Raises ValidationError when the detection has no verdict yet, already comes from the current
    model, or the current model cannot be told; Http404 for another user's detection.
    """
    detection = detection_get(user=user, detection_id=detection_id)
    _private_refuse(detection, action="re-checked on the server")
    if detection.status != Status.DONE:
        raise ValidationError(
            "Only a finished verdict can be re-checked; this detection is %(status)s.",
            code="not_done",
            params={"status": detection.get_status_display().lower()},
        )
    current = model_version_current()
    if not current:
        raise ValidationError(
            "The version of the current model cannot be read right now (no worker has reported "
            "one and the model folder has no card), so nothing was queued. Try again later.",
            code="model_unknown",
        )
    if detection.model_version == current:
        raise ValidationError(
            "This verdict already comes from the current model (%(version)s).",
            code="already_current",
            params={"version": current},
        )
    written = ""
    try:
        with transaction.atomic():
            # Locks the old row (PostgreSQL): two clicks at once make one re-check, not two.
            Detection.objects.select_for_update().filter(id=detection.id).first()
            existing = (
                Detection.objects.filter(owner=user, rechecked_from=detection)
                .filter(
                    Q(status__in=_SWEPT_STATUSES) | Q(status=Status.DONE, model_version=current)
                )
                .order_by("-created_at", "-id")
                .first()
            )
            if existing is not None:
                return detection_get(user=user, detection_id=existing.id), False
            try:
                with default_storage.open(detection.image.name, "rb") as fh:
                    content = fh.read()
            except Exception:  # noqa: BLE001 - any storage's "not found" (OSError, ClientError)
                logger.warning("Stored image of detection %s unreadable", detection.id,
                               exc_info=True)
                raise ValidationError(
                    "The stored image of this detection cannot be read, so it cannot be "
                    "re-checked.",
                    code="image_missing",
                ) from None
            now = timezone.now()
            recheck = Detection(
                owner=user,
                original_name=detection.original_name,
                sha256=detection.sha256,
                width=detection.width,
                height=detection.height,
                format=detection.format,
                byte_size=detection.byte_size,
                removed_metadata=list(detection.removed_metadata or []),
                provenance=detection.provenance,
                phash=detection.phash,
                thumbnail=detection.thumbnail,
                rechecked_from=detection,
                created_at=now,
                queued_at=now,
            )
            # A new file under a new random name (detection_upload_to): each row owns its file.
            extension = Path(detection.image.name).suffix.lower() or ".img"
            recheck.image.save(f"recheck{extension}", ContentFile(content), save=False)
            written = recheck.image.name
            recheck.save()
            transaction.on_commit(
                lambda: detection_enqueue(detection_id=recheck.id), robust=True
            )
    except BaseException:
        # Files are not transactional: remove the copy when its row was rolled back.
        detection_file_delete(name=written)
        raise
    return detection_get(user=user, detection_id=recheck.id), True


# The files export_feedback writes: "<detection id>-<16 hex of its sha256><extension>". Only
# files named so are ever removed from an export folder.
EXPORT_FILE_NAME = re.compile(r"^(\d+)-([0-9a-f]{16})\.(jpg|jpeg|png|webp)$")
EXPORT_MANIFEST = "manifest.csv"
EXPORT_COLUMNS = (
    "id", "truth", "label", "fake_probability", "model_version", "note",
    "file", "model_name", "sha256", "reported_at",
)  # fmt: skip


@dataclass
class FeedbackExport:
    """What detection_feedback_export did, for the command to print."""

    written: int = 0  # files written now
    kept: int = 0  # files already there from an earlier run
    removed: int = 0  # files of an earlier run no longer selected
    unknown: int = 0  # reports that do not say real or fake: skipped
    missing: int = 0  # reports whose stored image could not be read: skipped
    per_truth: dict[str, int] = field(default_factory=lambda: {"real": 0, "fake": 0})
    others: list[str] = field(default_factory=list)  # files not written by the export


def _spreadsheet_safe(text: str) -> str:
    # A note is free text: a spreadsheet must not run it as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def detection_feedback_export(
    *, out_dir: Path, model_version: str = "", since: dt.datetime | None = None
) -> FeedbackExport:
    """Write the images of the reported verdicts into out_dir/real and out_dir/fake by what the
    reporter said they are (the folder layout the ML tools read, ml.data.discover), with
    out_dir/manifest.csv describing each. Reports that say "unknown" are skipped and counted.

    The stored copy is written (metadata already removed), read through the default storage.
    Rerunning is safe: a file already there is kept, and the files an earlier run wrote that are
    no longer selected (a withdrawn or changed report, a deleted detection, other filters) are
    removed, so the folders always hold exactly this selection. Other files are left alone and
    listed in `others`.
    """
    result = FeedbackExport()
    folders = {truth: out_dir / truth for truth in ("real", "fake")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, set[str]] = {truth: set() for truth in folders}
    manifest_rows: list[list[str]] = []
    for report in detection_feedback_for_export(model_version=model_version, since=since):
        detection = report.detection
        if report.truth not in folders:
            result.unknown += 1
            continue
        extension = Path(detection.image.name).suffix.lower()
        name = f"{detection.id}-{detection.sha256[:16]}{extension}"
        if not EXPORT_FILE_NAME.match(name):
            logger.warning("Detection %s has an unexpected stored name", detection.id)
            result.missing += 1
            continue
        target = folders[report.truth] / name
        if target.is_file():
            result.kept += 1
        else:
            try:
                with default_storage.open(detection.image.name, "rb") as fh:
                    content = fh.read()
            except Exception:  # noqa: BLE001 - any storage's "not found"; the rest goes on
                logger.warning("Stored image of detection %s unreadable", detection.id,
                               exc_info=True)
                result.missing += 1
                continue
            # Written whole, then renamed: a file of that name is always complete, and the
            # dot keeps a half-written one out of the ML tools' discovery.
            partial = target.with_name(f".{name}.part")
            partial.write_bytes(content)
            os.replace(partial, target)
            result.written += 1
        wanted[report.truth].add(name)
        result.per_truth[report.truth] += 1
        manifest_rows.append([
            str(detection.id),
            report.truth,
            report.label,
            "" if report.fake_probability is None else f"{report.fake_probability:.4f}",
            _spreadsheet_safe(report.model_version),
            _spreadsheet_safe(report.note),
            f"{report.truth}/{name}",
            _spreadsheet_safe(report.model_name),
            detection.sha256,
            report.created_at.isoformat(),
        ])  # fmt: skip
    for truth, folder in folders.items():
        for path in sorted(folder.iterdir()):
            if path.name in wanted[truth]:
                continue
            if EXPORT_FILE_NAME.match(path.name) and path.is_file():
                path.unlink()
                result.removed += 1
            elif not path.name.startswith("."):
                result.others.append(f"{truth}/{path.name}")
    partial = out_dir / f".{EXPORT_MANIFEST}.part"
    with open(partial, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(manifest_rows)
    os.replace(partial, out_dir / EXPORT_MANIFEST)
    return result


# --- Video uploads ---


def _video_fields(clean: object) -> dict[str, object]:
    """The Detection fields only a video has (none for an image), from its checked upload."""
    if not isinstance(clean, CleanVideo):
        return {}
    return {
        "kind": Detection.Kind.VIDEO,
        "duration_s": clean.duration_s,
        "frame_rate": clean.frame_rate,
        "frame_count": clean.frame_count,
        "video_codec": clean.video_codec,
    }


# --- Private checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivateFace:
    """One face of a verdict a browser made: what it reports, before the server judges it."""

    box: tuple[int, int, int, int]
    fake_probability: float
    detector_confidence: float | None = None


def _private_faces(
    *, faces: Sequence[PrivateFace | dict], width: int, height: int, max_faces: int
) -> list[PrivateFace]:
    """The faces a browser reported, checked (the API's serializer checks their shape too; this
    keeps the rules whoever calls), largest first as the server numbers them."""
    if not isinstance(faces, list | tuple):
        raise ValidationError(
            {"faces": ValidationError("Send a list of faces.", code="not_a_list")}
        )
    if len(faces) > max_faces:
        raise ValidationError(
            {"faces": ValidationError(
                "At most %(max)d faces are judged per image; %(count)d were sent.",
                code="too_many_faces",
                params={"max": max_faces, "count": len(faces)},
            )}
        )
    checked: list[PrivateFace] = []
    errors: dict[str, ValidationError] = {}
    for number, face in enumerate(faces):
        if isinstance(face, dict):
            box, p, confidence = (
                face.get("box"), face.get("fake_probability"), face.get("detector_confidence")
            )
        else:
            box, p, confidence = face.box, face.fake_probability, face.detector_confidence
        where = f"faces[{number}]"
        if (
            not isinstance(box, list | tuple)
            or len(box) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) for v in box)
        ):
            errors[f"{where}.box"] = ValidationError(
                "A box is four whole numbers: [x, y, width, height].", code="invalid_box"
            )
        else:
            x, y, w, h = box
            # One pixel of slack past the far edges: the face step (ml.faces, mtcnn.js alike)
            # rounds a clipped box's corner and its size separately, which can add one.
            if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width + 1 or y + h > height + 1:
                errors[f"{where}.box"] = ValidationError(
                    "The box must lie inside the %(width)d × %(height)d image, with a positive "
                    "width and height.",
                    code="box_outside",
                    params={"width": width, "height": height},
                )
        probability = probability_or_none(p)
        if probability is None:
            errors[f"{where}.fake_probability"] = ValidationError(
                "P(fake) must be a number from 0 to 1.", code="invalid_probability"
            )
        if confidence is not None and probability_or_none(confidence) is None:
            errors[f"{where}.detector_confidence"] = ValidationError(
                "The detector's confidence must be a number from 0 to 1, or null.",
                code="invalid_probability",
            )
        if not any(key.startswith(f"{where}.") for key in errors):
            checked.append(
                PrivateFace(
                    box=tuple(int(v) for v in box),
                    fake_probability=probability,
                    detector_confidence=None if confidence is None else float(confidence),
                )
            )
    if errors:
        raise ValidationError(errors)
    # Numbered as the server numbers faces: largest first (stable, so a browser that already
    # sends them so keeps its numbers).
    checked.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
    return checked


def detection_private_save(
    *,
    owner: AbstractBaseUser,
    model_version: str,
    width: int,
    height: int,
    faces: Sequence[PrivateFace | dict],
    inference_ms: float,
) -> Detection:
    """Save a verdict the owner's browser made on the private check page, without the image
    (it never left their device), as a done Detection of kind "private".

    Only what the browser measured is taken from it: the image's size, each face's box, P(fake)
    and detector confidence, and how long it took. The labels are the server's: each face's from
    its P(fake) by the browser model's decision rule (web_model: the manifest's threshold and
    uncertain band), the image's from its most suspicious face, "no_face" (no probability)
    without a face; a label a client sends is never read. The row says which model made it
    (model_name/model_version from the manifest) and stores that rule with it, as the worker
    does. Intake fields without an image stay empty: original_name, sha256 and format blank,
    byte_size 0, no thumbnail, no perceptual hash, no provenance, no heatmaps.

    Raises ValidationError: code "model_unavailable" when no browser model is installed,
    "stale_model" when `model_version` is not the one the page serves now (a page loaded before
    a new export), and per field ("width", "faces[0].box", ...) for malformed input.
    """
    model = web_model_get()
    if model is None:
        raise ValidationError(
            "The private check's browser model is not installed on this server, so its "
            "verdicts cannot be saved.",
            code="model_unavailable",
        )
    if not isinstance(model_version, str) or model_version != model.version:
        raise ValidationError(
            "This verdict was made by browser model %(sent)s, but the private check now serves "
            "%(current)s: reload the page and check the image again to save a verdict.",
            code="stale_model",
            params={"sent": str(model_version)[:100] or "(none)", "current": model.version},
        )
    errors: dict[str, ValidationError] = {}
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors[name] = ValidationError(
                "The image's %(name)s in pixels: a whole number, at least 1.",
                code="invalid_size",
                params={"name": name},
            )
    if not errors and width * height > settings.DETECTION_MAX_PIXELS:
        errors["width"] = ValidationError(
            "%(width)d × %(height)d is more than the %(max)d pixels an image may have.",
            code="too_many_pixels",
            params={"width": width, "height": height, "max": settings.DETECTION_MAX_PIXELS},
        )
    ms = inference_ms
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms) or ms < 0:
        errors["inference_ms"] = ValidationError(
            "The time the browser took, in milliseconds: a number, at least 0.",
            code="invalid_time",
        )
    if errors:
        raise ValidationError(errors)
    checked = _private_faces(
        faces=faces,
        width=width,
        height=height,
        max_faces=min(model.max_faces, settings.DETECTION_MAX_FACES),
    )
    labels = [model.label_for(face.fake_probability) for face in checked]
    deciding = (
        max(range(len(checked)), key=lambda i: checked[i].fake_probability) if checked else None
    )
    now = timezone.now()
    with transaction.atomic():
        detection = Detection.objects.create(
            owner=owner,
            kind=Detection.Kind.PRIVATE,
            sha256="",
            width=width,
            height=height,
            format="",
            byte_size=0,
            status=Status.DONE,
            label=labels[deciding] if deciding is not None else Detection.Label.NO_FACE,
            fake_probability=checked[deciding].fake_probability if deciding is not None else None,
            model_name=model.name,
            model_version=model.version,
            threshold=model.threshold,
            uncertain_low=model.uncertain_low,
            uncertain_high=model.uncertain_high,
            face_box=list(checked[deciding].box) if deciding is not None else None,
            deciding_face=deciding + 1 if deciding is not None else None,
            inference_ms=float(ms),
            created_at=now,
            started_at=now,
            finished_at=now,
        )
        DetectionFace.objects.bulk_create(
            DetectionFace(
                detection=detection,
                index=number,
                box=list(face.box),
                fake_probability=face.fake_probability,
                label=label,
                detector_confidence=face.detector_confidence,
            )
            for number, (face, label) in enumerate(zip(checked, labels, strict=True), start=1)
        )
    logger.info(
        "Private check saved as detection %s (%s, %d faces)",
        detection.id,
        detection.label,
        len(checked),
        extra={"detection_id": str(detection.id)},
    )
    return detection_get(user=owner, detection_id=detection.id)
