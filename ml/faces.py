"""Face detection (MTCNN, weights from the ``mtcnn`` PyPI package, MIT licence) and crop rules.

Why MTCNN: the Haar cascade it replaces missed turned, small and dark faces and fired on
textures. MTCNN (Zhang et al. 2016; the ``mtcnn`` package by Iván de Paz Centeno, which ships
its P/R/O-Net weights inside the wheel, so nothing is downloaded at run time) finds every face
with a confidence, and runs on the TensorFlow the worker already loads.

Rules (documented in the model card):

- Detect on a copy whose longest side is at most ``DETECT_MAX_SIDE`` px, padded by
  ``PAD_FRACTION`` of its size with edge pixels: a tight face crop, whose face touches the
  borders (every image in the training data), is then still found as one face.
- Keep faces with detector confidence >= ``MIN_CONFIDENCE`` and a side of at least
  ``MIN_FACE_FRACTION`` of the image's shorter side (and ``MIN_FACE_PX``), at most
  ``max_faces``, largest first.
- Per face, the model input: when the face already fills the frame (face width >=
  ``SMALL_FACE_FRACTION`` x the shorter image side: the training images' framing) the whole
  image, centre square, exactly as training sees it. Otherwise a square of ``FACE_MARGIN`` x
  the face box around it, shifted up by ``FACE_SHIFT_UP`` x the face height, moved inside the
  image and shrunk to fit: the framing of the training crops.

FACE_MARGIN and SMALL_FACE_FRACTION were measured with this detector on 200 faces128 training
images (25 per source): the MTCNN face box is 0.36-0.89 of the image width (median per source;
0.54 over all, lowest seen 0.23) with its centre at 0.53 of the height. So a square 1.85x the
box, shifted up by 0.05 box heights, gives the median training framing, and a training-like
image (face width >= 0.23 of the side) is never cropped (threshold 0.22).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FACE_MARGIN = 1.85
FACE_SHIFT_UP = 0.05
SMALL_FACE_FRACTION = 0.22
DETECT_MAX_SIDE = 512
PAD_FRACTION = 0.2
MIN_CONFIDENCE = 0.80
MTCNN_MIN_FACE = 20
# 32, not MTCNN's 20: a smaller face is too small for a verdict (the model sees 128 px), and
# looking for 20-px faces in a small image ran the detector's largest, slowest pyramid levels.
# Measured on the 4,158 test faces through the serving path (docs/performance.md): median time
# per image 17.3 -> 15.6 ms, no-face rate 0.51 % -> 0.34 %, spurious second faces 3.5 % ->
# 1.6 %, ROC AUC 0.9054 -> 0.9073.
MIN_FACE_PX = 32
MIN_FACE_FRACTION = 0.04
MAX_FACES = 10


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # (x, y, w, h) in the image's pixels
    confidence: float


def _mtcnn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mtcnn")
    except PackageNotFoundError:  # pragma: no cover - installed with the requirements
        return "unknown"


class FaceDetector:
    """Lazily created per process (after the fork); not thread-safe, use one per thread."""

    def __init__(self, *, max_faces: int = MAX_FACES, min_confidence: float = MIN_CONFIDENCE):
        import tensorflow as tf
        from mtcnn import MTCNN

        self._mtcnn = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
        # The package calls its three Keras networks eagerly; traced once (with shapes
        # generalised, the pyramid's levels share one graph) they run about 4x faster.
        for stage in self._mtcnn.stages:
            stage._model = tf.function(stage._model, reduce_retracing=True)
        self.max_faces = int(max_faces)
        self.min_confidence = float(min_confidence)
        self.available = True
        self.backend = f"mtcnn-{_mtcnn_version()} (P/R/O-Net)"

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in the given image's pixel coordinates, largest first."""
        import cv2

        h, w = rgb.shape[:2]
        if min(h, w) < MIN_FACE_PX:
            return []
        # MTCNN's pyramid is only sound at its default minimum face (20 px: mtcnn 1.0.0 counts
        # its levels as if it started at full size, and a larger minimum runs the last levels
        # below the 12 px network input, which loses every face). So the image is scaled to
        # make the smallest face wanted 20 px, never up, and to at most DETECT_MAX_SIDE.
        want = max(MIN_FACE_PX, MIN_FACE_FRACTION * min(h, w))
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w), MTCNN_MIN_FACE / want)
        small = np.ascontiguousarray(rgb[..., :3])
        if scale < 1.0:
            small = cv2.resize(small, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        pad = int(round(PAD_FRACTION * max(sh, sw)))
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        found = self._mtcnn.detect_faces(padded, min_face_size=MTCNN_MIN_FACE,
                                         threshold_onet=self.min_confidence)
        faces = []
        for f in found or []:
            conf = float(f.get("confidence", 0.0))
            if conf < self.min_confidence:
                continue
            bx, by, bw, bh = (float(v) for v in f["box"])
            x0 = max(0.0, (bx - pad) / scale)
            y0 = max(0.0, (by - pad) / scale)
            x1 = min(float(w), (bx - pad + bw) / scale)
            y1 = min(float(h), (by - pad + bh) / scale)
            if x1 - x0 < MIN_FACE_PX or y1 - y0 < MIN_FACE_PX:
                continue
            faces.append(Face((int(round(x0)), int(round(y0)), int(round(x1 - x0)),
                               int(round(y1 - y0))), conf))
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        return faces[: self.max_faces]


def crop_box_for(face, image_w: int, image_h: int, *,
                 whole_image_ok: bool = True) -> tuple[int, int, int, int] | None:
    """The square crop (x, y, w, h) for a face box, or None when the whole image is the crop
    (a face filling the frame, when ``whole_image_ok``)."""
    fx, fy, fw, fh = face.box if isinstance(face, Face) else face
    if whole_image_ok and fw >= SMALL_FACE_FRACTION * min(image_w, image_h):
        return None
    side = int(round(min(FACE_MARGIN * max(fw, fh), image_w, image_h)))
    cx = fx + fw / 2.0
    cy = fy + fh / 2.0 - FACE_SHIFT_UP * fh
    x0 = int(round(min(max(cx - side / 2.0, 0), image_w - side)))
    y0 = int(round(min(max(cy - side / 2.0, 0), image_h - side)))
    return x0, y0, side, side
