"""The one image preprocessing path, shared by training, evaluation and inference (no TF).

decode (Pillow, restricted formats, size bound) -> EXIF orientation -> RGB -> centre square crop
-> resize to the model input size (Lanczos) -> uint8 array (S, S, 3).

Scaling to [0, 1] happens inside the Keras model (a ``Rescaling`` layer), so whatever feeds the
network (tf.data at training, the engine at inference) feeds exactly the same uint8 pixels.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Decompression-bomb guard: 40 megapixels is above any real upload of a face photo (a 50 MP
# camera is rare); Pillow raises DecompressionBombError above 2x this bound and warns above it,
# and we refuse anything above the bound ourselves.
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class ImageDecodeError(ValueError):
    """The input is not an image we can read (message is fit to show to a person)."""


def load_image(image) -> Image.Image:
    """Decode bytes / a path / a PIL image into an RGB PIL image with EXIF orientation applied."""
    if isinstance(image, Image.Image):
        img = image
        opened = False
    else:
        if isinstance(image, (bytes, bytearray, memoryview)):
            if len(image) == 0:
                raise ImageDecodeError("The file is empty.")
            fp = io.BytesIO(bytes(image))
        elif isinstance(image, (str, os.PathLike)):
            fp = Path(image)
            if not fp.is_file():
                raise ImageDecodeError(f"No such image file: {fp.name}")
        else:
            raise ImageDecodeError(f"Unsupported input type: {type(image).__name__}")
        try:
            img = Image.open(fp, formats=list(ALLOWED_FORMATS))
        except UnidentifiedImageError as exc:
            raise ImageDecodeError(
                "This file is not a readable image; upload a JPEG, PNG or WebP picture."
            ) from exc
        except Image.DecompressionBombError as exc:
            raise ImageDecodeError("The image is too large (too many pixels).") from exc
        except OSError as exc:
            raise ImageDecodeError(f"The image could not be read: {exc}") from exc
        opened = True
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"The image is too large ({w}x{h} pixels; at most {MAX_IMAGE_PIXELS:,} allowed)."
        )
    if w < 1 or h < 1:
        raise ImageDecodeError("The image has no pixels.")
    try:
        if opened:
            img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                bg = Image.new("RGB", rgba.size, (255, 255, 255))
                bg.paste(rgba, mask=rgba.getchannel("A"))
                img = bg
            else:
                img = img.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError("The image is too large (too many pixels).") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"The image is damaged or truncated: {exc}") from exc
    return img


def centre_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def fit(img: Image.Image, size: int) -> np.ndarray:
    """Centre square crop + Lanczos resize (as the faces128 data set was built) -> uint8 array."""
    img = centre_square(img)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.shape != (size, size, 3):  # pragma: no cover - defensive
        raise ImageDecodeError("Unexpected image layout after decoding.")
    return arr


def prepare(image, size: int) -> np.ndarray:
    """THE preprocessing function: any input -> uint8 (size, size, 3), used everywhere."""
    return fit(load_image(image), size)


def prepare_path(path: bytes | str, size: int) -> np.ndarray:
    """``prepare`` for tf.data (paths come as bytes); undecodable files become a grey image."""
    p = path.decode() if isinstance(path, bytes) else path
    try:
        return prepare(p, int(size))
    except ImageDecodeError:
        return np.full((int(size), int(size), 3), 127, np.uint8)


# --- perturbations used by the robustness evaluation (not augmentation: fixed, deterministic) ---

def perturb(arr: np.ndarray, kind: str | None) -> np.ndarray:
    """Apply a named, deterministic degradation to a prepared uint8 image.

    ``jpeg70``: re-encode at JPEG quality 70. ``half``: downscale by 2 (bilinear), upscale back
    (bilinear). ``None``/``"none"``: unchanged.
    """
    if not kind or kind == "none":
        return arr
    img = Image.fromarray(arr)
    if kind.startswith("jpeg"):
        q = int(kind[4:] or 70)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)
    if kind == "half":
        w, h = img.size
        small = img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR)
        return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8)
    raise ValueError(f"unknown perturbation {kind!r} (use jpeg70, half or none)")


PERTURBATIONS = ("none", "jpeg70", "half")
