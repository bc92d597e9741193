"""The worker's run state machine: claim, run, retry, fail (with a fake engine)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from detection.models import Detection, DetectionFace
from detection.tests.factories import DetectionFaceFactory, DetectionFactory
from detection.tests.helpers import FakeEngine, FakeFace
from detection.worker import services as worker_services
from ml.inference import ImageDecodeError

pytestmark = pytest.mark.django_db


def _faces(detection: Detection) -> list[tuple]:
    return list(
        DetectionFace.objects.filter(detection=detection).values_list(
            "index", "box", "fake_probability", "label", "detector_confidence"
        )
    )


def test_run_makes_a_verdict(fake_engine):
    detection = DetectionFactory()
    result = worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert result is not None
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE
    assert detection.label == "fake"
    assert detection.fake_probability == pytest.approx(0.91)
    assert detection.model_version == FakeEngine.version
    assert detection.face_box == [4, 3, 20, 24]
    assert detection.deciding_face == 1
    assert _faces(detection) == [(1, [4, 3, 20, 24], pytest.approx(0.91), "fake", 0.98)]
    # The decision rule it was made with is kept with the verdict.
    assert (detection.threshold, detection.uncertain_low, detection.uncertain_high) == (
        FakeEngine.threshold,
        FakeEngine.uncertain_low,
        FakeEngine.uncertain_high,
    )
    assert detection.attempts == 1
    assert detection.started_at and detection.finished_at
    assert detection.inference_ms == pytest.approx(12.5)
    # The model saw the stored bytes.
    with default_storage.open(detection.image.name) as fh:
        assert fake_engine.inputs == [fh.read()]


def test_run_twice_one_model_call_one_verdict(fake_engine):
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    finished_at = Detection.objects.get(id=detection.id).finished_at
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t2") is None
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t1") is None
    assert fake_engine.calls == 1
    detection.refresh_from_db()
    assert detection.attempts == 1
    assert detection.finished_at == finished_at


def test_running_row_held_by_a_live_run_is_not_taken(fake_engine):
    detection = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=timezone.now(), claim_token="other", attempts=1
    )
    assert worker_services.detection_run(detection_id=detection.id, claim_token="duplicate") is None
    assert fake_engine.calls == 0


def test_redelivered_message_takes_back_its_own_running_row(fake_engine):
    # The worker was killed mid-run: the same message (same task id) comes again.
    detection = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=timezone.now(), claim_token="task-1", attempts=1
    )
    worker_services.detection_run(detection_id=detection.id, claim_token="task-1")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE
    assert detection.attempts == 2
    assert fake_engine.calls == 1


def test_running_row_past_the_hard_limit_is_taken_back(fake_engine, settings):
    started = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5)
    detection = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=started, claim_token="gone", attempts=1
    )
    worker_services.detection_run(detection_id=detection.id, claim_token="sweeper-message")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE


def test_worker_lost_too_often_fails(fake_engine, settings):
    settings.DETECTION_MAX_ATTEMPTS = 2
    detection = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=timezone.now(), claim_token="task-1", attempts=2
    )
    assert worker_services.detection_run(detection_id=detection.id, claim_token="task-1") is None
    detection.refresh_from_db()
    assert detection.status == Detection.Status.FAILED
    assert "worker stopped" in detection.error
    assert fake_engine.calls == 0


def test_model_error_retries_then_fails(fake_engine, settings):
    settings.DETECTION_MAX_ATTEMPTS = 2
    fake_engine.error = RuntimeError("out of memory")
    detection = DetectionFactory()

    with pytest.raises(worker_services.DetectionRetry):
        worker_services.detection_run(detection_id=detection.id, claim_token="t")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.PENDING
    assert detection.attempts == 1
    # The retry message keeps the task id: the sweeper looks for it, not for the first one.
    assert detection.message_id == "t"

    worker_services.detection_run(detection_id=detection.id, claim_token="t")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.FAILED
    assert detection.attempts == 2
    assert "2 times" in detection.error
    assert "memory" not in detection.error  # the technical cause stays in the log
    assert fake_engine.calls == 2


def test_decode_error_fails_at_once(fake_engine, settings):
    fake_engine.error = ImageDecodeError("cannot decode")
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.FAILED
    assert detection.attempts == 1
    assert "could not be decoded" in detection.error


def test_missing_row_is_a_no_op(fake_engine):
    assert worker_services.detection_run(detection_id=999_999, claim_token="t") is None
    assert fake_engine.calls == 0


def test_no_model_is_reported_as_such(monkeypatch, settings):
    settings.DETECTION_MAX_ATTEMPTS = 1

    def _no_model():
        raise FileNotFoundError("ml/models/default/card.json")

    monkeypatch.setattr("detection.worker.engine.engine_get", _no_model)
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.FAILED
    assert "No model could be loaded" in detection.error


def test_row_deleted_while_running_is_left_alone(fake_engine, django_capture_on_commit_callbacks):
    detection = DetectionFactory()
    fake_engine.error = RuntimeError("boom")

    def _delete_then_fail(image):
        Detection.objects.filter(id=detection.id).delete()
        raise RuntimeError("file gone")

    fake_engine.predict = _delete_then_fail
    with django_capture_on_commit_callbacks(execute=True):
        worker_services.detection_run(detection_id=detection.id, claim_token="t")
    assert not Detection.objects.exists()


# --- faces ----------------------------------------------------------------------------------


def test_run_stores_every_face_and_the_one_that_decided(fake_engine):
    # Largest first, as the detector numbers them; the second is the most suspicious.
    fake_engine.faces = (
        FakeFace(box=(10, 5, 30, 30), probability=0.2, detector_confidence=0.99),
        FakeFace(box=(44, 8, 12, 14), probability=0.83, detector_confidence=0.91),
        FakeFace(box=(2, 30, 8, 9), probability=0.5, detector_confidence=0.7),
    )
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE
    # The image's verdict is the most suspicious face's, and that face is named.
    assert detection.label == "fake"
    assert detection.fake_probability == pytest.approx(0.83)
    assert detection.deciding_face == 2
    assert detection.face_box == [44, 8, 12, 14]
    assert _faces(detection) == [
        (1, [10, 5, 30, 30], pytest.approx(0.2), "real", pytest.approx(0.99)),
        (2, [44, 8, 12, 14], pytest.approx(0.83), "fake", pytest.approx(0.91)),
        (3, [2, 30, 8, 9], pytest.approx(0.5), "uncertain", pytest.approx(0.7)),
    ]


def test_no_face_is_a_verdict_without_probability(fake_engine):
    fake_engine.faces = ()
    detection = DetectionFactory()
    result = worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert result is not None
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE
    assert detection.label == Detection.Label.NO_FACE
    assert detection.fake_probability is None
    assert detection.face_box is None and detection.deciding_face is None
    # The band is still kept: the row says which model (and rule) found no face.
    assert (detection.uncertain_low, detection.uncertain_high) == (0.4, 0.6)
    assert detection.model_version == FakeEngine.version
    assert _faces(detection) == []


def test_redelivered_run_replaces_the_faces_instead_of_adding(fake_engine):
    # A row being run again by the same message, with faces already stored for it (e.g. put
    # back to running by hand after a verdict): one set of faces afterwards, the new one.
    detection = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=timezone.now(), claim_token="task-1", attempts=1
    )
    DetectionFaceFactory(detection=detection, index=1, box=[0, 0, 5, 5], fake_probability=0.1)
    DetectionFaceFactory(detection=detection, index=2, box=[9, 9, 5, 5], fake_probability=0.2)
    fake_engine.faces = (FakeFace(box=(1, 2, 3, 4), probability=0.7),)
    worker_services.detection_run(detection_id=detection.id, claim_token="task-1")
    assert _faces(detection) == [(1, [1, 2, 3, 4], pytest.approx(0.7), "fake", 0.98)]


def test_duplicate_message_after_the_verdict_adds_no_faces(fake_engine):
    fake_engine.faces = (FakeFace((1, 1, 9, 9), 0.3), FakeFace((20, 1, 9, 9), 0.9))
    detection = DetectionFactory()
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t1") is None
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t2") is None
    assert [index for index, *_ in _faces(detection)] == [1, 2]
    assert fake_engine.calls == 1


def test_dropped_verdict_leaves_no_faces(fake_engine):
    # While our model call ran, the row was taken over by another run (ours outlived the hard
    # time limit): that run holds it now, and our verdict and faces must not be written.
    detection = DetectionFactory()
    predict = fake_engine.predict

    def _taken_over(image):
        Detection.objects.filter(id=detection.id).update(claim_token="the-other-run")
        return predict(image)

    fake_engine.predict = _taken_over
    fake_engine.faces = (FakeFace((1, 1, 9, 9), 0.3), FakeFace((20, 1, 9, 9), 0.9))
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t1") is None
    detection.refresh_from_db()
    assert detection.status == Detection.Status.RUNNING
    assert detection.claim_token == "the-other-run"
    assert detection.label == "" and detection.deciding_face is None
    assert not DetectionFace.objects.filter(detection=detection).exists()


def test_faces_that_cannot_be_written_leave_no_verdict(fake_engine, monkeypatch):
    # One transaction: a verdict is never stored without its faces.
    detection = DetectionFactory()

    def _broken_bulk_create(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(DetectionFace.objects, "bulk_create", _broken_bulk_create)
    with pytest.raises(RuntimeError):
        worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.RUNNING
    assert detection.label == "" and detection.fake_probability is None
    assert not DetectionFace.objects.filter(detection=detection).exists()


@pytest.fixture
def announced(monkeypatch) -> list[int]:
    """The detections the worker said were finished (detection.events), in order."""
    calls: list[int] = []
    monkeypatch.setattr(
        worker_services, "detection_finished_announce", lambda *, detection_id: calls.append(
            detection_id)
    )
    return calls


def test_every_final_state_is_announced_once_and_a_retry_is_not(
    fake_engine, settings, announced
):
    settings.DETECTION_MAX_ATTEMPTS = 2
    done = DetectionFactory()
    worker_services.detection_run(detection_id=done.id, claim_token="t")
    assert announced == [done.id]
    # A duplicate message finds the row finished: nothing new to announce.
    worker_services.detection_run(detection_id=done.id, claim_token="t2")
    assert announced == [done.id]

    fake_engine.error = ImageDecodeError("cannot decode")
    undecodable = DetectionFactory()
    worker_services.detection_run(detection_id=undecodable.id, claim_token="t")
    assert announced == [done.id, undecodable.id]

    fake_engine.error = RuntimeError("out of memory")
    flaky = DetectionFactory()
    with pytest.raises(worker_services.DetectionRetry):
        worker_services.detection_run(detection_id=flaky.id, claim_token="t")
    assert announced == [done.id, undecodable.id]  # pending again: nothing to wake up for
    worker_services.detection_run(detection_id=flaky.id, claim_token="t")
    assert announced == [done.id, undecodable.id, flaky.id]

    lost = DetectionFactory(
        status=Detection.Status.RUNNING, started_at=timezone.now(), claim_token="task-1", attempts=2
    )
    worker_services.detection_run(detection_id=lost.id, claim_token="task-1")
    assert announced == [done.id, undecodable.id, flaky.id, lost.id]
