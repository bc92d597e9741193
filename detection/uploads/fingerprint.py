"""What is computed from the stored pixels at intake, besides the file itself: a perceptual hash
(to link near-duplicates) and a thumbnail (for lists). Both from the upright, re-encoded pixels,
so they describe what the model sees."""

from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image

# 9x8 grey pixels -> 64 bits: each bit says whether a pixel is brighter than its right neighbour
# (a difference hash). Robust to re-encoding, scaling and small colour changes; a crop or a new
# face changes many bits.
_HASH_SIZE = 8
# Two images whose hashes differ in at most this many of 64 bits are "very similar": re-saved,
# resized or brightened copies of a face photo differed in 0 to 1 bits, a 5 % crop in 9, and
# 780 pairs of unrelated aligned face photos in 11 or more (30 on average).
NEAR_DUPLICATE_BITS = 5
# Thumbnails: the longest side, in pixels (the lists show 56 px squares; twice that for
# high-density screens, and a little to spare for cropping to a square).
THUMBNAIL_SIDE = 160
THUMBNAIL_CONTENT_TYPE = "image/webp"


def image_phash(img: Image.Image) -> int:
    """The image's 64-bit difference hash, as a signed integer (a PostgreSQL bigint)."""
    grey = img.convert("L").resize((_HASH_SIZE + 1, _HASH_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


def image_small(img: Image.Image) -> Image.Image:
    """The image scaled to fit THUMBNAIL_SIDE (aspect kept; transparency kept where there is
    some): the thumbnail, and what the hash is taken from (scaling 12 MP down once is the cost)."""
    small = img.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    if small.mode not in ("RGB", "RGBA"):
        small = small.convert("RGB")
    return small


def image_thumbnail(small: Image.Image) -> bytes:
    """``image_small``'s picture as a WebP."""
    out = BytesIO()
    # Method 2, not libwebp's default 4: half the time per upload (128 px test faces: 0.67 ms
    # against 1.31) for files 4 % larger (2.42 kB against 2.33 kB) and 0.3 dB less PSNR (36.8
    # against 37.1 dB); a 12 MP picture of 48 faces: 1.2 ms against 2.1, 3 % larger.
    small.save(out, "WEBP", quality=80, method=2)
    return out.getvalue()
