"""The validation flow every upload passes before it is stored.

``image_validate`` never trusts the file name or the client's content type. It

1. refuses by ``upload.size`` before reading, then reads at most limit + 1 bytes;
2. opens the bytes with Pillow restricted to JPEG, PNG and WebP (no other parser sees them); a
   PNG without the text chunks Pillow would refuse it for (``png_text_unreadable_drop``);
3. refuses too many pixels from the header, before any pixel memory is allocated, and a JPEG
   with an absurd number of progressive scans (each one a full decoding pass);
4. decodes fully, so a truncated or damaged file is refused here, not in the worker;
5. applies the EXIF orientation and re-encodes from pixels only (``reencode``). What is stored is
   a fresh image: metadata (EXIF with GPS, XMP, ICC, IPTC, PNG text, comments) and anything
   hidden around the pixels (an HTML page after IEND, a ZIP after a JPEG's EOI) are gone.
   Before that, ``provenance_read`` notes what the metadata says about the file (camera,
   software, generator, Content Credentials) for the result page; see ``provenance``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image

from detection.uploads import messages
from detection.uploads.containers import (
    jpeg_scan_count,
    metadata_found,
    png_text_unreadable_drop,
    webp_is_lossless,
)
from detection.uploads.fingerprint import image_phash, image_small, image_thumbnail
from detection.uploads.formats import (
    ALLOWED_FORMATS,
    CONTENT_TYPES,
    DECODE_ERRORS,
    EXTENSIONS,
    FORMAT_ALIASES,
    MAX_JPEG_SCANS,
)
from detection.uploads.metadata_readers import clean_text
from detection.uploads.provenance import provenance_read
from detection.uploads.reencode import encode, storable_pixels


@dataclass(frozen=True)
class CleanImage:
    content: bytes = field(repr=False)  # the re-encoded image to store: pixels only, no metadata
    format: str  # "JPEG" | "PNG" | "WEBP": the detected format, not the file name's
    extension: str  # ".jpg" | ".png" | ".webp"
    content_type: str  # "image/jpeg" | "image/png" | "image/webp"
    width: int  # after EXIF orientation is applied
    height: int
    sha256: str  # hex sha256 of the ORIGINAL uploaded bytes (dedup, audit)
    original_size: int  # bytes of the original upload
    removed_metadata: tuple[str, ...]  # what was present and stripped, for people; () if none
    phash: int = 0  # 64-bit difference hash of the stored pixels (near-duplicates)
    thumbnail: bytes = field(default=b"", repr=False)  # a small WebP for lists
    # What the file said about itself, read before it was stripped (detection.uploads.provenance).
    provenance: dict = field(default_factory=dict, repr=False, compare=False)


def image_validate(*, upload: UploadedFile) -> CleanImage:
    """Check one upload and return it re-encoded; ValidationError (a message for people) if not.

    Codes: "empty", "too_large", "not_an_image", "unsupported_format", "truncated",
    "too_many_pixels".
    """
    max_bytes = settings.DETECTION_MAX_UPLOAD_BYTES
    max_pixels = settings.DETECTION_MAX_PIXELS

    # The declared size first: a too large file is refused before a byte of it is read.
    if upload.size is not None:
        if upload.size == 0:
            raise messages.empty()
        if upload.size > max_bytes:
            raise messages.too_large(upload.size, max_bytes)
    # Read one byte past the limit: a size that lied is caught without reading the rest.
    data = upload_read_at_most(upload, max_bytes + 1)
    if not data:
        raise messages.empty()
    if len(data) > max_bytes:
        raise messages.too_large(len(data), max_bytes)

    sha256 = hashlib.sha256(data).hexdigest()
    # Pillow refuses a whole PNG for a text chunk past its bomb guards (over 1 MiB inflated);
    # the pixels are fine and the text is metadata we drop anyway, so it opens the PNG without
    # such chunks. Everything else here reads the file as it came.
    readable, dropped_text = png_text_unreadable_drop(data)
    try:
        img = Image.open(BytesIO(readable), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own bound (Image.MAX_IMAGE_PIXELS): an error above twice it, and a warning
        # above it where warnings are errors. Ours below is the one that matters; we do not use
        # warnings.catch_warnings to turn the warning into an error, as it is not thread-safe.
        raise messages.too_many_pixels(None, None, max_pixels) from exc
    except DECODE_ERRORS as exc:  # UnidentifiedImageError is an OSError
        raise messages.unidentified(data) from exc

    with img:
        fmt = FORMAT_ALIASES.get(img.format or "", img.format or "")
        if fmt not in ALLOWED_FORMATS:  # the formats= allow-list makes this unreachable
            raise messages.unsupported(img.format or "These")
        width, height = img.size
        if width < 1 or height < 1:
            raise messages.not_an_image()
        # From the header, before decoding: nothing has been allocated for the pixels yet.
        if width * height > max_pixels:
            raise messages.too_many_pixels(width, height, max_pixels)
        if fmt == "JPEG" and jpeg_scan_count(data) > MAX_JPEG_SCANS:
            raise messages.too_many_scans()
        try:
            # First frame only: an animation or an MPO's extra pictures are never decoded.
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise messages.too_many_pixels(width, height, max_pixels) from exc
        except DECODE_ERRORS as exc:
            # Pillow raises here for a file cut short as long as ImageFile.LOAD_TRUNCATED_IMAGES
            # is False (its default; nothing in this project may set it).
            raise messages.truncated() from exc

        removed = metadata_found(img, fmt, data)
        # What the metadata says, read before re-encoding drops it; never refuses the upload.
        provenance = provenance_read(data=data, img=img, fmt=fmt)
        if dropped_text:
            provenance["errors"].append(_png_text_dropped_note(dropped_text))
        lossless_webp = fmt == "WEBP" and webp_is_lossless(data)
        try:
            pixels = storable_pixels(img, fmt)
            content = encode(pixels, fmt, lossless_webp=lossless_webp)
            small = image_small(pixels)
            phash, thumbnail = image_phash(small), image_thumbnail(small)
        except DECODE_ERRORS as exc:
            raise messages.truncated() from exc
        width, height = pixels.size  # upright

    return CleanImage(
        content=content,
        format=fmt,
        extension=EXTENSIONS[fmt],
        content_type=CONTENT_TYPES[fmt],
        width=width,
        height=height,
        sha256=sha256,
        original_size=len(data),
        removed_metadata=removed,
        phash=phash,
        thumbnail=thumbnail,
        provenance=provenance,
    )


def _png_text_dropped_note(keywords: tuple[str, ...]) -> str:
    names = ", ".join(f"“{clean_text(k, 80) or '(no keyword)'}”" for k in keywords[:5])
    more = f" and {len(keywords) - 5} more" if len(keywords) > 5 else ""
    return (
        f"The PNG text {names}{more} was too large to read safely (over 1 MB uncompressed, "
        "or past 64 MB of text in all), so the image was read without it; like all metadata "
        "it is not kept in the stored copy."
    )


def upload_read_at_most(upload: UploadedFile, limit: int) -> bytes:
    """At most `limit` bytes of the upload (images and videos alike), leaving it at its start."""
    try:
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        pass  # a stream that cannot seek is read from where it is
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = upload.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    try:
        upload.seek(0)  # leave the upload readable for whoever needs the original
    except (AttributeError, OSError, ValueError):
        pass
    return b"".join(parts)
