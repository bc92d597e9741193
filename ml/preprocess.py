"""The one image preprocessing path, shared by training, evaluation and inference (no TF).

decode (Pillow, restricted formats, size bound) -> EXIF orientation -> RGB -> centre square crop
-> resize to the model input size (Lanczos) -> uint8 array (S, S, 3).

Scaling to [0, 1] happens inside the Keras model (a ``Rescaling`` layer), so whatever feeds the
network (tf.data at training, the engine at inference) feeds exactly the same uint8 pixels.
"""

from __future__ import annotations

import io
import operator
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Decompression-bomb guard. The limit is a parameter of every decoding function (and of
# ``Engine.load``): the web service passes its own setting (DETECTION_MAX_PIXELS). This constant
# is only the default for stand-alone use (the CLI's ``--max-pixels``, training, evaluation).
# 40 megapixels is above any real upload of a face photo. Pillow's own global bound
# (``Image.MAX_IMAGE_PIXELS``) is left as it is: we check the size from the header ourselves,
# before any pixel is decoded, so the effective limit is the smaller of ``max_pixels`` and
# Pillow's (an error above 2 x ~89 MP).
DEFAULT_MAX_PIXELS = 40_000_000
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class ImageDecodeError(ValueError):
    """The input is not an image we can read (message is fit to show to a person)."""


def check_max_pixels(max_pixels) -> int:
    """``max_pixels`` as a positive int, or ValueError (a configuration mistake, not bad input)."""
    try:
        n = operator.index(max_pixels)
    except TypeError:
        n = 0
    if isinstance(max_pixels, bool) or n < 1:
        raise ValueError(f"max_pixels must be a positive integer, not {max_pixels!r}")
    return n


def load_image(image, *, max_pixels: int) -> Image.Image:
    """Decode bytes / a path / a PIL image into an RGB PIL image with EXIF orientation applied.

    Anything with more than ``max_pixels`` pixels is refused from its header, before decoding.
    """
    max_pixels = check_max_pixels(max_pixels)
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
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow's own bound (the warning only where warnings are errors)
            raise ImageDecodeError("The image is too large (too many pixels).") from exc
        except OSError as exc:
            raise ImageDecodeError(f"The image could not be read: {exc}") from exc
        opened = True
    w, h = img.size
    if w * h > max_pixels:
        if opened:
            img.close()
        raise ImageDecodeError(
            f"The image is too large ({w}x{h} pixels; at most {max_pixels:,} allowed)."
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
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
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


def prepare(image, size: int, *, max_pixels: int) -> np.ndarray:
    """THE preprocessing function: any input -> uint8 (size, size, 3), used everywhere."""
    return fit(load_image(image, max_pixels=max_pixels), size)


def prepare_path(path: bytes | str, size: int, max_pixels: int) -> np.ndarray:
    """``prepare`` for tf.data (paths come as bytes). Raises ``ImageDecodeError``: callers check
    their files first (``data.find_undecodable``) rather than feed a stand-in image."""
    p = path.decode() if isinstance(path, bytes) else path
    return prepare(p, int(size), max_pixels=int(max_pixels))


# --- perturbations used by the robustness evaluation (not augmentation: fixed, deterministic) ---

def perturb(arr: np.ndarray, kind: str | None) -> np.ndarray:
    """Apply a named, deterministic degradation to a prepared uint8 image.

    ``jpeg70``: re-encode at JPEG quality 70. ``half``: downscale by 2 (bilinear), upscale back
    (bilinear). ``blur``: Gaussian blur, radius 1 px. ``None``/``"none"``: unchanged.
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
    if kind == "blur":
        from PIL import ImageFilter

        return np.asarray(img.filter(ImageFilter.GaussianBlur(radius=1.0)), dtype=np.uint8)
    if kind == "half":
        w, h = img.size
        small = img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR)
        return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8)
    raise ValueError(f"unknown perturbation {kind!r} (use jpeg70, half, blur or none)")


PERTURBATIONS = ("none", "jpeg70", "half", "blur")
