"""Re-encoding from pixels: what is stored is a fresh image with nothing around the pixels."""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageOps

from detection.uploads.formats import DECODE_ERRORS

# Re-encoding settings. JPEG: quality 95 keeps the detector's input close to the upload.
# PNG level 3: about 3x faster than the default 6 for a few percent more bytes.
# WebP method 2 (lossy) and effort 25 / method 0 (lossless): the defaults take seconds on a
# 12 MP image; the output is still lossless where the source was.
_JPEG_OPTIONS = {"quality": 95}
_PNG_OPTIONS = {"optimize": False, "compress_level": 3}
_WEBP_LOSSY_OPTIONS = {"quality": 95, "method": 2}
_WEBP_LOSSLESS_OPTIONS = {"lossless": True, "quality": 25, "method": 0}


def storable_pixels(img: Image.Image, fmt: str) -> Image.Image:
    """RGB, or RGBA where a PNG/WebP really has transparency, upright, with no metadata attached.

    The ICC profile is dropped without converting the colours: the model reads raw pixel values
    (ml/preprocess.py ignores profiles too), so the stored pixels are the ones it was meant to see.
    """
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except DECODE_ERRORS:
        pass  # unreadable EXIF: keep the pixels as they are stored

    mode = img.mode
    has_alpha = fmt != "JPEG" and ("A" in mode or "transparency" in img.info)
    if mode.startswith("I"):
        # 16-bit greyscale PNG: scale to 8 bits; convert() would clip everything above 255.
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        has_alpha = False
    target = "RGBA" if has_alpha else "RGB"
    if img.mode != target:
        img = img.convert(target)  # palette, 1-bit, greyscale, CMYK, tRNS colour keys
    if target == "RGBA" and img.getchannel("A").getextrema() == (255, 255):
        img = img.convert("RGB")  # an alpha channel that is opaque everywhere carries nothing
    # Pillow's encoders take a comment, ICC profile or transparency from .info when present.
    img.info = {}
    return img


def encode(img: Image.Image, fmt: str, *, lossless_webp: bool) -> bytes:
    out = BytesIO()
    if fmt == "JPEG":
        img.save(out, "JPEG", **_JPEG_OPTIONS)
    elif fmt == "PNG":
        img.save(out, "PNG", **_PNG_OPTIONS)
    else:
        options = _WEBP_LOSSLESS_OPTIONS if lossless_webp else _WEBP_LOSSY_OPTIONS
        img.save(out, "WEBP", **options)
    return out.getvalue()

