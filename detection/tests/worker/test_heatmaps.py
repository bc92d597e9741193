"""The worker's heatmaps: made after the verdict is saved and announced, saved at most once, and
never at the verdict's expense (with a fake engine)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import pytest
from django.db import connection, transaction

from detection import services
from detection.models import Detection, DetectionFace
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import (
    FakeEngine,
    FakeFace,
    fake_heatmap_region,
    heatmap_png_bytes,
    image_bytes,
    upload,
)
from detection.worker import services as worker_services
from ml.inference import FaceHeatmap

pytestmark = pytest.mark.django_db

Heatmap = Detection.HeatmapStatus

TWO_FACES = (FakeFace(box=(4, 3, 20, 24), probability=0.2), FakeFace((30, 5, 10, 12), 0.9))


@pytest.fixture
def announced(monkeypatch) -> list[tuple[str, str]]:
    """Each announcement, as (status, heatmap_status) of the row when it was made."""
    seen: list[tuple[str, str]] = []

    def announce(*, detection_id: int) -> None:
        row = Detection.objects.get(id=detection_id)
        seen.append((row.status, row.heatmap_status))

    monkeypatch.setattr(worker_services, "detection_finished_announce", announce)
    return seen


def _heatmaps(detection: Detection) -> list[tuple]:
    return [
        (index, bytes(png) if png is not None else None, box)
        for index, png, box in DetectionFace.objects.filter(detection=detection).values_list(
            "index", "heatmap", "heatmap_box"
        )
    ]


def test_heatmaps_come_after_the_verdict_is_saved_and_announced(fake_engine, announced):
    fake_engine.faces = TWO_FACES
    states_when_explained = []
    real_heatmaps = fake_engine.heatmaps

    def heatmaps(prediction):
        row = Detection.objects.get(id=detection.id)
        states_when_explained.append((row.status, row.heatmap_status, list(announced)))
        return real_heatmaps(prediction)

    fake_engine.heatmaps = heatmaps
    detection = DetectionFactory()
    result = worker_services.detection_run(detection_id=detection.id, claim_token="t1")

    # When Grad-CAM ran, the verdict was committed and announced, its heatmaps pending.
    assert states_when_explained == [("done", "pending", [("done", "pending")])]
    assert result.heatmap_status == Heatmap.DONE
    detection.refresh_from_db()
    assert (detection.status, detection.label, detection.heatmap_status) == ("done", "fake", "done")
    png = heatmap_png_bytes()
    assert _heatmaps(detection) == [
        (1, png, list(fake_heatmap_region(TWO_FACES[0].box))),
        (2, png, list(fake_heatmap_region(TWO_FACES[1].box))),
    ]
    # Announced once, at the verdict: "finished" is what waiters wait for (detection.events).
    assert announced == [("done", "pending")]


def test_no_face_no_heatmap(fake_engine, announced):
    fake_engine.faces = ()
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert (detection.label, detection.heatmap_status) == ("no_face", Heatmap.NOT_APPLICABLE)
    assert fake_engine.heatmap_calls == 0
    assert announced == [("done", "none")]


def test_a_failed_heatmap_leaves_the_verdict_standing(fake_engine, announced, caplog):
    fake_engine.heatmap_error = RuntimeError("Grad-CAM blew up")
    detection = DetectionFactory()
    with caplog.at_level(logging.ERROR, logger="detection.worker.services"):
        result = worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert result.heatmap_status == detection.heatmap_status == Heatmap.FAILED
    assert (detection.status, detection.label) == ("done", "fake")
    assert detection.fake_probability == pytest.approx(0.91)
    assert _heatmaps(detection) == [(1, None, None)]
    assert "no heatmaps (the verdict stands)" in caplog.text
    assert "Grad-CAM blew up" in caplog.text
    assert announced == [("done", "pending")]


def test_wrong_number_of_heatmaps_is_a_failure_not_a_half_write(fake_engine):
    fake_engine.faces = TWO_FACES
    fake_engine.heatmaps = lambda prediction: [FaceHeatmap(png=b"x", region=(0, 0, 1, 1))]
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert detection.heatmap_status == Heatmap.FAILED
    assert [png for _i, png, _b in _heatmaps(detection)] == [None, None]


def test_a_duplicate_message_makes_no_second_heatmap(fake_engine):
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    first = _heatmaps(detection)
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t2") is None
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t1") is None
    assert (fake_engine.calls, fake_engine.heatmap_calls) == (1, 1)
    assert _heatmaps(detection) == first
    assert Detection.objects.get(id=detection.id).heatmap_status == Heatmap.DONE


def test_heatmaps_are_saved_at_most_once(fake_engine):
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    again = [FaceHeatmap(png=b"other", region=(1, 2, 3, 3))]
    assert not worker_services._heatmaps_save(
        detection_id=detection.id, claim_token="t1", heatmaps=again
    )
    assert _heatmaps(detection)[0][1] == heatmap_png_bytes()


def test_heatmaps_of_a_row_taken_over_meanwhile_are_dropped(fake_engine, announced):
    real_heatmaps = fake_engine.heatmaps

    def heatmaps(prediction):
        # The owner runs it again while Grad-CAM works (detection_rerun): a new pending job.
        Detection.objects.filter(id=detection.id).update(
            status=Detection.Status.PENDING, claim_token="", heatmap_status=""
        )
        return real_heatmaps(prediction)

    fake_engine.heatmaps = heatmaps
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert (detection.status, detection.heatmap_status) == ("pending", "")
    assert _heatmaps(detection) == [(1, None, None)]
    assert announced == [("done", "pending")]


def test_redelivered_message_fails_heatmaps_its_lost_worker_left_pending(fake_engine, announced):
    # The worker was killed after saving the verdict, while making the heatmaps: the same
    # message (same task id) comes again and finds its own verdict.
    detection = DetectionFactory(
        done=True, claim_token="task-1", heatmap_status=Heatmap.PENDING, attempts=1
    )
    # Another run's message leaves it alone: that run may still be making them.
    assert worker_services.detection_run(detection_id=detection.id, claim_token="task-2") is None
    assert Detection.objects.get(id=detection.id).heatmap_status == Heatmap.PENDING
    assert worker_services.detection_run(detection_id=detection.id, claim_token="task-1") is None
    detection.refresh_from_db()
    assert detection.heatmap_status == Heatmap.FAILED
    assert (detection.status, detection.label, detection.attempts) == ("done", "fake", 1)
    assert (fake_engine.calls, fake_engine.heatmap_calls) == (0, 0)
    assert announced == []  # it was announced finished with its verdict


def test_the_real_engine_interface_is_what_the_worker_calls():
    """The fake stands in for ml.inference.Engine: the worker's calls exist there too."""
    from ml.inference import Engine

    for name in ("predict", "predict_frames", "heatmaps"):
        assert callable(getattr(Engine, name)) and callable(getattr(FakeEngine, name))


# --- repeats copied while the heatmaps are being made ---------------------------------------


@pytest.fixture
def serving(monkeypatch) -> str:
    """The fake engine's model serves: the same bytes again reuse its verdict."""
    monkeypatch.setattr("detection.services.model_version_current", lambda: FakeEngine.version)
    return FakeEngine.version


def _upload_again_while_explaining(fake_engine, user, data: bytes, *, error=None) -> list:
    """While Grad-CAM works on the first check, its owner uploads the same bytes again (the
    copy is made and committed before the heatmaps are saved). Returns the copies made."""
    copies: list[Detection] = []
    real_heatmaps = fake_engine.heatmaps

    def heatmaps(prediction):
        copies.extend(
            services.detection_create_many(user=user, uploads=[upload("again.jpg", data)])
        )
        if error is not None:
            raise error
        return real_heatmaps(prediction)

    fake_engine.heatmaps = heatmaps
    return copies


def test_a_repeat_copied_while_the_heatmaps_are_made_gets_them(
    fake_engine, serving, user, enqueued
):
    fake_engine.faces = TWO_FACES
    data = image_bytes()
    [first] = services.detection_create_many(user=user, uploads=[upload("first.jpg", data)])
    copies = _upload_again_while_explaining(fake_engine, user, data)
    # A pending repeat of another detection is not this run's to fill.
    other = DetectionFactory(owner=user, done=True)
    unrelated = DetectionFactory(
        owner=user, done=True, reused_from=other, heatmap_status=Heatmap.PENDING
    )

    worker_services.detection_run(detection_id=first.id, claim_token="t1")

    [copy] = copies
    assert (copy.reused_from_id, copy.status) == (first.id, "done")
    assert copy.heatmap_status == Heatmap.PENDING  # as copied: not "failed"
    copy.refresh_from_db()
    assert copy.heatmap_status == Heatmap.DONE
    png = heatmap_png_bytes()
    assert _heatmaps(copy) == _heatmaps(first) == [
        (1, png, list(fake_heatmap_region(TWO_FACES[0].box))),
        (2, png, list(fake_heatmap_region(TWO_FACES[1].box))),
    ]
    assert fake_engine.calls == 1  # one model run in all
    assert Detection.objects.get(id=unrelated.id).heatmap_status == Heatmap.PENDING


def test_a_repeat_fails_with_the_heatmaps_it_waits_for(fake_engine, serving, user, enqueued):
    data = image_bytes()
    [first] = services.detection_create_many(user=user, uploads=[upload("first.jpg", data)])
    copies = _upload_again_while_explaining(
        fake_engine, user, data, error=RuntimeError("Grad-CAM blew up")
    )
    worker_services.detection_run(detection_id=first.id, claim_token="t1")
    [copy] = copies
    copy.refresh_from_db()
    first.refresh_from_db()
    assert first.heatmap_status == copy.heatmap_status == Heatmap.FAILED
    assert (copy.status, copy.label) == ("done", "fake")  # the copied verdict stands
    assert _heatmaps(copy) == [(1, None, None)]


def test_a_repeat_run_again_before_the_heatmaps_are_saved_is_left_alone(
    fake_engine, serving, user, enqueued
):
    data = image_bytes()
    [first] = services.detection_create_many(user=user, uploads=[upload("first.jpg", data)])
    copies: list[Detection] = []
    real_heatmaps = fake_engine.heatmaps

    def heatmaps(prediction):
        [copy] = services.detection_create_many(user=user, uploads=[upload("again.jpg", data)])
        copies.append(services.detection_rerun(user=user, detection_id=copy.id))
        return real_heatmaps(prediction)

    fake_engine.heatmaps = heatmaps
    worker_services.detection_run(detection_id=first.id, claim_token="t1")
    [copy] = copies
    copy.refresh_from_db()
    assert (copy.status, copy.reused_from_id, copy.heatmap_status) == ("pending", None, "")
    assert _heatmaps(copy) == []
    assert Detection.objects.get(id=first.id).heatmap_status == Heatmap.DONE


def test_a_lost_worker_fails_the_repeats_waiting_for_its_heatmaps(fake_engine, announced):
    first = DetectionFactory(
        done=True, claim_token="task-1", heatmap_status=Heatmap.PENDING, attempts=1
    )
    copy = DetectionFactory(
        owner=first.owner, done=True, reused_from=first, heatmap_status=Heatmap.PENDING
    )
    assert worker_services.detection_run(detection_id=first.id, claim_token="task-2") is None
    assert Detection.objects.get(id=copy.id).heatmap_status == Heatmap.PENDING
    assert worker_services.detection_run(detection_id=first.id, claim_token="task-1") is None
    assert Detection.objects.get(id=copy.id).heatmap_status == Heatmap.FAILED


def _pending_first_check(user, data: bytes) -> Detection:
    """A verdict on ``data`` whose heatmaps run "t1" is still making."""
    return DetectionFactory(
        owner=user,
        done=True,
        claim_token="t1",
        heatmap_status=Heatmap.PENDING,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_heatmaps_saved_after_the_repeat_was_found_but_before_it_was_copied(
    serving, user, monkeypatch
):
    """The upload finds the first check with its heatmaps pending; they are saved (committed)
    before the copy is written: the copy reads them again and has them at once."""
    data = image_bytes()
    first = _pending_first_check(user, data)
    real_find = services._repeats_find

    def find_then_save(**kwargs):
        found = real_find(**kwargs)
        assert found[first.sha256].heatmap_status == Heatmap.PENDING
        assert worker_services._heatmaps_save(
            detection_id=first.id,
            claim_token="t1",
            heatmaps=[FaceHeatmap(png=b"png-1", region=(1, 2, 30, 30))],
        )
        return found

    monkeypatch.setattr(services, "_repeats_find", find_then_save)
    [copy] = services.detection_create_many(user=user, uploads=[upload("again.jpg", data)])
    copy.refresh_from_db()
    assert (copy.reused_from_id, copy.heatmap_status) == (first.id, Heatmap.DONE)
    assert _heatmaps(copy) == [(1, b"png-1", [1, 2, 30, 30])]


# Row locks between two connections: PostgreSQL's behaviour (SQLite locks the whole table).
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_heatmaps_saved_while_a_repeat_is_being_copied_wait_for_it_and_fill_it(serving, user):
    """Two connections: an upload copies the first check's verdict (its heatmaps pending) and
    has not committed yet when the worker saves the heatmaps. The save waits for the copy (it
    holds the first check's row), then fills it; without the wait the copy would never get
    them."""
    data = image_bytes()
    first = _pending_first_check(user, data)
    copied, commit = threading.Event(), threading.Event()
    made: list[Detection] = []
    saved: list[bool] = []

    def upload_again() -> None:
        try:
            with transaction.atomic():  # held open: the copy is written, not yet committed
                made.extend(
                    services.detection_create_many(user=user, uploads=[upload("b.jpg", data)])
                )
                copied.set()
                commit.wait(10)
        finally:
            copied.set()
            connection.close()

    def save() -> None:
        try:
            saved.append(
                worker_services._heatmaps_save(
                    detection_id=first.id,
                    claim_token="t1",
                    heatmaps=[FaceHeatmap(png=b"png-1", region=(0, 0, 30, 30))],
                )
            )
        finally:
            connection.close()

    uploader = threading.Thread(target=upload_again)
    saver = threading.Thread(target=save)
    try:
        uploader.start()
        assert copied.wait(10) and made
        saver.start()
        time.sleep(0.5)
        waited = saver.is_alive()
    finally:
        commit.set()
        uploader.join(10)
        saver.join(10)
    assert saved == [True]
    [copy] = made
    copy.refresh_from_db()
    assert (copy.reused_from_id, copy.heatmap_status) == (first.id, Heatmap.DONE)
    assert _heatmaps(copy) == [(1, b"png-1", [0, 0, 30, 30])]
    assert waited  # on the first check's row, which the copy locked
