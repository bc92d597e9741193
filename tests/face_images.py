"""A real face photo for the end-to-end tests: the detector judges faces only, so a verdict
test needs a face (a synthetic colour field is rightly "no face"). The face comes from the
shared data (`../shared/datasets/faces128`, present in CI and beside every checkout)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

FACES128 = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "faces128"
FACE = FACES128 / "140k_ffhq_stylegan_zoya2244" / "test" / "real"


def face_image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (160, 120)) -> bytes:
    """A real face filling the height of a grey ``size`` canvas, encoded as ``fmt``."""
    files = sorted(FACE.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no face images in {FACE}: the shared data set is needed")
    w, h = size
    side = min(w, h)
    face = Image.open(files[0]).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(face, ((w - side) // 2, (h - side) // 2))
    buf = io.BytesIO()
    canvas.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()
