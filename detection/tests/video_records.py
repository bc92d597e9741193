"""Video detections made directly in the database, as the worker leaves them: a real encoded
clip stored (tests/video_clips.make_clip), and for a done one its tracks and per-frame faces, the
most suspicious with a picture of their frame. For the page, API and playback tests, which need
no worker."""

from __future__ import annotations

import functools
import io

from PIL import Image

from detection.models import Detection, VideoFace, VideoTrack
from detection.tests.factories import DetectionFactory
from tests.video_clips import clip_frames, make_clip

SIZE = (320, 240)
SECONDS = 2.0
FPS = 10
FORMATS = {"mp4": "MP4", "webm": "WEBM", "mov": "MOV"}
CODECS = {"mp4": "h264", "webm": "vp9", "mov": "h264"}
AGGREGATE_METHOD = (
    "Each track: the mean of its most suspicious quarter of frames. Not calibrated on video data."
)

# Two tracks over four sampled frames (every half second): track 1 decides (fake), track 2 real.
# (time_s, P(fake), box, keeps a picture of its frame)
TWO_TRACKS = {
    1: {
        "label": "fake",
        "fake_probability": 0.88,
        "points": [
            (0.0, 0.71, [40, 60, 120, 120], False),
            (0.5, 0.86, [52, 60, 120, 120], True),
            (1.0, 0.93, [64, 60, 120, 120], True),
            (1.5, 0.80, [76, 60, 120, 120], False),
        ],
    },
    2: {
        "label": "real",
        "fake_probability": 0.21,
        "points": [
            (0.5, 0.12, [200, 70, 90, 90], False),
            (1.0, 0.30, [190, 70, 90, 90], False),
            (1.5, 0.21, [180, 70, 90, 90], False),
        ],
    },
}


@functools.cache
def clip_bytes(fmt: str = "mp4") -> bytes:
    return make_clip(fmt, seconds=SECONDS, fps=FPS, size=SIZE)


@functools.cache
def frame_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(clip_frames(seconds=0.1, fps=10, size=SIZE)[0]).save(buffer, format="JPEG")
    return buffer.getvalue()


@functools.cache
def poster_webp() -> bytes:
    """The list's thumbnail of the clip, as the upload stores it: its first frame, small."""
    image = Image.fromarray(clip_frames(seconds=0.1, fps=10, size=SIZE)[0])
    image.thumbnail((160, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP")
    return buffer.getvalue()


def video_detection(*, tracks: dict | None = None, fmt: str = "mp4", **fields) -> Detection:
    """A video detection with a real stored clip. Pending unless `done=True` (then with `tracks`,
    TWO_TRACKS by default) or `no_face=True`; other fields as DetectionFactory takes them."""
    done = fields.get("done", False)
    video = {
        "kind": Detection.Kind.VIDEO,
        "image__data": clip_bytes(fmt),
        "image__filename": f"clip.{fmt}",
        "original_name": f"clip-{fmt}.{fmt}",
        "format": FORMATS[fmt],
        "width": SIZE[0],
        "height": SIZE[1],
        "duration_s": SECONDS,
        "frame_rate": float(FPS),
        "frame_count": int(SECONDS * FPS),
        "video_codec": CODECS[fmt],
        "thumbnail": poster_webp(),
        "faces": [],
        "face_box": None,
        "deciding_face": None,
    }
    if done or fields.get("no_face"):
        video.update(frames_total=4, frames_done=4, aggregate_method=AGGREGATE_METHOD)
    if done:
        tracks = TWO_TRACKS if tracks is None else tracks
        deciding = max(tracks, key=lambda i: tracks[i]["fake_probability"]) if tracks else None
        if deciding is not None:
            video.update(
                deciding_track=deciding,
                fake_probability=tracks[deciding]["fake_probability"],
                label=tracks[deciding]["label"],
            )
    detection = DetectionFactory(**{**video, **fields})
    if done and tracks:
        for index, spec in tracks.items():
            tracks_add(detection, index=index, **spec)
    return detection


def tracks_add(
    detection: Detection, *, index: int, label: str, fake_probability: float, points: list
) -> VideoTrack:
    times = [p[0] for p in points]
    track = VideoTrack.objects.create(
        detection=detection,
        index=index,
        fake_probability=fake_probability,
        label=label,
        max_probability=max(p[1] for p in points),
        frames=len(points),
        start_s=min(times),
        end_s=max(times),
    )
    for time_s, probability, box, snapshot in points:
        VideoFace.objects.create(
            detection=detection,
            track=track,
            sample=round(time_s * 2),
            time_s=time_s,
            box=box,
            fake_probability=probability,
            detector_confidence=0.97,
            snapshot=frame_jpeg() if snapshot else None,
        )
    return track
