"""Video: sample frames evenly, judge the faces of each sampled frame, follow faces over time.

    result = analyze_video(engine, path_or_file, sample_fps=2.0, max_samples=120,
                           progress=lambda done, total: ...)   # -> VideoPrediction

Plain Python (no Django): the worker passes its settings in.

- Sampling: ``n = min(max_samples, max(1, ceil(duration * sample_fps)))`` target times, the
  centres of ``n`` equal parts of the clip (never more than the stream has frames). The stream
  is decoded once, in order (no seeking: robust with any container and any keyframe spacing),
  and the frame nearest each target time is taken; decoding stops after the last target, at
  the frame count the container announces, or at ``max_frames``.
- Faces: every sampled frame goes through the engine's face step and model
  (``Engine.predict_frames``, a few frames per model call), exactly as an uploaded image does.
- Tracking: a face in one sampled frame continues the track whose last box overlaps it most
  (IoU >= ``IOU_MATCH``, greedy, best pairs first); a track may miss up to ``MAX_GAP`` samples
  (a turned head, a missed detection) and continue. Tracks are numbered 1.. by first appearance.
- Per track: P(fake) = the mean of the most suspicious half of its frames' calibrated P(fake)
  (``track_probability``): robust to a few frames where the face is blurred or turned, while a
  face that is fake for part of the clip still counts. This rule is NOT calibrated on video:
  there is no labelled video data yet (``AGGREGATE_METHOD`` says so with every verdict).
- The video's verdict is its most suspicious track among those seen in at least
  ``MIN_DECIDING_FRAMES`` sampled frames (a face seen once is more likely a false detection;
  when every track is that short, all count). No face in any sampled frame: ``no_face``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import calibration

__all__ = ["AGGREGATE_METHOD", "VIDEO_SUFFIXES", "SampledFrame", "VideoDecodeError",
           "VideoFaceResult", "VideoInfo", "VideoPrediction", "VideoReader", "VideoSnapshot",
           "VideoTrackResult", "analyze_video", "iou", "plan_samples", "track_faces",
           "track_probability"]

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov")
NO_FACE = "no_face"

IOU_MATCH = 0.3
MAX_GAP = 3  # sampled frames a track may miss and still continue
MIN_DECIDING_FRAMES = 2
SNAPSHOTS = 5  # whole frames kept for the most suspicious faces
SNAPSHOT_SIDE = 480  # their longest side at most, in pixels
BATCH_FRAMES = 4  # sampled frames per model call (and per progress report)
# The decoded stream may end this much before the duration the header announces (the last
# frame's own duration, rounding, an audio track setting the container's length).
END_TOLERANCE_S = 1.0
END_TOLERANCE_SHARE = 0.1

AGGREGATE_METHOD = (
    "top-half mean: a track's P(fake) is the mean of its most suspicious ceil(n/2) frames' "
    "P(fake); not calibrated on video: no labelled video data"
)


class VideoDecodeError(ValueError):
    """The clip cannot be read: not a video, no video stream, damaged or truncated. The
    message is written for people."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container's headers say about the video stream."""

    duration_s: float
    frame_rate: float | None  # average frames per second
    frame_count: int | None  # None when the container does not say
    width: int  # coded size; frames are turned upright (``rotation``) when decoded
    height: int
    codec: str


@dataclass(frozen=True, eq=False)
class SampledFrame:
    sample: int  # 0-based number of the sampled frame
    time_s: float  # its presentation time, from the start of the stream
    rgb: np.ndarray  # uint8 (H, W, 3), upright as displayed


@dataclass(frozen=True)
class VideoFaceResult:
    """A face in one sampled frame."""

    sample: int
    time_s: float
    box: tuple[int, int, int, int]  # (x, y, w, h) in the upright frame's pixels
    fake_probability: float  # calibrated, 0..1
    detector_confidence: float

    def as_dict(self) -> dict:
        return {"sample": self.sample, "time_s": round(self.time_s, 3), "box": list(self.box),
                "fake_probability": self.fake_probability,
                "detector_confidence": self.detector_confidence}


@dataclass(frozen=True)
class VideoTrackResult:
    """One face followed through the clip."""

    index: int  # 1-based, by first appearance
    faces: tuple[VideoFaceResult, ...]  # in sample order
    fake_probability: float  # the aggregate (AGGREGATE_METHOD)
    label: str  # "real" | "fake" | "uncertain", by the engine's threshold and band
    max_probability: float

    @property
    def frames(self) -> int:
        return len(self.faces)

    @property
    def start_s(self) -> float:
        return self.faces[0].time_s

    @property
    def end_s(self) -> float:
        return self.faces[-1].time_s

    def as_dict(self) -> dict:
        return {"index": self.index, "fake_probability": self.fake_probability,
                "label": self.label, "max_probability": self.max_probability,
                "frames": self.frames, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "faces": [f.as_dict() for f in self.faces]}


@dataclass(frozen=True, eq=False)
class VideoSnapshot:
    """The whole frame (scaled down) in which a track's face was among the most suspicious."""

    track: int  # VideoTrackResult.index
    sample: int
    fake_probability: float
    rgb: np.ndarray  # uint8 (h, w, 3), longest side at most the snapshot size


@dataclass(frozen=True)
class VideoPrediction:
    """The verdict on a clip: per sampled frame its faces, per track an aggregate, and the most
    suspicious track (``deciding_track``) deciding the video. No face anywhere: ``no_face``."""

    info: VideoInfo
    sample_times: tuple[float, ...]  # every sampled frame's time, faces or not
    samples_planned: int
    tracks: tuple[VideoTrackResult, ...]
    label: str  # "real" | "fake" | "uncertain" | "no_face"
    fake_probability: float | None  # the deciding track's aggregate
    deciding_track: int | None  # 1-based VideoTrackResult.index
    model_name: str
    model_version: str
    threshold: float
    uncertain_low: float
    uncertain_high: float
    aggregate_method: str
    inference_ms: float  # the whole analysis: decode, sampling, faces, model
    rotation: int = 0  # degrees the frames were turned to be upright
    snapshots: tuple[VideoSnapshot, ...] = field(default=(), repr=False, compare=False)

    @property
    def frames_total(self) -> int:
        """Sampled frames judged."""
        return len(self.sample_times)

    @property
    def face_found(self) -> bool:
        return bool(self.tracks)

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "fake_probability": self.fake_probability,
            "deciding_track": self.deciding_track,
            "duration_s": self.info.duration_s,
            "frame_rate": self.info.frame_rate,
            "frame_count": self.info.frame_count,
            "codec": self.info.codec,
            "frames_total": self.frames_total,
            "sample_times": [round(t, 3) for t in self.sample_times],
            "tracks": [t.as_dict() for t in self.tracks],
            "model_name": self.model_name,
            "model_version": self.model_version,
            "threshold": self.threshold,
            "uncertain_low": self.uncertain_low,
            "uncertain_high": self.uncertain_high,
            "aggregate_method": self.aggregate_method,
            "inference_ms": self.inference_ms,
        }


# --- sampling ---------------------------------------------------------------------------------


def plan_samples(duration_s: float, sample_fps: float, max_samples: int,
                 frame_count: int | None = None) -> list[float]:
    """The target times: ``min(max_samples, max(1, ceil(duration * sample_fps)))`` (and at most
    ``frame_count``) centres of equal parts of the clip, in seconds."""
    if not (isinstance(sample_fps, (int, float)) and math.isfinite(sample_fps)
            and sample_fps > 0):
        raise ValueError(f"sample_fps must be a number > 0, not {sample_fps!r}")
    if isinstance(max_samples, bool) or int(max_samples) != max_samples or max_samples < 1:
        raise ValueError(f"max_samples must be a whole number >= 1, not {max_samples!r}")
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be > 0, not {duration_s!r}")
    # The small allowance: 2.0 s at 2 fps is 4 samples, not 5 from a rounding error.
    n = min(int(max_samples), max(1, math.ceil(duration_s * sample_fps - 1e-6)))
    if frame_count:
        n = min(n, int(frame_count))
    return [(i + 0.5) * duration_s / n for i in range(n)]


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.FFmpegError, EOFError)


class VideoReader:
    """An opened clip (a path, or a binary file object with read/seek): its ``info``, then its
    sampled frames, once. Use as a context manager."""

    def __init__(self, source, *, max_pixels: int | None = None, max_frames: int | None = None,
                 decode_threads: int = 0):
        import av

        self.max_frames = max_frames
        try:
            self._container = av.open(source, mode="r", metadata_errors="ignore")
        except _av_errors() as exc:
            raise VideoDecodeError(
                "This file could not be read as a video: it is not an MP4, WebM or MOV clip, or "
                "it is damaged or truncated.") from exc
        try:
            self.info = self._probe(max_pixels)
            self._stream.thread_type = "AUTO"  # frame and slice threads: several times faster
            self._stream.codec_context.thread_count = int(decode_threads)
        except BaseException:
            self._container.close()
            raise

    def _probe(self, max_pixels: int | None) -> VideoInfo:
        container = self._container
        if not container.streams.video:
            raise VideoDecodeError("This file has no video stream.")
        stream = self._stream = container.streams.video[0]
        tb = stream.time_base
        duration = None
        if stream.duration and tb:
            duration = float(stream.duration * tb)
        elif container.duration:
            import av

            duration = container.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate
        rate = float(rate) if rate else None
        frames = int(stream.frames) if stream.frames else None
        if not duration and frames and rate:
            duration = frames / rate
        if not duration or not math.isfinite(duration) or duration <= 0:
            raise VideoDecodeError("The clip does not say how long it is, so its frames cannot "
                                   "be sampled; it may be damaged.")
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width < 1 or height < 1:
            raise VideoDecodeError("The video stream has no picture size; it may be damaged.")
        if max_pixels and width * height > max_pixels:
            raise VideoDecodeError(f"The video's frames are too large ({width}x{height} pixels; "
                                   f"at most {max_pixels:,} allowed).")
        self._start = float(stream.start_time * tb) if stream.start_time is not None and tb \
            else None
        return VideoInfo(duration_s=duration, frame_rate=rate, frame_count=frames, width=width,
                         height=height, codec=str(ctx.name or ""))

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    rotation = 0  # of the frames decoded so far (the display matrix), degrees counterclockwise

    def _upright(self, frame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        # The display matrix (a phone held upright): turned as a player shows it, so boxes and
        # snapshots match what people see.
        rotation = int(getattr(frame, "rotation", 0) or 0)
        self.rotation = rotation
        k = round(rotation / 90) % 4
        return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb

    def samples(self, times: Sequence[float]) -> Iterator[SampledFrame]:
        """For each target time (ascending), the decoded frame nearest it; a frame nearest
        several targets is given once. Raises VideoDecodeError on a decoding error or a stream
        that ends well before its announced duration."""
        targets = list(times)
        limit = min(filter(None, (self.info.frame_count, self.max_frames)), default=None)
        rate = self.info.frame_rate
        k = 0
        given = -1  # decode number of the last frame given
        prev = None  # (decode number, time, frame)
        decoded = 0
        sample = 0
        stream = self._stream
        try:
            for frame in self._container.decode(stream):
                t = frame.time
                if t is None:  # no timestamp: its place at the average rate
                    t = (prev[1] + 1.0 / rate) if prev and rate else (decoded / rate if rate
                                                                      else 0.0)
                elif self._start is not None:
                    t -= self._start
                else:  # no stream start time: the first frame's
                    self._start = t
                    t = 0.0
                cur = (decoded, t, frame)
                decoded += 1
                while k < len(targets) and t >= targets[k]:
                    target = targets[k]
                    best = prev if prev is not None and abs(prev[1] - target) <= abs(
                        t - target) else cur
                    if best[0] != given:
                        given = best[0]
                        yield SampledFrame(sample, float(max(0.0, best[1])),
                                           self._upright(best[2]))
                        sample += 1
                    k += 1
                prev = cur
                if k >= len(targets) or (limit is not None and decoded >= limit):
                    break
            else:
                # The stream ended: it must have reached (near) its announced end.
                if k < len(targets) and prev is not None:
                    duration = self.info.duration_s
                    tolerance = max(END_TOLERANCE_S, END_TOLERANCE_SHARE * duration)
                    if targets[-1] - prev[1] > tolerance:
                        raise VideoDecodeError(
                            f"The clip ends at {prev[1]:.1f} s, before the {duration:.1f} s its "
                            "header announces: it is truncated or damaged.")
        except _av_errors() as exc:
            raise VideoDecodeError(
                f"The video could not be decoded after {decoded} frame(s): it is damaged or "
                "truncated.") from exc
        if prev is None:
            raise VideoDecodeError("No frame of this video could be decoded.")
        if k < len(targets) and prev[0] != given:
            # Stopped at the frame count (or the stream's end, within the tolerance): the last
            # frame is the nearest one to the next target.
            yield SampledFrame(sample, float(max(0.0, prev[1])), self._upright(prev[2]))


# --- tracking and aggregation -----------------------------------------------------------------


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


def track_faces(samples: Sequence[tuple[int, Sequence]], *, iou_match: float = IOU_MATCH,
                max_gap: int = MAX_GAP) -> list[list[tuple[int, object]]]:
    """Tracks from ``[(sample, [face, ...]), ...]`` (samples ascending; a face has ``.box``):
    each track a list of (sample, face), tracks in order of first appearance.

    Per sample, the pairs (face, live track) are taken best IoU first, each face and track at
    most once, while IoU >= ``iou_match`` against the track's last box; a track is live while
    it has missed at most ``max_gap`` samples. A face left over starts a track."""
    tracks: list[list[tuple[int, object]]] = []
    for sample, faces in samples:
        live = [i for i, tr in enumerate(tracks) if sample - tr[-1][0] - 1 <= max_gap]
        pairs = sorted(
            ((iou(face.box, tracks[i][-1][1].box), -i, f) for f, face in enumerate(faces)
             for i in live),
            key=lambda x: (x[0], x[1]), reverse=True)
        used_faces: set[int] = set()
        used_tracks: set[int] = set()
        for overlap, neg_i, f in pairs:
            if overlap < iou_match:
                break
            i = -neg_i
            if f in used_faces or i in used_tracks:
                continue
            used_faces.add(f)
            used_tracks.add(i)
            tracks[i].append((sample, faces[f]))
        for f, face in enumerate(faces):  # the detector's order: largest first
            if f not in used_faces:
                tracks.append([(sample, face)])
    return tracks


def track_probability(probabilities: Sequence[float]) -> float:
    """A track's P(fake): the mean of its most suspicious ``ceil(n / 2)`` frames."""
    ps = sorted((float(p) for p in probabilities), reverse=True)
    if not ps:
        raise ValueError("a track has at least one frame")
    k = math.ceil(len(ps) / 2)
    return float(np.mean(ps[:k]))


def deciding_track(tracks: Sequence[VideoTrackResult]) -> VideoTrackResult | None:
    """The most suspicious track seen in at least MIN_DECIDING_FRAMES samples (all tracks when
    none is); ties: the earlier track."""
    if not tracks:
        return None
    long_enough = [t for t in tracks if t.frames >= MIN_DECIDING_FRAMES] or list(tracks)
    return max(long_enough, key=lambda t: (t.fake_probability, -t.index))


# --- the whole analysis -----------------------------------------------------------------------


def _scaled(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1.0:
        return rgb.copy()
    from PIL import Image

    img = Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                      Image.Resampling.BILINEAR)
    return np.asarray(img)


def analyze_video(engine, source, *, sample_fps: float, max_samples: int,
                  max_frames: int | None = None, max_pixels: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  on_frames: Callable[[list[tuple[float, float | None]]], None] | None = None,
                  batch_frames: int = BATCH_FRAMES, snapshots: int = SNAPSHOTS,
                  snapshot_side: int = SNAPSHOT_SIDE) -> VideoPrediction:
    """The verdict on one clip (a path or a binary file object). ``engine``: an
    ``ml.inference.Engine``. ``progress(frames_done, frames_total)`` is called with (0, n) once
    the clip is opened, then after every ``batch_frames`` sampled frames; it may raise to stop
    the analysis. ``on_frames([(time_s, p), ...])``, just before each progress call after the
    first, gets the frames judged since the last one: each frame's time and the P(fake) of its
    most suspicious face (None without a face), for a timeline that fills in as it runs.
    ``max_pixels`` / ``max_frames``: the caller's limits on the frame size and on
    the frames decoded. Raises VideoDecodeError for a clip that cannot be read."""
    t0 = time.perf_counter()
    batch_frames = max(1, int(batch_frames))
    per_sample: list[tuple[int, list]] = []
    times: list[float] = []
    # The most suspicious faces' frames: a min-heap of (p, order, sample, face number, rgb).
    best: list[tuple[float, int, int, int, np.ndarray]] = []
    order = itertools.count()
    with VideoReader(source, max_pixels=max_pixels, max_frames=max_frames) as reader:
        info = reader.info
        targets = plan_samples(info.duration_s, sample_fps, max_samples, info.frame_count)
        total = len(targets)
        if progress:
            progress(0, total)
        chunk: list[SampledFrame] = []

        def judge() -> None:
            predictions = engine.predict_frames([s.rgb for s in chunk])
            if on_frames:
                on_frames([
                    (s.time_s, max((float(f.fake_probability) for f in pred.faces), default=None))
                    for s, pred in zip(chunk, predictions, strict=True)
                ])
            for s, pred in zip(chunk, predictions, strict=True):
                per_sample.append((s.sample, list(pred.faces)))
                times.append(s.time_s)
                for f, face in enumerate(pred.faces):
                    key = float(face.fake_probability)
                    if snapshots > 0 and (len(best) < snapshots or key > best[0][0]):
                        item = (key, next(order), s.sample, f, _scaled(s.rgb, snapshot_side))
                        if len(best) < snapshots:
                            heapq.heappush(best, item)
                        else:
                            heapq.heapreplace(best, item)
            chunk.clear()
            if progress:
                progress(len(times), total)

        for sampled in reader.samples(targets):
            chunk.append(sampled)
            if len(chunk) >= batch_frames:
                judge()
        if chunk:
            judge()
        rotation = reader.rotation
    if progress and len(times) != total:
        progress(len(times), len(times))  # fewer frames than planned: what was judged is all

    def label_of(p: float) -> str:
        return calibration.label_for(p, engine.threshold, engine.uncertain_low,
                                     engine.uncertain_high)

    face_track: dict[tuple[int, int], int] = {}
    results = []
    for number, members in enumerate(track_faces(per_sample), start=1):
        faces = []
        for sample, face in members:
            faces.append(VideoFaceResult(
                sample=sample, time_s=times[sample], box=tuple(int(v) for v in face.box),
                fake_probability=float(face.fake_probability),
                detector_confidence=float(face.detector_confidence)))
            face_track[(sample, id(face))] = number
        p = track_probability([f.fake_probability for f in faces])
        results.append(VideoTrackResult(index=number, faces=tuple(faces), fake_probability=p,
                                        label=label_of(p),
                                        max_probability=max(f.fake_probability for f in faces)))
    decider = deciding_track(results)
    faces_by_sample = dict(per_sample)
    snaps = tuple(
        VideoSnapshot(track=face_track[(sample, id(faces_by_sample[sample][f]))], sample=sample,
                      fake_probability=p, rgb=rgb)
        for p, _, sample, f, rgb in sorted(best, key=lambda x: (-x[0], x[1])))
    return VideoPrediction(
        info=info, sample_times=tuple(times), samples_planned=total, tracks=tuple(results),
        label=decider.label if decider else NO_FACE,
        fake_probability=decider.fake_probability if decider else None,
        deciding_track=decider.index if decider else None,
        model_name=engine.name, model_version=engine.version,
        threshold=float(engine.threshold), uncertain_low=float(engine.uncertain_low),
        uncertain_high=float(engine.uncertain_high), aggregate_method=AGGREGATE_METHOD,
        inference_ms=(time.perf_counter() - t0) * 1000.0, rotation=rotation, snapshots=snaps)
