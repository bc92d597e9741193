"""The worker's run state machine: claim, run, retry, fail; then the heatmaps.

A detection row owns its job's state: pending -> running (claimed with a token) -> done or
failed, or back to pending for a retry. Every transition is one conditional UPDATE, so a
duplicate or redelivered message can never produce a second verdict.

A verdict with faces is saved with heatmap_status pending and announced at once; then the same
run explains each face (Grad-CAM, ml.explain) from the inputs the model saw, and saves the
heatmaps done, or failed (the verdict stands either way). Saved only while the run still holds
the done row (its claim token), so a re-run or a duplicate never writes a second set. Repeats of
the verdict copied meanwhile (reused_from, heatmaps pending) get the same heatmaps, or fail with
them, in the same transaction.

A video (Detection.kind "video") is sampled, its faces judged and tracked by ml.video; its
progress (frames done / total) is written while the run holds the claim, and its verdict, tracks
and faces are saved like an image's: in one transaction with the conditional finish. No
heatmaps for video.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from detection.events import detection_finished_announce
from detection.models import Detection, DetectionFace, VideoFace, VideoTrack

# Through the module, so tests can stand a fake engine in (detection.worker.engine.engine_get).
from detection.worker import engine as worker_engine

if TYPE_CHECKING:
    from ml.inference import Engine, FaceHeatmap, Prediction
    from ml.video import VideoPrediction

logger = logging.getLogger(__name__)

Status = Detection.Status

# Messages for people; the technical cause goes to the log.
ERROR_DECODE = "The image could not be decoded by the model, so no verdict was made."
ERROR_GAVE_UP = "The model failed on this image {attempts} times; we stopped trying."
ERROR_NO_MODEL = "No model could be loaded to analyse this image ({attempts} attempts)."
ERROR_WORKER_LOST = "The worker stopped while processing this image {attempts} times; we gave up."
ERROR_VIDEO_DECODE = "The video could not be decoded, so no verdict was made. {reason}"
ERROR_VIDEO_GAVE_UP = "The model failed on this video {attempts} times; we stopped trying."
ERROR_VIDEO_NO_MODEL = "No model could be loaded to analyse this video ({attempts} attempts)."
ERROR_VIDEO_WORKER_LOST = (
    "The worker stopped while processing this video {attempts} times; we gave up."
)

# The page's strip of the most suspicious frames: this many, whole frames scaled down.
VIDEO_SNAPSHOTS = 5
VIDEO_SNAPSHOT_SIDE = 480
VIDEO_SNAPSHOT_QUALITY = 80

Heatmap = Detection.HeatmapStatus


class DetectionRetry(Exception):  # noqa: N818 - a signal to the task, not an error
    """The model failed transiently; the row is pending again and the task should retry."""


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
    # One UPDATE in the common case: a running row taken back only while attempts are left.
    claimed = rows.exclude(status=Status.RUNNING, attempts__gte=max_attempts).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        claim_token=claim_token,
    )
    if claimed:
        return True
    # A row that keeps killing its worker (a poison image) is failed instead of run again.
    gave_up = rows.filter(status=Status.RUNNING, attempts__gte=max_attempts).update(
        status=Status.FAILED,
        error=Case(
            When(
                kind=Detection.Kind.VIDEO,
                then=Value(ERROR_VIDEO_WORKER_LOST.format(attempts=max_attempts)),
            ),
            default=Value(ERROR_WORKER_LOST.format(attempts=max_attempts)),
        ),
        finished_at=now,
        claim_token="",
    )
    if gave_up:
        logger.error("Detection %s failed: its worker was lost too often", detection_id)
        detection_finished_announce(detection_id=detection_id)
    return False


def detection_run(*, detection_id: int, claim_token: str | None = None) -> Detection | None:
    """Run the model on one detection, at most once per claim; returns the row, or None when
    another run holds it or it is finished (a duplicate or redelivered message).

    Raises DetectionRetry when the model failed and attempts are left (the row is pending).
    """
    from ml.inference import ImageDecodeError

    token = claim_token or uuid.uuid4().hex
    if not _claim(detection_id=detection_id, claim_token=token, now=timezone.now()):
        logger.info("Detection %s not claimed: finished or held by another run", detection_id)
        _heatmaps_abandoned(detection_id=detection_id, claim_token=token)
        return None
    mine = Detection.objects.filter(id=detection_id, status=Status.RUNNING, claim_token=token)
    detection = mine.first()
    if detection is None:  # deleted by its owner in the meantime
        return None

    video = detection.kind == Detection.Kind.VIDEO
    try:
        engine = worker_engine.engine_get()
    except Exception as exc:  # noqa: BLE001 - any load failure: retried, then failed visibly
        # Not this image's fault: no verdict until a worker has a model.
        return _attempt_failed(
            detection, mine, exc, ERROR_VIDEO_NO_MODEL if video else ERROR_NO_MODEL
        )
    if video:
        return _video_run(detection=detection, mine=mine, engine=engine)
    try:
        with default_storage.open(detection.image.name, "rb") as fh:
            content = fh.read()
        prediction = engine.predict(content)
    except ImageDecodeError:
        logger.warning("Detection %s: the model could not decode the image", detection_id)
        mine.update(status=Status.FAILED, error=ERROR_DECODE, finished_at=timezone.now())
        detection_finished_announce(detection_id=detection_id)
        detection.refresh_from_db()
        return detection
    except Exception as exc:  # noqa: BLE001 - any model failure: retried, then failed visibly
        return _attempt_failed(detection, mine, exc, ERROR_GAVE_UP)

    if not _verdict_save(detection_id=detection_id, mine=mine, engine=engine, result=prediction):
        # Another run took the row over meanwhile (ours outlived the time limit): its verdict
        # stands, ours is dropped, faces included.
        logger.warning("Detection %s: verdict dropped, the row was taken over", detection_id)
        return None
    # Committed: a client waiting for this verdict (GET ...?wait=) gets it now.
    detection_finished_announce(detection_id=detection_id)
    detection.refresh_from_db()
    logger.info(
        "Detection %s done: %s %s (%d faces)",
        detection_id,
        detection.label,
        "-" if detection.fake_probability is None else f"{detection.fake_probability:.3f}",
        len(prediction.faces),
    )
    if prediction.faces:
        # After the verdict is out, so that it waits for nothing (a few ms per face).
        _heatmaps_make(
            detection_id=detection_id, claim_token=token, engine=engine, result=prediction
        )
        detection.refresh_from_db()
    return detection


def _verdict_save(
    *, detection_id: int, mine: QuerySet[Detection], engine: Engine, result: Prediction
) -> bool:
    """The verdict and its faces, in one transaction with the claimed update: written only while
    this run still holds the row, and never half (a verdict without its faces, or faces of a
    dropped verdict). Returns False when the row was taken over."""
    faces = result.faces
    deciding = result.deciding_face  # 0-based into faces; None when no face was found
    no_face = not faces
    with transaction.atomic():
        finished = mine.update(
            status=Status.DONE,
            # The model was trained on faces only: without one there is no real/fake verdict.
            label=Detection.Label.NO_FACE if no_face else result.label,
            fake_probability=None if no_face else _unit(result.fake_probability),
            # The model's own decision rule, kept with its verdict: a later model with another
            # band must not re-explain this one.
            threshold=_unit(engine.threshold),
            uncertain_low=_unit(engine.uncertain_low),
            uncertain_high=_unit(engine.uncertain_high),
            model_name=result.model_name[:100],
            model_version=result.model_version[:100],
            face_box=None if no_face else _box(faces[deciding].box),
            deciding_face=None if no_face else deciding + 1,
            inference_ms=float(result.inference_ms),
            finished_at=timezone.now(),
            error="",
            # Made next, by this run (_heatmaps_make); without a face there is nothing to explain.
            heatmap_status=Heatmap.NOT_APPLICABLE if no_face else Heatmap.PENDING,
        )
        if not finished:
            return False
        # Replaced, not added to: a row run again (a redelivery, a re-run) keeps one set of faces.
        DetectionFace.objects.filter(detection_id=detection_id).delete()
        DetectionFace.objects.bulk_create(
            DetectionFace(
                detection_id=detection_id,
                index=number,
                box=_box(face.box),
                fake_probability=_unit(face.fake_probability),
                label=face.label,
                detector_confidence=float(face.detector_confidence),
            )
            for number, face in enumerate(faces, start=1)
        )
    return True


def _heatmaps_make(
    *, detection_id: int, claim_token: str, engine: Engine, result: Prediction
) -> None:
    """Grad-CAM of every face of the saved verdict, then saved: done, or failed with the cause
    in the log. Never raises: the verdict is committed and stands whatever happens here.

    Not announced (detection.events) when saved: what is announced is "finished", which the
    verdict already was. A waiting API request (?wait=) ends at the verdict, and the result
    page polls its status view, which keeps polling while the heatmaps are pending."""
    try:
        heatmaps = engine.heatmaps(result)
        if len(heatmaps) != len(result.faces):
            raise ValueError(f"{len(heatmaps)} heatmaps for {len(result.faces)} faces")
        saved = _heatmaps_save(
            detection_id=detection_id, claim_token=claim_token, heatmaps=heatmaps
        )
    except Exception:  # noqa: BLE001 - the time limit's soft exception included
        logger.exception("Detection %s: no heatmaps (the verdict stands)", detection_id)
        _heatmaps_failed(detection_id=detection_id, claim_token=claim_token)
    else:
        if not saved:
            logger.info("Detection %s: heatmaps dropped, the row was taken over", detection_id)


def _heatmaps_mine(*, detection_id: int, claim_token: str) -> QuerySet[Detection]:
    """The row while it still has this run's verdict and waits for its heatmaps."""
    return Detection.objects.filter(
        id=detection_id, status=Status.DONE, claim_token=claim_token, heatmap_status=Heatmap.PENDING
    )


def _heatmaps_save(*, detection_id: int, claim_token: str, heatmaps: list[FaceHeatmap]) -> bool:
    """The faces' heatmaps and status done, in one transaction: written only while the row
    still holds this run's verdict (a re-run or another run's verdict replaced its faces), and
    at most once (a second save finds the status done). False when dropped."""
    with transaction.atomic():
        # The status first: on PostgreSQL the row's lock makes a concurrent save wait, then
        # find the status done.
        if not _heatmaps_mine(detection_id=detection_id, claim_token=claim_token).update(
            heatmap_status=Heatmap.DONE
        ):
            return False
        repeats = _heatmaps_repeats_finish(detection_id=detection_id, status=Heatmap.DONE)
        for number, heatmap in enumerate(heatmaps, start=1):
            DetectionFace.objects.filter(
                detection_id__in=[detection_id, *repeats], index=number
            ).update(heatmap=heatmap.png, heatmap_box=_box(heatmap.region))
    return True


def _heatmaps_repeats_finish(*, detection_id: int, status: str) -> list[int]:
    """The repeats of this detection copied while its heatmaps were pending (reused_from,
    detection.services._verdict_copy) get its final heatmap status; returns their ids, whose
    faces (copies of its faces, index for index) take its heatmaps. Called in the transaction
    that finishes the detection's own, after its row's update: a copy being made meanwhile
    holds that row's lock, so it is committed (and found here) before this runs."""
    waiting = Detection.objects.filter(
        reused_from_id=detection_id, status=Status.DONE, heatmap_status=Heatmap.PENDING
    )
    # Locked, so that a re-run of a copy (which deletes its faces) waits for this transaction.
    ids = list(waiting.select_for_update().values_list("id", flat=True))
    if ids:
        Detection.objects.filter(id__in=ids).update(heatmap_status=status)
    return ids


def _heatmaps_fail(*, detection_id: int, claim_token: str) -> bool:
    """This run's pending heatmaps failed, and with them its repeats' (one transaction)."""
    with transaction.atomic():
        if not _heatmaps_mine(detection_id=detection_id, claim_token=claim_token).update(
            heatmap_status=Heatmap.FAILED
        ):
            return False
        _heatmaps_repeats_finish(detection_id=detection_id, status=Heatmap.FAILED)
    return True


def _heatmaps_failed(*, detection_id: int, claim_token: str) -> None:
    try:
        _heatmaps_fail(detection_id=detection_id, claim_token=claim_token)
    except Exception:  # noqa: BLE001 - the database is away: the page stops waiting by itself
        logger.warning(
            "Detection %s: could not mark its heatmaps failed", detection_id, exc_info=True
        )


def _heatmaps_abandoned(*, detection_id: int, claim_token: str) -> None:
    """This message, delivered again, finds its own verdict saved and the heatmaps never
    finished: its worker died making them. They are marked failed, not made again: the inputs
    are gone, and an image that kills the worker in Grad-CAM must not do so at every delivery."""
    if _heatmaps_fail(detection_id=detection_id, claim_token=claim_token):
        logger.warning("Detection %s: its worker was lost making the heatmaps", detection_id)


def _box(box) -> list[int] | None:
    return [int(v) for v in box] if box else None


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


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
        # The task's retry message keeps the task id (the claim token): it is the row's message
        # now, which the sweeper finds in the broker instead of publishing another.
        mine.update(
            status=Status.PENDING,
            claim_token="",
            message_id=F("claim_token"),
            queued_at=timezone.now(),
        )
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
    detection_finished_announce(detection_id=detection.id)
    detection.refresh_from_db()
    return detection


# --- video ----------------------------------------------------------------------------------


class _RunTakenOver(Exception):  # noqa: N818 - a signal inside the run, not an error
    """The row is no longer this run's (taken over, or deleted): stop analysing."""


def _video_run(
    *, detection: Detection, mine: QuerySet[Detection], engine: Engine
) -> Detection | None:
    """Sample, judge and track the clip; progress written as it goes; then the verdict."""
    from ml.video import VideoDecodeError, analyze_video

    detection_id = detection.id
    points: list[list[float | None]] = []  # the timeline so far (Detection.progress_points)

    def frames_judged(batch: list[tuple[float, float | None]]) -> None:
        points.extend([round(t, 3), None if p is None else round(p, 4)] for t, p in batch)

    def progress(done: int, total: int) -> None:
        # Conditional like every write of this run: a row taken over or deleted stops it.
        if not mine.update(frames_done=done, frames_total=total, progress_points=list(points)):
            raise _RunTakenOver

    try:
        with default_storage.open(detection.image.name, "rb") as fh:
            result = analyze_video(
                engine,
                fh,
                sample_fps=settings.DETECTION_VIDEO_SAMPLE_FPS,
                max_samples=settings.DETECTION_VIDEO_MAX_SAMPLES,
                max_frames=settings.DETECTION_VIDEO_MAX_FRAMES,
                max_pixels=settings.DETECTION_VIDEO_MAX_PIXELS,
                progress=progress,
                on_frames=frames_judged,
                snapshots=VIDEO_SNAPSHOTS,
                snapshot_side=VIDEO_SNAPSHOT_SIDE,
            )
    except _RunTakenOver:
        logger.warning("Detection %s: analysis stopped, the row was taken over", detection_id)
        return None
    except VideoDecodeError as exc:
        logger.warning("Detection %s: the video could not be decoded: %s", detection_id, exc)
        mine.update(
            status=Status.FAILED,
            error=ERROR_VIDEO_DECODE.format(reason=exc)[:1000],
            finished_at=timezone.now(),
        )
        detection_finished_announce(detection_id=detection_id)
        detection.refresh_from_db()
        return detection
    except Exception as exc:  # noqa: BLE001 - any model failure: retried, then failed visibly
        return _attempt_failed(detection, mine, exc, ERROR_VIDEO_GAVE_UP)

    snapshots = {(s.track, s.sample): _snapshot_jpeg(s.rgb) for s in result.snapshots}
    if not _video_verdict_save(
        detection_id=detection_id, mine=mine, result=result, snapshots=snapshots
    ):
        logger.warning("Detection %s: verdict dropped, the row was taken over", detection_id)
        return None
    detection_finished_announce(detection_id=detection_id)
    detection.refresh_from_db()
    logger.info(
        "Detection %s done: %s %s (%d sampled frames, %d tracks, %.0f ms)",
        detection_id,
        detection.label,
        "-" if detection.fake_probability is None else f"{detection.fake_probability:.3f}",
        result.frames_total,
        len(result.tracks),
        result.inference_ms,
    )
    return detection


def _snapshot_jpeg(rgb) -> bytes:
    """A whole frame for the page's strip: at most VIDEO_SNAPSHOT_SIDE px, JPEG."""
    import io

    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((VIDEO_SNAPSHOT_SIDE, VIDEO_SNAPSHOT_SIDE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=VIDEO_SNAPSHOT_QUALITY, optimize=True)
    return buffer.getvalue()


def _video_verdict_save(
    *,
    detection_id: int,
    mine: QuerySet[Detection],
    result: VideoPrediction,
    snapshots: dict[tuple[int, int], bytes],
) -> bool:
    """The video's verdict, tracks and faces, in one transaction with the claimed update (as
    _verdict_save: only while this run holds the row, never half, replaced on a re-run).
    Returns False when the row was taken over."""
    no_face = not result.tracks
    frames = result.frames_total
    with transaction.atomic():
        finished = mine.update(
            status=Status.DONE,
            label=Detection.Label.NO_FACE if no_face else result.label,
            fake_probability=None if no_face else _unit(result.fake_probability),
            threshold=_unit(result.threshold),
            uncertain_low=_unit(result.uncertain_low),
            uncertain_high=_unit(result.uncertain_high),
            model_name=result.model_name[:100],
            model_version=result.model_version[:100],
            face_box=None,
            deciding_face=None,
            deciding_track=None if no_face else result.deciding_track,
            aggregate_method=result.aggregate_method[:200],
            inference_ms=float(result.inference_ms),
            frames_total=frames,
            frames_done=frames,
            finished_at=timezone.now(),
            error="",
            heatmap_status=Heatmap.NOT_APPLICABLE,  # no Grad-CAM for video
        )
        if not finished:
            return False
        VideoFace.objects.filter(detection_id=detection_id).delete()
        VideoTrack.objects.filter(detection_id=detection_id).delete()
        tracks = VideoTrack.objects.bulk_create(
            VideoTrack(
                detection_id=detection_id,
                index=track.index,
                fake_probability=_unit(track.fake_probability),
                label=track.label,
                max_probability=_unit(track.max_probability),
                frames=track.frames,
                start_s=track.start_s,
                end_s=track.end_s,
            )
            for track in result.tracks
        )
        by_index = {track.index: track for track in tracks}
        VideoFace.objects.bulk_create(
            VideoFace(
                detection_id=detection_id,
                track=by_index[track.index],
                sample=face.sample,
                time_s=face.time_s,
                box=_box(face.box),
                fake_probability=_unit(face.fake_probability),
                detector_confidence=float(face.detector_confidence),
                snapshot=snapshots.get((track.index, face.sample)),
            )
            for track in result.tracks
            for face in track.faces
        )
    return True
