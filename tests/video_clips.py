"""Short video clips made in the tests: the shared data holds no videos. A real face (from the
shared face images) moves across a grey canvas, so the face step finds it in every frame and a
tracker has something to follow; `faces=2` adds a second face moving the other way."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from tests.face_images import face_image_bytes

# Container -> (PyAV format name, codec, pixel format).
FORMATS = {
    "mp4": ("mp4", "libx264", "yuv420p"),
    "mov": ("mov", "libx264", "yuv420p"),
    "webm": ("webm", "libvpx-vp9", "yuv420p"),
}


def _face(side: int) -> Image.Image:
    img = Image.open(io.BytesIO(face_image_bytes("PNG", (160, 160)))).convert("RGB")
    return img.resize((side, side), Image.Resampling.LANCZOS)


def clip_frames(
    *, seconds: float = 2.0, fps: int = 10, size: tuple[int, int] = (320, 240), faces: int = 1
) -> list[np.ndarray]:
    """The RGB frames of a clip: each face slides a little from frame to frame."""
    w, h = size
    side = min(w, h) // 2
    face = _face(side)
    frames = []
    n = max(1, round(seconds * fps))
    for i in range(n):
        canvas = Image.new("RGB", size, (128, 128, 128))
        t = i / max(1, n - 1)
        x = int((w - side) * (0.1 + 0.3 * t)) if faces == 1 else int((w / 2 - side) * t)
        canvas.paste(face, (max(0, x), (h - side) // 2))
        if faces > 1:
            x2 = w - side - int((w / 2 - side) * t)
            canvas.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (x2, (h - side) // 2))
        frames.append(np.asarray(canvas))
    return frames


def make_clip(
    fmt: str = "mp4",
    *,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    faces: int = 1,
    frames: list[np.ndarray] | None = None,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """An encoded clip (mp4, mov or webm) of `clip_frames`, or of the given RGB frames;
    `metadata` is written into the container (title, location, ...)."""
    container_format, codec, pix_fmt = FORMATS[fmt]
    frames = frames if frames is not None else clip_frames(
        seconds=seconds, fps=fps, size=size, faces=faces
    )
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=Fraction(fps))
        height, width = frames[0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()
