"""The worker's heatmaps: made after the verdict is saved and announced, saved at most once, and
never at the verdict's expense (with a fake engine)."""

from __future__ import annotations

import logging

import pytest

from detection.models import Detection, DetectionFace
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import FakeEngine, FakeFace, fake_heatmap_region, heatmap_png_bytes
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
