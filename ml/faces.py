"""Face detection with OpenCV's bundled Haar cascade, and the crop rule.

Rule (documented in the model card): detect frontal faces on a grey copy of the image (longest
side scaled to at most 640 px). Take the largest face. Crop ONLY if that face is small
relative to the image: face width < ``SMALL_FACE_FRACTION`` x the shorter image side. Then cut
a square of side ``FACE_MARGIN`` x face width centred on the face box (shifted up by
``FACE_SHIFT_UP`` x face width, so hair and chin fit as in the training crops), moved inside
the image, and shrunk to fit if needed. Otherwise (no face, or a face already filling the frame
as in the training images) use the whole image, centre square crop.

FACE_MARGIN was chosen from the training data: on 300 faces128 training images (60 per source)
the Haar face box is 0.47-0.70 of the image width (median per source; lowest seen 0.41) and
its centre sits at 0.55 of the height, so a square ~1.6x the face box, shifted up by ~0.08 face
widths, reproduces the framing the network was trained on, and a training-like image (face
width >= 0.41 of the side) is never cropped (threshold 0.35).
"""

from __future__ import annotations

import numpy as np

FACE_MARGIN = 1.6
FACE_SHIFT_UP = 0.08
SMALL_FACE_FRACTION = 0.35
DETECT_MAX_SIDE = 640
MIN_FACE_PX = 24
CASCADE_FILE = "haarcascade_frontalface_default.xml"


def _find_cascade_api(cv2):
    """cv2.CascadeClassifier (OpenCV 4.x) or the contrib xobjdetect one (OpenCV 5)."""
    cls = getattr(cv2, "CascadeClassifier", None)
    if cls is None:
        cls = getattr(getattr(cv2, "xobjdetect", None), "CascadeClassifier", None)
    return cls


def _find_cascade_file(cv2) -> str | None:
    import os

    base = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if base and os.path.isfile(os.path.join(base, CASCADE_FILE)):
        return os.path.join(base, CASCADE_FILE)
    return None


class FaceDetector:
    """Lazily created per process (safe after fork); not thread-safe, use one per thread.

    ``available`` is False when the installed OpenCV has no Haar cascade (OpenCV 5.x wheels
    dropped ``CascadeClassifier`` and ``cv2.data.haarcascades``): ``detect`` then finds
    nothing and the engine falls back to the whole image (``face_found`` False).
    """

    def __init__(self):
        import cv2

        self._cv2 = cv2
        self._clf = None
        cls, path = _find_cascade_api(cv2), _find_cascade_file(cv2)
        if cls is not None and path is not None:
            clf = cls(path)
            if not clf.empty():
                self._clf = clf
        self.available = self._clf is not None
        self.backend = (f"opencv-{cv2.__version__} haar {CASCADE_FILE}" if self.available
                        else f"none (opencv-{cv2.__version__} ships no Haar cascade)")

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) in the given image's pixel coordinates, largest first."""
        if self._clf is None:
            return []
        cv2 = self._cv2
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_side = max(MIN_FACE_PX, int(min(grey.shape[:2]) * 0.08))
        if min(grey.shape[:2]) < min_side:
            return []
        boxes = self._clf.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                           minSize=(min_side, min_side))
        out = []
        for b in (boxes if len(boxes) else []):
            x, y, bw, bh = (int(round(float(v) / scale)) for v in b)
            out.append((x, y, min(bw, w - x), min(bh, h - y)))
        out.sort(key=lambda b: b[2] * b[3], reverse=True)
        return out


def crop_box_for(face, image_w: int, image_h: int) -> tuple[int, int, int, int] | None:
    """The square crop (x, y, w, h) for a detected face, or None when no crop should be made."""
    fx, fy, fw, fh = face
    if fw >= SMALL_FACE_FRACTION * min(image_w, image_h):
        return None
    side = int(round(min(FACE_MARGIN * max(fw, fh), image_w, image_h)))
    cx = fx + fw / 2.0
    cy = fy + fh / 2.0 - FACE_SHIFT_UP * fh
    x0 = int(round(min(max(cx - side / 2.0, 0), image_w - side)))
    y0 = int(round(min(max(cy - side / 2.0, 0), image_h - side)))
    return x0, y0, side, side
