"""What the upload gate accepts, and what a hostile file can make Pillow raise."""

from __future__ import annotations

import struct
import zlib

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
ACCEPT_ATTR: str = "image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"
ACCEPTED_FOR_PEOPLE = "JPEG, PNG or WebP"

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Pillow reports a JPEG carrying an MPF index of several pictures (many phone cameras) as "MPO",
# though it opened it through the JPEG plugin; only the first picture is kept.
FORMAT_ALIASES = {"MPO": "JPEG"}

# What a hostile file can make Pillow raise while parsing or decoding; a file that does any of
# this is refused, never a server error.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)

# A progressive JPEG is decoded scan by scan, and each scan costs a pass over the whole image: a
# 120 KB file repeating one scan 2000 times takes 17 s of CPU at 12 MP (libjpeg-turbo's
# TJPARAM_SCANLIMIT exists for this; Pillow sets no limit). Encoders write about 10 scans.
MAX_JPEG_SCANS = 100
