"""The worker on video clips, with the real engine: sampling, tracks, progress, the verdict, and
the run's guarantees (one verdict per claim, a broken file fails plainly)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from detection.models import Detection, VideoFace, VideoTrack
from detection.tests.factories import DetectionFactory
from detection.worker import services as worker_services
from ml import DEFAULT_MODEL_DIR
from tests.video_clips import make_clip

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not (DEFAULT_MODEL_DIR / "card.json").is_file(), reason="no shipped default model"
    ),
]


@pytest.fixture(scope="module")
def real_engine():
    from ml.inference import Engine

    return Engine.load(intra_threads=1, inter_threads=1, max_pixels=40_000_000)


@pytest.fixture
def frame_calls() -> list[int]:
    """The frames of each video model call (Engine.predict_frames)."""
    return []


@pytest.fixture
def engine(monkeypatch, real_engine, settings, frame_calls):
    """The real engine as the worker's, counting its video model calls; 2 samples a second."""
    settings.DETECTION_VIDEO_SAMPLE_FPS = 2.0
    settings.DETECTION_VIDEO_MAX_SAMPLES = 120
    predict_frames = real_engine.predict_frames

    def counted(frames):
        frame_calls.append(len(frames))
        return predict_frames(frames)

    monkeypatch.setattr(real_engine, "predict_frames", counted)
    monkeypatch.setattr("detection.worker.engine.engine_get", lambda: real_engine)
    return real_engine


@pytest.fixture
def announced(monkeypatch) -> list[int]:
    seen: list[int] = []
    monkeypatch.setattr(
        worker_services,
        "detection_finished_announce",
        lambda *, detection_id: seen.append(detection_id),
    )
    return seen


def _video(content: bytes, name: str = "clip.mp4") -> Detection:
    return DetectionFactory(
        kind=Detection.Kind.VIDEO,
        image__data=content,
        image__filename=name,
        format=name.rsplit(".", 1)[1].upper(),
    )


def test_a_moving_face_is_one_track_over_every_sampled_frame(engine, announced):
    detection = _video(make_clip("mp4", seconds=2.0, fps=10))
    result = worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert result is not None
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE, detection.error
    assert detection.label in {"real", "fake", "uncertain"}
    assert (detection.frames_total, detection.frames_done) == (4, 4)  # 2 s at 2 per second
    [track] = VideoTrack.objects.filter(detection=detection)
    assert (track.index, track.frames) == (1, 4)
    assert detection.deciding_track == 1
    assert detection.fake_probability == pytest.approx(track.fake_probability)
    faces = list(VideoFace.objects.filter(detection=detection).order_by("sample"))
    assert [f.sample for f in faces] == [0, 1, 2, 3]
    assert all(f.track_id == track.id for f in faces)
    # The sampled times spread over the clip, the face moving right from one to the next.
    times = [f.time_s for f in faces]
    assert times == sorted(times) and times[0] < 0.5 and times[-1] > 1.5
    assert track.start_s == times[0] and track.end_s == times[-1]
    xs = [f.box[0] for f in faces]
    assert xs == sorted(xs) and xs[-1] > xs[0]
    # The track's P(fake): the mean of its most suspicious half of frames.
    top_half = sorted((f.fake_probability for f in faces), reverse=True)[:2]
    assert track.fake_probability == pytest.approx(sum(top_half) / 2)
    assert track.max_probability == pytest.approx(max(f.fake_probability for f in faces))
    # The decision rule and how it was applied are kept with the verdict.
    assert (detection.threshold, detection.uncertain_low, detection.uncertain_high) == (
        pytest.approx(engine.threshold),
        pytest.approx(engine.uncertain_low),
        pytest.approx(engine.uncertain_high),
    )
    assert "not calibrated on video" in detection.aggregate_method
    assert detection.heatmap_status == Detection.HeatmapStatus.NOT_APPLICABLE
    assert detection.model_version == engine.version
    assert detection.inference_ms > 0
    assert announced == [detection.id]
    # Snapshots: whole frames (JPEG, at most 480 px) for the most suspicious faces (all 4 here).
    snaps = [bytes(f.snapshot) for f in faces if f.snapshot is not None]
    assert len(snaps) == 4
    with Image.open(io.BytesIO(snaps[0])) as img:
        assert img.format == "JPEG" and max(img.size) <= 480
        assert img.size == (320, 240)  # the whole frame, already small


def test_two_faces_are_two_tracks(engine):
    detection = _video(make_clip("webm", seconds=2.0, fps=10, faces=2), "clip.webm")
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE, detection.error
    tracks = list(VideoTrack.objects.filter(detection=detection))
    assert [(t.index, t.frames) for t in tracks] == [(1, 4), (2, 4)]
    # One face moves right, the other left: each track keeps its own.
    for track in tracks:
        xs = [f.box[0] for f in track.faces.order_by("sample")]
        assert xs == sorted(xs) or xs == sorted(xs, reverse=True)
    assert detection.deciding_track == max(tracks, key=lambda t: t.fake_probability).index
    # At most five snapshots, for the five most suspicious of the eight faces.
    faces = list(VideoFace.objects.filter(detection=detection))
    with_snapshot = [f for f in faces if f.snapshot is not None]
    assert len(with_snapshot) == 5
    lowest_kept = min(f.fake_probability for f in with_snapshot)
    assert all(f.fake_probability <= lowest_kept for f in faces if f.snapshot is None)


def test_a_clip_without_a_face_is_no_face(engine):
    grey = [np.full((240, 320, 3), 128, np.uint8) for _ in range(20)]
    detection = _video(make_clip("mov", frames=grey, fps=10), "clip.mov")
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE
    assert detection.label == Detection.Label.NO_FACE
    assert detection.fake_probability is None and detection.deciding_track is None
    assert (detection.frames_total, detection.frames_done) == (4, 4)
    assert not VideoTrack.objects.filter(detection=detection).exists()
    assert detection.heatmap_status == Detection.HeatmapStatus.NOT_APPLICABLE


def test_progress_is_written_while_it_runs(engine, monkeypatch):
    # 3 s at 2 per second: 6 sampled frames, judged 4 and then 2 at a time.
    detection = _video(make_clip("mp4", seconds=3.0, fps=10))
    seen = []
    judge = engine.predict_frames

    def predict_frames(frames):
        row = Detection.objects.get(id=detection.id)
        seen.append((row.status, row.frames_done, row.frames_total))
        return judge(frames)

    monkeypatch.setattr(engine, "predict_frames", predict_frames)
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert seen == [("running", 0, 6), ("running", 4, 6)]
    detection.refresh_from_db()
    assert (detection.status, detection.frames_done, detection.frames_total) == ("done", 6, 6)


def test_a_duplicate_message_does_not_run_twice_and_a_rerun_replaces(engine, frame_calls):
    detection = _video(make_clip("mp4", seconds=2.0, fps=10))
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    calls = len(frame_calls)
    assert calls >= 1
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t2") is None
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t1") is None
    assert len(frame_calls) == calls
    assert VideoTrack.objects.filter(detection=detection).count() == 1
    # Run again (as a re-run does: pending again): one set of tracks and faces, not two.
    Detection.objects.filter(id=detection.id).update(status=Detection.Status.PENDING)
    worker_services.detection_run(detection_id=detection.id, claim_token="t3")
    assert VideoTrack.objects.filter(detection=detection).count() == 1
    assert VideoFace.objects.filter(detection=detection).count() == 4


def test_a_row_taken_over_mid_run_keeps_the_other_runs_state(engine, monkeypatch):
    detection = _video(make_clip("mp4", seconds=3.0, fps=10))
    judge = engine.predict_frames

    def predict_frames(frames):
        # Another run takes the row over after our first batch.
        Detection.objects.filter(id=detection.id).update(claim_token="other", frames_done=1)
        return judge(frames)

    monkeypatch.setattr(engine, "predict_frames", predict_frames)
    assert worker_services.detection_run(detection_id=detection.id, claim_token="t1") is None
    detection.refresh_from_db()
    assert (detection.status, detection.claim_token, detection.frames_done) == (
        "running",
        "other",
        1,
    )
    assert not VideoTrack.objects.filter(detection=detection).exists()


def _faststart(content: bytes, tmp_path) -> bytes:
    """The clip remuxed with its index first, as the upload gate stores MP4."""
    import av

    path = tmp_path / "faststart.mp4"
    with (
        av.open(io.BytesIO(content)) as src,
        av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("index_first", "says"),
    [(False, "damaged or truncated"), (True, "The clip ends at")],
    ids=["index-at-the-end", "index-first"],
)
def test_a_truncated_file_fails_with_a_plain_message(
    engine, frame_calls, announced, tmp_path, index_first, says
):
    content = make_clip("mp4", seconds=4.0, fps=10)
    if index_first:
        content = _faststart(content, tmp_path)
        assert content.index(b"moov") < content.index(b"mdat")
    detection = _video(content[: len(content) // 2])
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.FAILED
    assert detection.error.startswith("The video could not be decoded, so no verdict was made.")
    assert says in detection.error and "truncated" in detection.error
    assert "Traceback" not in detection.error and "av." not in detection.error
    assert detection.attempts == 1  # a broken file is not retried
    if not index_first:
        assert frame_calls == []  # refused when opened
    assert not VideoTrack.objects.filter(detection=detection).exists()
    assert announced == [detection.id]
    assert default_storage.exists(detection.image.name)  # the upload is kept with its error


def test_a_video_that_keeps_losing_its_worker_fails_in_words_about_a_video(engine, settings):
    settings.DETECTION_MAX_ATTEMPTS = 2
    video = _video(make_clip("mp4", seconds=1.0, fps=10))
    image = DetectionFactory()
    Detection.objects.filter(id__in=[video.id, image.id]).update(
        status=Detection.Status.RUNNING, started_at=timezone.now(), claim_token="task-1", attempts=2
    )
    for row in (video, image):
        assert worker_services.detection_run(detection_id=row.id, claim_token="task-1") is None
        row.refresh_from_db()
        assert row.status == Detection.Status.FAILED
    assert video.error == worker_services.ERROR_VIDEO_WORKER_LOST.format(attempts=2)
    assert image.error == worker_services.ERROR_WORKER_LOST.format(attempts=2)


def test_a_model_failure_on_a_video_is_retried_then_fails_in_words_about_a_video(
    engine, settings, monkeypatch
):
    settings.DETECTION_MAX_ATTEMPTS = 2

    def broken(frames):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine, "predict_frames", broken)
    detection = _video(make_clip("mp4", seconds=1.0, fps=10))
    with pytest.raises(worker_services.DetectionRetry):
        worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert (detection.status, detection.attempts) == ("pending", 1)
    worker_services.detection_run(detection_id=detection.id, claim_token="t2")
    detection.refresh_from_db()
    assert detection.status == Detection.Status.FAILED
    assert detection.error == worker_services.ERROR_VIDEO_GAVE_UP.format(attempts=2)
    assert not VideoTrack.objects.filter(detection=detection).exists()


def test_the_fake_engine_stands_in_for_video_too(fake_engine):
    """Tests without TensorFlow's cost (detection/tests/helpers.FakeEngine): its face stays put,
    one track over every sampled frame, P(fake) its probability."""
    detection = _video(make_clip("mp4", seconds=2.0, fps=10))
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    detection.refresh_from_db()
    assert (detection.status, detection.label) == ("done", "fake")
    assert detection.fake_probability == pytest.approx(fake_engine.probability)
    [track] = VideoTrack.objects.filter(detection=detection)
    assert (track.frames, detection.deciding_track) == (4, 1)
    assert fake_engine.calls == 4


def test_the_timeline_so_far_is_written_with_the_progress(engine, monkeypatch):
    detection = _video(make_clip("mp4", seconds=3.0, fps=10))
    seen = []
    judge = engine.predict_frames

    def predict_frames(frames):
        row = Detection.objects.get(id=detection.id)
        seen.append((row.frames_done, len(row.progress_points)))
        return judge(frames)

    monkeypatch.setattr(engine, "predict_frames", predict_frames)
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert seen == [(0, 0), (4, 4)]  # each write carries as many points as frames judged
    detection.refresh_from_db()
    times = [t for t, _ in detection.progress_points]
    assert len(times) == 6 and times == sorted(times)
    # A frame with a face has the P(fake) of its most suspicious face.
    face_p = {face.time_s: face.fake_probability for face in detection.video_faces.all()}
    for t, p in detection.progress_points:
        if t in face_p:
            assert p == pytest.approx(face_p[t], abs=1e-4)
