"""Small generated images for tests (no data set needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ml import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared"
FACES128 = SHARED / "datasets" / "faces128"


def make_image(seed: int, size=(48, 40), fake: bool = False) -> Image.Image:
    """Smooth random colour field; 'fake' ones get a fine checkerboard (a learnable cue)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(base).resize(size, Image.Resampling.BICUBIC), np.int16)
    if fake:
        yy, xx = np.mgrid[: size[1], : size[0]]
        img = img + (((yy + xx) % 2) * 24 - 12)[..., None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def save(img: Image.Image, path: Path, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def jpeg_bytes(img: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def make_split_tree(root: Path, n_per: int = 8, sources=("srcA", "srcB"), size=(40, 40)) -> Path:
    """<root>/<source>/<split>/<label>/*.png with both labels in every split."""
    k = 0
    for src in sources:
        for split in ("train", "val", "test"):
            for label in ("real", "fake"):
                for i in range(n_per):
                    k += 1
                    save(make_image(k, size, fake=label == "fake"),
                         root / src / split / label / f"{label}_{i}_{k}.png")
    return root
