"""The ML tools' model of the serving path matches what the web side really stores."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from detection.uploads import reencode
from ml.evaluate import SERVING_JPEG_QUALITY, serving_bytes


def test_serving_path_reencode_matches_the_web_side(tmp_path):
    assert reencode._JPEG_OPTIONS["quality"] == SERVING_JPEG_QUALITY
    rng = np.random.default_rng(0)
    arr = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    path = tmp_path / "u.jpg"
    Image.fromarray(arr).save(path, "JPEG", quality=90)
    with Image.open(path) as img:
        img.load()
        stored = reencode.encode(reencode.storable_pixels(img, "JPEG"), "JPEG",
                                 lossless_webp=False)
    ours = serving_bytes(str(path))
    a = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(ours)).convert("RGB"))
    assert np.array_equal(a, b)
