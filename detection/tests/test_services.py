from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from detection import services
from detection.models import Detection, DetectionBatch
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import image_bytes, jpeg_with_exif, upload

pytestmark = pytest.mark.django_db


# --- create ---------------------------------------------------------------------------------


def test_create_one_stores_clean_file_and_enqueues_once_on_commit(
    user, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        [detection] = services.detection_create_many(
            user=user, uploads=[upload("My Face.jpg", jpeg_with_exif())]
        )
    assert len(callbacks) == 1
    assert enqueued == [detection.id]
    detection.refresh_from_db()
    assert detection.status == Detection.Status.PENDING
    assert detection.owner == user
    assert detection.batch is None
    assert detection.original_name == "My Face.jpg"
    assert detection.format == "JPEG"
    assert (detection.width, detection.height) == (40, 30)
    assert detection.removed_metadata  # the EXIF was found and removed
    assert detection.queued_at is not None
    # Random name in a dated folder; the original name never reaches the disk.
    assert detection.image.name.startswith(f"uploads/{timezone.now():%Y/%m}/")
    assert "Face" not in detection.image.name
    assert detection.image.name.endswith(".jpg")
    with default_storage.open(detection.image.name) as fh:
        stored = fh.read()
    assert b"TestCam" not in stored
    assert detection.byte_size == len(stored)


def test_create_several_makes_a_batch(user, enqueued, django_capture_on_commit_callbacks):
    files = [upload("a.jpg"), upload("b.png", image_bytes("PNG"), "image/png")]
    with django_capture_on_commit_callbacks(execute=True):
        detections = services.detection_create_many(user=user, uploads=files)
    assert len(detections) == 2
    assert detections[0].batch_id is not None
    assert {d.batch_id for d in detections} == {detections[0].batch_id}
    assert sorted(enqueued) == sorted(d.id for d in detections)
    assert detections[1].format == "PNG" and detections[1].image.name.endswith(".png")


def test_one_bad_file_stores_nothing_and_names_it(user, enqueued, settings):
    files = [upload("good.jpg"), upload("notes.jpg", b"hello, not an image")]
    with pytest.raises(ValidationError) as excinfo:
        services.detection_create_many(user=user, uploads=files)
    messages = excinfo.value.messages
    assert len(messages) == 1 and messages[0].startswith("notes.jpg:")
    assert excinfo.value.error_list[0].code == "not_an_image"
    assert Detection.objects.count() == 0
    assert DetectionBatch.objects.count() == 0
    assert enqueued == []
    # No file was written either.
    assert not (settings.MEDIA_ROOT / "uploads").exists() or not any(
        p.is_file() for p in (settings.MEDIA_ROOT / "uploads").rglob("*")
    )


def test_too_many_files_refused(user, settings):
    settings.DETECTION_MAX_FILES_PER_REQUEST = 2
    with pytest.raises(ValidationError) as excinfo:
        services.detection_create_many(user=user, uploads=[upload(), upload(), upload()])
    assert excinfo.value.code == "too_many_files"
    assert Detection.objects.count() == 0


def test_rollback_enqueues_nothing_and_removes_files(
    user, enqueued, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.detection_create_many(user=user, uploads=[upload()])
            raise RuntimeError("the surrounding request failed")
    assert callbacks == []
    assert enqueued == []
    assert Detection.objects.count() == 0
    # The written file outlived the rollback; the hourly clean-up removes it once it is older
    # than the grace period, and not before.
    [stored] = list((settings.MEDIA_ROOT / "uploads").rglob("*.jpg"))
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1)) == 0
    later = timezone.now() + dt.timedelta(hours=2)
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1), now=later) == 1
    assert not stored.exists()


def test_orphan_clean_up_keeps_every_file_a_row_refers_to(settings):
    kept = DetectionFactory()
    later = timezone.now() + dt.timedelta(days=1)
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1), now=later) == 0
    assert default_storage.exists(kept.image.name)


def test_broker_error_never_fails_the_upload(user, monkeypatch, django_capture_on_commit_callbacks):
    def _down(*, detection_id: int) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr("detection.publish.detection_run_publish", _down)
    with django_capture_on_commit_callbacks(execute=True):
        [detection] = services.detection_create_many(user=user, uploads=[upload()])
    detection.refresh_from_db()
    assert detection.status == Detection.Status.PENDING


# --- sweep and purge ------------------------------------------------------------------------


def test_sweep_requeues_only_stale_pending_and_dead_running(enqueued, settings):
    now = timezone.now()
    old = now - dt.timedelta(minutes=10)
    stale = DetectionFactory(queued_at=old)
    DetectionFactory(queued_at=now)  # fresh: its message is probably still queued
    dead = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=now - dt.timedelta(hours=1), attempts=1
    )
    DetectionFactory(status=Detection.Status.RUNNING, started_at=now, attempts=1)
    DetectionFactory(done=True, queued_at=old)

    count = services.detection_sweep(older_than=dt.timedelta(minutes=2))

    assert count == 2
    assert sorted(enqueued) == sorted([stale.id, dead.id])
    stale.refresh_from_db()
    assert stale.queued_at > old


def _backlog(count: int, *, published: dt.datetime) -> list[Detection]:
    """Pending rows whose run message was published (to the fake broker) at `published`."""
    rows = DetectionFactory.create_batch(count, queued_at=None)
    for row in rows:
        assert services.detection_enqueue(detection_id=row.id)
    Detection.objects.filter(id__in=[row.id for row in rows]).update(queued_at=published)
    return rows


def test_a_backlog_whose_messages_are_still_queued_is_never_published_again(enqueued):
    now = timezone.now()
    rows = _backlog(50, published=now - dt.timedelta(minutes=30))
    enqueued.clear()

    for minute in range(1, 4):  # a slow worker: the backlog waits, sweep after sweep
        later = now + dt.timedelta(minutes=minute)
        assert services.detection_sweep(older_than=dt.timedelta(minutes=2), now=later) == 0
    assert enqueued == []
    assert Detection.objects.filter(status=Detection.Status.PENDING).count() == len(rows)


def test_a_message_the_broker_lost_is_published_again_exactly_once(enqueued, broker_held):
    now = timezone.now()
    rows = _backlog(5, published=now - dt.timedelta(minutes=30))
    lost = rows[2]
    lost.refresh_from_db()
    broker_held.discard(lost.message_id)  # e.g. Redis restarted without persistence
    enqueued.clear()

    for _sweep in range(3):
        services.detection_sweep(older_than=dt.timedelta(minutes=2))

    assert enqueued == [lost.id]
    lost.refresh_from_db()
    assert lost.message_id in broker_held and lost.queued_at > now


def test_lost_messages_behind_a_held_backlog_are_found_a_few_per_sweep(
    enqueued, broker_held, monkeypatch
):
    monkeypatch.setattr(services, "_SWEEP_MAX_PUBLISHES", 2)
    rows = _backlog(8, published=timezone.now() - dt.timedelta(minutes=30))
    lost = rows[-3:]  # behind five rows whose messages are still queued
    for row in lost:
        row.refresh_from_db()
        broker_held.discard(row.message_id)
    enqueued.clear()

    counts = [services.detection_sweep(older_than=dt.timedelta(minutes=2)) for _ in range(3)]

    assert counts == [2, 1, 0]
    assert sorted(enqueued) == sorted(row.id for row in lost)


def test_a_publish_that_failed_is_published_by_the_sweeper_once(
    user, enqueued, monkeypatch, django_capture_on_commit_callbacks
):
    def _down(*, detection_id: int) -> str:
        raise ConnectionError("broker down")

    with monkeypatch.context() as down:
        down.setattr("detection.publish.detection_run_publish", _down)
        with django_capture_on_commit_callbacks(execute=True):
            [detection] = services.detection_create_many(user=user, uploads=[upload()])
    detection.refresh_from_db()
    assert detection.message_id == ""  # nothing was published

    later = timezone.now() + dt.timedelta(minutes=5)
    for minute in range(3):
        services.detection_sweep(
            older_than=dt.timedelta(minutes=2), now=later + dt.timedelta(minutes=minute)
        )
    assert enqueued == [detection.id]


def test_a_running_row_whose_message_is_still_held_is_left_to_its_redelivery(
    enqueued, broker_held
):
    # Its worker died; the broker delivers the same message again (same id: the claim token).
    broker_held.add("redelivered")
    dead = DetectionFactory(
        status=Detection.Status.RUNNING,
        started_at=timezone.now() - dt.timedelta(hours=1),
        attempts=1,
        claim_token="redelivered",
    )
    assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 0
    broker_held.clear()
    assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 1
    assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 0
    assert enqueued == [dead.id]


def test_a_broker_that_cannot_be_asked_falls_back_to_the_visibility_timeout(
    enqueued, monkeypatch, settings
):
    settings.CELERY_BROKER_VISIBILITY_TIMEOUT = 600
    monkeypatch.setattr("detection.publish.run_messages_held", lambda: None)
    now = timezone.now()
    waiting = DetectionFactory(queued_at=now - dt.timedelta(minutes=5))
    old = DetectionFactory(queued_at=now - dt.timedelta(minutes=11))

    assert services.detection_sweep(older_than=dt.timedelta(minutes=2), now=now) == 1
    assert enqueued == [old.id]
    waiting.refresh_from_db()
    assert waiting.queued_at < now - dt.timedelta(minutes=4)


def test_a_broker_that_is_down_gets_nothing_published(enqueued, monkeypatch):
    def _down() -> set[str]:
        raise ConnectionError("broker down")

    monkeypatch.setattr("detection.publish.run_messages_held", _down)
    DetectionFactory(queued_at=timezone.now() - dt.timedelta(minutes=10))
    assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 0
    assert enqueued == []


def test_purge_expired_deletes_rows_and_files(settings, django_capture_on_commit_callbacks):
    settings.DETECTION_RETENTION_DAYS = 30
    now = timezone.now()
    old = DetectionFactory(created_at=now - dt.timedelta(days=31))
    recent = DetectionFactory(created_at=now - dt.timedelta(days=29))
    old_file = old.image.name
    with django_capture_on_commit_callbacks(execute=True):
        assert services.detection_purge_expired(now=now) == 1
    assert not Detection.objects.filter(id=old.id).exists()
    assert Detection.objects.filter(id=recent.id).exists()
    assert not default_storage.exists(old_file)
    assert default_storage.exists(recent.image.name)


def test_purge_disabled_with_zero_days(settings):
    settings.DETECTION_RETENTION_DAYS = 0
    DetectionFactory(created_at=timezone.now() - dt.timedelta(days=3650))
    assert services.detection_purge_expired() == 0
    assert Detection.objects.count() == 1


def test_done_row_needs_a_verdict():
    detection = DetectionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Detection.objects.filter(id=detection.id).update(status=Detection.Status.DONE)


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_row_and_file_after_commit(user, django_capture_on_commit_callbacks):
    detection = DetectionFactory(owner=user)
    name = detection.image.name
    with django_capture_on_commit_callbacks(execute=True):
        services.detection_delete(user=user, detection_id=detection.id)
    assert not Detection.objects.filter(id=detection.id).exists()
    assert not default_storage.exists(name)


def test_delete_of_another_users_detection_is_404(user, other_user):
    from django.http import Http404

    detection = DetectionFactory(owner=other_user)
    with pytest.raises(Http404):
        services.detection_delete(user=user, detection_id=detection.id)
    assert Detection.objects.filter(id=detection.id).exists()


def test_delete_many_ignores_other_users_ids(user, other_user, django_capture_on_commit_callbacks):
    mine = DetectionFactory.create_batch(2, owner=user)
    theirs = DetectionFactory(owner=other_user)
    with django_capture_on_commit_callbacks(execute=True):
        count = services.detection_delete_many(user=user, ids=[d.id for d in mine] + [theirs.id])
    assert count == 2
    assert list(Detection.objects.values_list("id", flat=True)) == [theirs.id]
    assert default_storage.exists(theirs.image.name)


def test_deleting_a_user_deletes_their_files(user, django_capture_on_commit_callbacks):
    names = [d.image.name for d in DetectionFactory.create_batch(2, owner=user)]
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert Detection.objects.count() == 0
    assert not any(default_storage.exists(n) for n in names)


def test_rolled_back_delete_keeps_the_file(user, django_capture_on_commit_callbacks):
    detection = DetectionFactory(owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.detection_delete(user=user, detection_id=detection.id)
            raise RuntimeError
    assert default_storage.exists(detection.image.name)


def test_management_commands(enqueued, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.DETECTION_RETENTION_DAYS = 1
    stale = DetectionFactory(queued_at=timezone.now() - dt.timedelta(minutes=10))
    out = StringIO()
    call_command("detection_sweep", "--older-than", "60", stdout=out)
    assert "Queued 1" in out.getvalue() and enqueued == [stale.id]
    DetectionFactory(created_at=timezone.now() - dt.timedelta(days=2))
    call_command("detection_purge_expired", stdout=out)
    assert "Deleted 1" in out.getvalue()

