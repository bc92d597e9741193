"""The video path (ml/video.py): sampling, decoding, tracking, aggregation, and
``python -m ml evaluate-video`` on generated clips (the shared data holds no videos)."""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from ml import DEFAULT_MODEL_DIR
from ml.inference import FaceVerdict, Prediction
from ml.video import (
    AGGREGATE_METHOD,
    MAX_GAP,
    VideoDecodeError,
    VideoReader,
    analyze_video,
    deciding_track,
    iou,
    plan_samples,
    track_faces,
    track_probability,
)
from tests.video_clips import make_clip

# --- sampling -------------------------------------------------------------------------------


def test_sample_counts_follow_the_rate_and_the_cap():
    assert len(plan_samples(2.0, 2.0, 120)) == 4
    assert len(plan_samples(2.1, 2.0, 120)) == 5  # a started second part counts
    assert len(plan_samples(0.1, 2.0, 120)) == 1  # at least one
    assert len(plan_samples(100.0, 2.0, 120)) == 120  # the cap: a long clip is sampled thinner
    assert len(plan_samples(100.0, 0.5, 120)) == 50
    assert len(plan_samples(10.0, 5.0, 120, frame_count=12)) == 12  # never more than frames


def test_sample_times_are_the_centres_of_equal_parts():
    assert plan_samples(2.0, 2.0, 120) == pytest.approx([0.25, 0.75, 1.25, 1.75])
    times = plan_samples(100.0, 2.0, 120)
    gaps = np.diff(times)
    assert gaps == pytest.approx(np.full(119, 100.0 / 120))
    assert times[0] == pytest.approx(100.0 / 240) and times[-1] == pytest.approx(100 - 100 / 240)


@pytest.mark.parametrize(
    ("duration", "fps", "cap"),
    [(0.0, 2.0, 10), (2.0, 0.0, 10), (2.0, -1.0, 10), (2.0, float("nan"), 10), (2.0, 2.0, 0),
     (2.0, 2.0, 1.5), (2.0, 2.0, True)],
)
def test_bad_sampling_settings_are_refused(duration, fps, cap):
    with pytest.raises(ValueError):
        plan_samples(duration, fps, cap)


STEP = 6  # grey levels from one frame to the next (40 frames fit in 0..255)


def _numbered_clip(n: int, fps: int, fmt: str = "mp4", size=(64, 48)) -> bytes:
    """Frame i is flat grey of level STEP * i: a decoded frame says which one it is."""
    frames = [np.full((size[1], size[0], 3), STEP * i, np.uint8) for i in range(n)]
    return make_clip(fmt, frames=frames, fps=fps)


def _frame_number(rgb: np.ndarray) -> int:
    return round(float(rgb.mean()) / STEP)


@pytest.mark.parametrize("fmt", ["mp4", "webm", "mov"])
def test_the_frame_nearest_each_target_is_taken(fmt):
    clip = _numbered_clip(20, fps=10, fmt=fmt)  # 2 s; frame i at i / 10 s
    with VideoReader(io.BytesIO(clip)) as reader:
        assert reader.info.duration_s == pytest.approx(2.0)
        assert reader.info.frame_rate == pytest.approx(10.0)
        times = plan_samples(reader.info.duration_s, 2.0, 120, reader.info.frame_count)
        taken = list(reader.samples(times))
    # Targets 0.25, 0.75, 1.25, 1.75 s: the frames at 0.2 or 0.3 s, and so on.
    assert [s.sample for s in taken] == [0, 1, 2, 3]
    for s, target in zip(taken, times, strict=True):
        assert abs(s.time_s - target) <= 0.05 + 1e-6
        assert _frame_number(s.rgb) == round(s.time_s * 10)
        assert s.rgb.shape == (48, 64, 3) and s.rgb.dtype == np.uint8


def test_a_clip_with_fewer_frames_than_samples_gives_each_frame_once():
    clip = _numbered_clip(3, fps=1)  # 3 s, 3 frames; 5 per second asked
    with VideoReader(io.BytesIO(clip)) as reader:
        times = plan_samples(reader.info.duration_s, 5.0, 120, reader.info.frame_count)
        assert len(times) == 3
        taken = list(reader.samples(times))
    assert [_frame_number(s.rgb) for s in taken] == [0, 1, 2]


def test_decoding_stops_at_the_last_sample(monkeypatch):
    clip = _numbered_clip(40, fps=10)
    decoded = []

    class Counting:
        """The container, counting the frames it decodes."""

        def __init__(self, container):
            self.container = container

        def decode(self, *args, **kwargs):
            for frame in self.container.decode(*args, **kwargs):
                decoded.append(frame)
                yield frame

        def close(self):
            self.container.close()

    with VideoReader(io.BytesIO(clip)) as reader:
        monkeypatch.setattr(reader, "_container", Counting(reader._container))
        taken = list(reader.samples([0.0, 1.0]))
    assert [_frame_number(s.rgb) for s in taken] == [0, 10]
    assert len(decoded) == 11  # not the other 29


def test_max_frames_bounds_the_decoding():
    clip = _numbered_clip(40, fps=10)
    with VideoReader(io.BytesIO(clip), max_frames=5) as reader:
        taken = list(reader.samples(plan_samples(reader.info.duration_s, 2.0, 120)))
    # Frames 0..4 only: the nearest to the first target, then the last decoded one.
    assert [_frame_number(s.rgb) for s in taken] == [2, 4]


def test_a_rotated_clip_is_sampled_upright():
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # shown turned a quarter counterclockwise
        for _ in range(10):
            frame = np.zeros((32, 64, 3), np.uint8)
            frame[:, :16] = 255  # a white band on the left
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with VideoReader(io.BytesIO(out.getvalue())) as reader:
        [sample] = list(reader.samples([0.5]))
        assert reader.rotation == 90
    assert sample.rgb.shape == (64, 32, 3)
    # Turned counterclockwise, the left band is at the bottom.
    assert sample.rgb[-8:].mean() > 200 and sample.rgb[:40].mean() < 50


def test_broken_files_raise_video_decode_error():
    clip = make_clip("mp4", seconds=1.0, fps=10)
    with pytest.raises(VideoDecodeError, match="damaged or truncated"):
        VideoReader(io.BytesIO(clip[: len(clip) // 2]))
    with pytest.raises(VideoDecodeError):
        VideoReader(io.BytesIO(b"\xff\xd8\xff\xe0 not a video"))
    with pytest.raises(VideoDecodeError, match="too large"):
        VideoReader(io.BytesIO(clip), max_pixels=320 * 240 - 1)


def test_a_stream_ending_long_before_its_announced_end_is_an_error():
    clip = make_clip("webm", frames=[np.full((48, 64, 3), i * 3, np.uint8) for i in range(60)],
                     fps=10)  # 6 s; WebM says its duration up front
    cut = clip[: int(len(clip) * 0.6)]
    with VideoReader(io.BytesIO(cut)) as reader:
        times = plan_samples(reader.info.duration_s, 2.0, 120)
        with pytest.raises(VideoDecodeError, match="truncated or damaged"):
            list(reader.samples(times))


# --- tracking and aggregation ----------------------------------------------------------------


def _face(x, y=10, side=40, p=0.5):
    return SimpleNamespace(box=(x, y, side, side), fake_probability=p, detector_confidence=0.99)


def _ids(tracks) -> list[list[tuple[int, int]]]:
    """Each track as (sample, x of its box)."""
    return [[(sample, face.box[0]) for sample, face in track] for track in tracks]


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0


def test_a_moving_face_is_one_track():
    samples = [(i, [_face(10 + 8 * i)]) for i in range(6)]
    assert _ids(track_faces(samples)) == [[(i, 10 + 8 * i) for i in range(6)]]


def test_crossing_faces_keep_their_tracks():
    # A moves right, B moves left, 10 px a sample; they pass each other around sample 3.
    samples = [(i, [_face(20 + 10 * i), _face(80 - 10 * i)]) for i in range(7)]
    tracks = track_faces(samples)
    assert _ids(tracks) == [[(i, 20 + 10 * i) for i in range(7)],
                            [(i, 80 - 10 * i) for i in range(7)]]


def test_a_short_gap_continues_a_track_and_a_long_one_starts_another():
    gap = MAX_GAP
    samples = [(0, [_face(10)]), *[(i, []) for i in range(1, 1 + gap)], (1 + gap, [_face(12)])]
    assert len(track_faces(samples)) == 1
    samples = [(0, [_face(10)]), *[(i, []) for i in range(1, 2 + gap)], (2 + gap, [_face(12)])]
    assert _ids(track_faces(samples)) == [[(0, 10)], [(2 + gap, 12)]]


def test_a_new_person_starts_a_track_numbered_by_first_appearance():
    samples = [(0, [_face(10)]), (1, [_face(200), _face(12)]), (2, [_face(14), _face(202)])]
    assert _ids(track_faces(samples)) == [[(0, 10), (1, 12), (2, 14)], [(1, 200), (2, 202)]]


def test_a_jump_with_little_overlap_is_another_face():
    # IoU of 40-px boxes 25 px apart: 15 x 40 / (2 x 1600 - 600) = 0.23 < 0.3.
    samples = [(0, [_face(10)]), (1, [_face(35)])]
    assert len(track_faces(samples)) == 2
    samples = [(0, [_face(10)]), (1, [_face(25)])]  # 0.45: the same face
    assert len(track_faces(samples)) == 1


def test_the_track_probability_is_the_mean_of_its_most_suspicious_half():
    assert track_probability([0.1, 0.9, 0.5, 0.3]) == pytest.approx(0.7)
    assert track_probability([0.2, 0.8, 0.4]) == pytest.approx(0.6)  # ceil(3 / 2) = 2
    assert track_probability([0.35]) == pytest.approx(0.35)
    # A face fake for half the clip counts fully; one odd frame does not.
    assert track_probability([0.9] * 5 + [0.1] * 5) == pytest.approx(0.9)
    assert track_probability([0.1] * 9 + [0.95]) == pytest.approx((0.95 + 0.1 * 4) / 5)
    with pytest.raises(ValueError):
        track_probability([])
    assert "not calibrated on video" in AGGREGATE_METHOD and len(AGGREGATE_METHOD) <= 200


def test_a_face_seen_once_decides_only_when_every_face_was_seen_once():
    def track(index, p, frames):
        return SimpleNamespace(index=index, fake_probability=p, frames=frames)

    tracks = [track(1, 0.3, 10), track(2, 0.95, 1), track(3, 0.4, 2)]
    assert deciding_track(tracks).index == 3
    assert deciding_track([track(1, 0.3, 1), track(2, 0.6, 1)]).index == 2
    assert deciding_track([]) is None


# --- the whole analysis, with a stand-in engine (no TensorFlow) -----------------------------


class SquareEngine:
    """Finds the white squares of a frame as faces; P(fake) = the square's left edge / width."""

    name, version = "squares", "squares-1"
    threshold, uncertain_low, uncertain_high = 0.5, 0.4, 0.6

    def __init__(self):
        self.calls: list[int] = []

    def predict_frames(self, frames):
        self.calls.append(len(frames))
        out = []
        for rgb in frames:
            white = rgb.mean(axis=2) > 200
            faces = []
            cols = np.where(white.any(axis=0))[0]
            if len(cols):
                # Runs of white columns: one square each.
                runs = np.split(cols, np.where(np.diff(cols) > 1)[0] + 1)
                for run in runs:
                    rows = np.where(white[:, run[0]])[0]
                    p = float(run[0]) / rgb.shape[1]
                    faces.append(FaceVerdict(
                        box=(int(run[0]), int(rows[0]), len(run), len(rows)), fake_probability=p,
                        label="fake" if p > 0.5 else "real", detector_confidence=0.9))
            out.append(Prediction(fake_probability=None, label="", model_name=self.name,
                                  model_version=self.version, faces=tuple(faces),
                                  inference_ms=1.0))
        return out


def _squares_clip(seconds=3, fps=10, squares=1, size=(160, 90)) -> bytes:
    w, h = size
    frames = []
    n = seconds * fps
    for i in range(n):
        frame = np.full((h, w, 3), 100, np.uint8)
        x = 10 + i  # slides right a pixel a frame
        frame[20:50, x:x + 30] = 255
        if squares == 2:
            frame[20:50, w - 40 - i:w - 10 - i] = 255
        frames.append(frame)
    return make_clip("mp4", frames=frames, fps=fps)


def test_analyze_video_tracks_aggregates_and_reports_progress():
    engine = SquareEngine()
    progress = []
    result = analyze_video(engine, io.BytesIO(_squares_clip(squares=2)), sample_fps=2.0,
                           max_samples=120, progress=lambda d, t: progress.append((d, t)),
                           batch_frames=4, snapshots=3, snapshot_side=80)
    assert progress == [(0, 6), (4, 6), (6, 6)]
    assert engine.calls == [4, 2]  # four frames a model call
    assert result.frames_total == 6 == result.samples_planned
    assert len(result.sample_times) == 6
    assert [(t.index, t.frames) for t in result.tracks] == [(1, 6), (2, 6)]
    left, right = result.tracks
    assert [f.box[0] for f in left.faces] == sorted(f.box[0] for f in left.faces)
    # The right square is the more suspicious (P = x / width) and decides.
    assert right.fake_probability > left.fake_probability
    assert result.deciding_track == 2 and result.fake_probability == right.fake_probability
    assert result.label == right.label
    assert right.fake_probability == pytest.approx(
        np.mean(sorted((f.fake_probability for f in right.faces), reverse=True)[:3]))
    assert result.aggregate_method == AGGREGATE_METHOD
    # Snapshots: the three most suspicious faces, whole frames scaled to 80 px wide.
    assert [s.track for s in result.snapshots] == [2, 2, 2]
    assert [s.sample for s in result.snapshots] == [0, 1, 2]  # it moves left: earlier is higher
    assert all(s.rgb.shape == (45, 80, 3) for s in result.snapshots)
    d = result.as_dict()
    json.dumps(d)
    assert d["deciding_track"] == 2 and len(d["tracks"]) == 2


def test_analyze_video_without_faces_is_no_face():
    grey = [np.full((48, 64, 3), 100, np.uint8) for _ in range(10)]
    result = analyze_video(SquareEngine(), io.BytesIO(make_clip("mp4", frames=grey, fps=10)),
                           sample_fps=2.0, max_samples=120)
    assert result.label == "no_face" and result.fake_probability is None
    assert result.tracks == () and result.deciding_track is None and result.snapshots == ()
    assert result.frames_total == 2


def test_a_progress_callback_that_raises_stops_the_analysis():
    engine = SquareEngine()

    class Stop(Exception):
        pass

    def progress(done, total):
        if done:
            raise Stop

    with pytest.raises(Stop):
        analyze_video(engine, io.BytesIO(_squares_clip(seconds=5)), sample_fps=2.0,
                      max_samples=120, progress=progress)
    assert engine.calls == [4]


# --- python -m ml evaluate-video ------------------------------------------------------------


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "card.json").is_file(),
                    reason="no shipped default model")
def test_evaluate_video_on_a_folder_of_generated_clips(tmp_path, capsys):
    from ml.__main__ import main

    # The labels are arbitrary here (all clips show real faces): this checks the plumbing.
    data = tmp_path / "clips"
    files = {
        "real/a.mp4": make_clip("mp4", seconds=1.0, fps=8),
        "real/nested/b.mov": make_clip("mov", seconds=1.0, fps=8, faces=2),
        "fake/c.webm": make_clip("webm", seconds=1.0, fps=8),
        "fake/deeper/x/d.mp4": make_clip("mp4", seconds=1.0, fps=8, size=(240, 320)),
        "real/grey.mp4": make_clip("mp4", fps=8,
                                   frames=[np.full((120, 160, 3), 128, np.uint8)] * 8),
        "fake/broken.mp4": make_clip("mp4", seconds=1.0, fps=8)[:300],
        "fake/notes.txt": b"not a clip",
    }
    for name, content in files.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    out = tmp_path / "video.json"
    rc = main(["evaluate-video", "--data", str(data), "--sample-fps", "2", "--max-samples", "3",
               "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n_clips"] == 6  # the .txt is not a clip
    assert (res["n_scored"], res["n_no_face"], res["n_undecodable"]) == (4, 1, 1)
    assert [c["path"].rsplit("/", 1)[1] for c in res["no_face"]] == ["grey.mp4"]
    assert res["undecodable"][0]["path"].endswith("broken.mp4")
    scored = {c["path"].rsplit("/", 1)[1]: c for c in res["clips"]}
    assert set(scored) == {"a.mp4", "b.mov", "c.webm", "d.mp4"}
    assert scored["b.mov"]["tracks"] == 2
    assert all(c["frames"] == 2 for c in scored.values())  # 1 s at 2 per second
    assert all(0.0 <= c["fake_probability"] <= 1.0 for c in scored.values())
    assert {c["label"] for c in scored.values()} == {"real", "fake"}
    # Metrics over the scored clips, both classes present.
    assert (res["n_real"], res["n_fake"]) == (2, 2)
    assert 0.0 <= res["roc_auc"] <= 1.0 and 0.0 <= res["ece"] <= 1.0
    assert sum(map(sum, res["confusion_matrix"])) == 4
    for key in ("accuracy", "precision", "recall", "f1", "threshold", "uncertain_rate"):
        assert isinstance(res[key], float) and not math.isnan(res[key])
    assert "not yet measured on real deepfake videos" in res["note"]
    assert "not calibrated on video" in res["aggregate_method"]
    assert res["frames_per_second"] > 0
    printed = capsys.readouterr().out
    assert "grey.mp4" in printed and "undecodable" in printed and "AUC" in printed


def test_evaluate_video_without_clips_fails_plainly(tmp_path, capsys):
    from ml.__main__ import main

    (tmp_path / "real").mkdir()
    assert main(["evaluate-video", "--data", str(tmp_path)]) == 1
    assert "no labelled clips" in capsys.readouterr().err


def test_evaluate_video_refuses_bad_sampling_settings(tmp_path):
    from ml.__main__ import main

    for flags in (["--sample-fps", "0"], ["--sample-fps", "nan"], ["--max-samples", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["evaluate-video", "--data", str(tmp_path), *flags])
        assert exc.value.code == 2


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "card.json").is_file(),
                    reason="no shipped default model")
def test_predict_frames_judges_an_array_as_predict_judges_the_same_pixels():
    from PIL import Image

    from ml.inference import Engine
    from ml.preprocess import DEFAULT_MAX_PIXELS
    from tests.video_clips import clip_frames

    engine = Engine.load(intra_threads=1, inter_threads=1, max_pixels=DEFAULT_MAX_PIXELS)
    frames = clip_frames(seconds=1.0, fps=2, faces=2)  # two frames, two faces each
    png = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")  # lossless: the same pixels
        png.append(buffer.getvalue())
    from_arrays = engine.predict_frames(frames)
    from_files = [engine.predict(content) for content in png]
    for a, b in zip(from_arrays, from_files, strict=True):
        assert [f.box for f in a.faces] == [f.box for f in b.faces] and len(a.faces) == 2
        assert [f.fake_probability for f in a.faces] == pytest.approx(
            [f.fake_probability for f in b.faces], abs=1e-5)
    with pytest.raises(ValueError):
        engine.predict_frames([np.zeros((10, 10), np.uint8)])
    assert engine.predict_frames([]) == []


def test_on_frames_gets_each_judged_frame_before_its_progress():
    events = []
    analyze_video(SquareEngine(), io.BytesIO(_squares_clip(squares=2)), sample_fps=2.0,
                  max_samples=120, progress=lambda d, t: events.append(("progress", d)),
                  on_frames=lambda batch: events.append(("frames", batch)), batch_frames=4)
    assert [e[0] for e in events] == ["progress", "frames", "progress", "frames", "progress"]
    batches = [e[1] for e in events if e[0] == "frames"]
    assert [len(b) for b in batches] == [4, 2]
    times = [t for b in batches for t, _ in b]
    assert times == sorted(times) and len(set(times)) == 6
    assert all(p is not None and 0 <= p <= 1 for b in batches for _, p in b)


def test_on_frames_says_none_for_a_frame_without_a_face():
    grey = [np.full((120, 160, 3), 128, np.uint8)] * 20
    got = []
    analyze_video(SquareEngine(), io.BytesIO(make_clip("mp4", frames=grey, fps=10)),
                  sample_fps=2.0, max_samples=120, on_frames=got.extend)
    assert got and all(p is None for _, p in got)
