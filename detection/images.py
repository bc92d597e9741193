"""The single gate every upload passes before it is stored.

``image_validate`` never trusts the file name or the client's content type. It

1. refuses by ``upload.size`` before reading, then reads at most limit + 1 bytes;
2. opens the bytes with Pillow restricted to JPEG, PNG and WebP (no other parser sees them);
3. refuses too many pixels from the header, before any pixel memory is allocated, and a JPEG
   with an absurd number of progressive scans (each one a full decoding pass);
4. decodes fully, so a truncated or damaged file is refused here, not in the worker;
5. applies the EXIF orientation and re-encodes from pixels only. What is stored is a fresh image:
   metadata (EXIF with GPS, XMP, ICC, IPTC, PNG text, comments) and anything hidden around the
   pixels (an HTML page after IEND, a ZIP after a JPEG's EOI) are gone.

``filename_sanitize`` makes the client's file name safe to show; it is never used as a path.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from io import BytesIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
ACCEPT_ATTR: str = "image/jpeg,image/png,image/webp,.jpg,.jpeg,.png,.webp"

_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Pillow reports a JPEG carrying an MPF index of several pictures (many phone cameras) as "MPO",
# though it opened it through the JPEG plugin; only the first picture is kept.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# Names in removed_metadata, in the order they are listed.
_METADATA_ORDER = (
    "EXIF",
    "GPS location",
    "XMP",
    "ICC profile",
    "IPTC/Photoshop",
    "PNG text chunks",
    "comment",
    "animation frames",
    "extra embedded images",
)
_GPS_IFD = 0x8825

# What a hostile file can make Pillow raise while parsing or decoding; a file that does any of
# this is refused, never a server error.
_DECODE_ERRORS = (
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

# Re-encoding settings. JPEG: quality 95 keeps the detector's input close to the upload.
# PNG level 3: about 3x faster than the default 6 for a few percent more bytes.
# WebP method 2 (lossy) and effort 25 / method 0 (lossless): the defaults take seconds on a
# 12 MP image; the output is still lossless where the source was.
_JPEG_OPTIONS = {"quality": 95}
_PNG_OPTIONS = {"optimize": False, "compress_level": 3}
_WEBP_LOSSY_OPTIONS = {"quality": 95, "method": 2}
_WEBP_LOSSLESS_OPTIONS = {"lossless": True, "quality": 25, "method": 0}

_ACCEPTED_FOR_PEOPLE = "JPEG, PNG or WebP"

# A progressive JPEG is decoded scan by scan, and each scan costs a pass over the whole image: a
# 120 KB file repeating one scan 2000 times takes 17 s of CPU at 12 MP (libjpeg-turbo's
# TJPARAM_SCANLIMIT exists for this; Pillow sets no limit). Encoders write about 10 scans.
_MAX_JPEG_SCANS = 100


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
            raise _empty()
        if upload.size > max_bytes:
            raise _too_large(upload.size, max_bytes)
    # Read one byte past the limit: a size that lied is caught without reading the rest.
    data = _read_at_most(upload, max_bytes + 1)
    if not data:
        raise _empty()
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)

    sha256 = hashlib.sha256(data).hexdigest()
    try:
        img = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own bound (Image.MAX_IMAGE_PIXELS): an error above twice it, and a warning
        # above it where warnings are errors. Ours below is the one that matters; we do not use
        # warnings.catch_warnings to turn the warning into an error, as it is not thread-safe.
        raise _too_many_pixels(None, None, max_pixels) from exc
    except _DECODE_ERRORS as exc:  # UnidentifiedImageError is an OSError
        raise _unidentified(data) from exc

    with img:
        fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "")
        if fmt not in ALLOWED_FORMATS:  # the formats= allow-list makes this unreachable
            raise _unsupported(img.format or "These")
        width, height = img.size
        if width < 1 or height < 1:
            raise _not_an_image()
        # From the header, before decoding: nothing has been allocated for the pixels yet.
        if width * height > max_pixels:
            raise _too_many_pixels(width, height, max_pixels)
        if fmt == "JPEG" and _jpeg_scan_count(data) > _MAX_JPEG_SCANS:
            raise _too_many_scans()
        try:
            # First frame only: an animation or an MPO's extra pictures are never decoded.
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(width, height, max_pixels) from exc
        except _DECODE_ERRORS as exc:
            # Pillow raises here for a file cut short as long as ImageFile.LOAD_TRUNCATED_IMAGES
            # is False (its default; nothing in this project may set it).
            raise _truncated() from exc

        removed = _metadata_found(img, fmt, data)
        lossless_webp = fmt == "WEBP" and _webp_is_lossless(data)
        try:
            pixels = _storable_pixels(img, fmt)
            content = _encode(pixels, fmt, lossless_webp=lossless_webp)
        except _DECODE_ERRORS as exc:
            raise _truncated() from exc
        width, height = pixels.size  # upright

    return CleanImage(
        content=content,
        format=fmt,
        extension=_EXTENSIONS[fmt],
        content_type=_CONTENT_TYPES[fmt],
        width=width,
        height=height,
        sha256=sha256,
        original_size=len(data),
        removed_metadata=removed,
    )


# --- Reading --------------------------------------------------------------------------------


def _read_at_most(upload: UploadedFile, limit: int) -> bytes:
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


# --- Metadata -------------------------------------------------------------------------------


def _metadata_found(img: Image.Image, fmt: str, data: bytes) -> tuple[str, ...]:
    """Names of the metadata present in the upload, all of which re-encoding drops."""
    found: set[str] = set()
    if fmt == "JPEG":
        found |= _jpeg_metadata(img)
    elif fmt == "PNG":
        found |= _png_metadata(data)
    else:
        found |= _webp_metadata(data)
    if "exif" in img.info:
        found.add("EXIF")
    if "EXIF" in found:
        try:
            if img.getexif().get_ifd(_GPS_IFD):
                found.add("GPS location")
        except _DECODE_ERRORS:
            pass  # unreadable EXIF is still dropped; it just cannot be described further
    if "xmp" in img.info:
        found.add("XMP")
    if img.info.get("icc_profile"):
        found.add("ICC profile")
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        found.add("extra embedded images" if img.format == "MPO" else "animation frames")
    return tuple(name for name in _METADATA_ORDER if name in found)


def _jpeg_metadata(img: Image.Image) -> set[str]:
    found: set[str] = set()
    for marker, body in getattr(img, "applist", []):
        if marker == "APP1" and body.startswith(b"Exif\x00"):
            found.add("EXIF")
        elif marker == "APP1" and body.startswith(b"http://ns.adobe.com/"):
            found.add("XMP")  # XMP and extended XMP
        elif marker == "APP2" and body.startswith(b"ICC_PROFILE\x00"):
            found.add("ICC profile")
        elif marker == "APP13" and body.startswith(b"Photoshop 3.0\x00"):
            found.add("IPTC/Photoshop")
        elif marker == "COM":
            found.add("comment")
    return found


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _png_metadata(data: bytes) -> set[str]:
    # Walk the chunk headers ourselves: Pillow reads text chunks after the image data only when
    # decoding the last frame, which an animated PNG would make us do for every frame.
    found: set[str] = set()
    pos, end = len(_PNG_SIGNATURE), len(data)
    while pos + 8 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind in _PNG_TEXT_CHUNKS:
            keyword = data[pos + 8 : pos + 8 + min(length, 80)].split(b"\x00", 1)[0]
            if keyword == b"XML:com.adobe.xmp":
                found.add("XMP")
            else:
                found.add("PNG text chunks")
                if keyword.lower().startswith(b"raw profile type exif"):
                    found.add("EXIF")  # ImageMagick's hex-encoded EXIF
        elif kind == b"eXIf":
            found.add("EXIF")
        elif kind == b"iCCP":
            found.add("ICC profile")
        elif kind == b"IEND":
            break
        pos += 12 + length
    return found


def _riff_chunks(data: bytes, pos: int, end: int):
    """(fourcc, payload start, payload size) of each RIFF chunk between pos and end."""
    end = min(end, len(data))
    while pos + 8 <= end:
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        yield data[pos : pos + 4], pos + 8, size
        pos += 8 + size + (size & 1)


def _webp_chunks(data: bytes):
    """The top-level chunks of a RIFF/WEBP file (after its 12-byte header)."""
    return _riff_chunks(data, 12, 8 + int.from_bytes(data[4:8], "little"))


def _webp_metadata(data: bytes) -> set[str]:
    names = {b"EXIF": "EXIF", b"XMP ": "XMP", b"ICCP": "ICC profile"}
    return {names[fourcc] for fourcc, _start, _size in _webp_chunks(data) if fourcc in names}


def _webp_is_lossless(data: bytes) -> bool:
    """Whether the (first frame's) bitstream is VP8L, WebP's lossless coding, rather than VP8."""
    for fourcc, start, size in _webp_chunks(data):
        if fourcc == b"ANMF":
            # An animation frame: 16 bytes of position and timing, then ALPH / VP8 / VP8L chunks.
            fourcc = next(
                (
                    inner
                    for inner, _s, _n in _riff_chunks(data, start + 16, start + size)
                    if inner in (b"VP8L", b"VP8 ")
                ),
                b"",
            )
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
    return False


def _jpeg_scan_count(data: bytes) -> int:
    """Start-of-scan markers up to the first top-level EOI (more than the limit: stops counting).

    Walks the segments, skipping entropy-coded data, so bytes in an EXIF thumbnail or appended
    after the image (a phone's motion-photo video) are not mistaken for scans.
    """
    pos, end, scans = 2, len(data), 0
    while pos + 4 <= end and scans <= _MAX_JPEG_SCANS:
        if data[pos] != 0xFF:
            break  # not a marker: the structure is broken and Pillow will say so
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker != 0xDA:  # SOS
            continue
        scans += 1
        # Entropy-coded data runs to the next 0xFF that is not a stuffed 0xFF00 or an RSTn.
        while (pos := data.find(b"\xff", pos)) != -1 and pos + 1 < end:
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break
        else:
            break
    return scans


# --- Pixels ---------------------------------------------------------------------------------


def _storable_pixels(img: Image.Image, fmt: str) -> Image.Image:
    """RGB, or RGBA where a PNG/WebP really has transparency, upright, with no metadata attached.

    The ICC profile is dropped without converting the colours: the model reads raw pixel values
    (ml/preprocess.py ignores profiles too), so the stored pixels are the ones it was meant to see.
    """
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except _DECODE_ERRORS:
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


def _encode(img: Image.Image, fmt: str, *, lossless_webp: bool) -> bytes:
    out = BytesIO()
    if fmt == "JPEG":
        img.save(out, "JPEG", **_JPEG_OPTIONS)
    elif fmt == "PNG":
        img.save(out, "PNG", **_PNG_OPTIONS)
    else:
        options = _WEBP_LOSSLESS_OPTIONS if lossless_webp else _WEBP_LOSSY_OPTIONS
        img.save(out, "WEBP", **options)
    return out.getvalue()


# --- Refusals -------------------------------------------------------------------------------


def _empty() -> ValidationError:
    return ValidationError(_("The file is empty."), code="empty")


def _too_large(size: int, limit: int) -> ValidationError:
    return ValidationError(
        _("The file is too large (%(size)s); the limit is %(limit)s."),
        code="too_large",
        params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
    )


def _not_an_image() -> ValidationError:
    return ValidationError(
        _("This file is not an image we can read. Upload a %(formats)s image."),
        code="not_an_image",
        params={"formats": _ACCEPTED_FOR_PEOPLE},
    )


def _unsupported(kind: str) -> ValidationError:
    return ValidationError(
        _("%(kind)s files are not supported. Upload a %(formats)s image."),
        code="unsupported_format",
        params={"kind": kind, "formats": _ACCEPTED_FOR_PEOPLE},
    )


def _truncated() -> ValidationError:
    return ValidationError(
        _(
            "The image file is incomplete or damaged and cannot be read. "
            "Try saving or exporting it again."
        ),
        code="truncated",
    )


def _too_many_scans() -> ValidationError:
    # One of the agreed codes: like libjpeg-turbo, we treat an absurd scan count as a broken file.
    return ValidationError(
        _(
            "This JPEG is built from an unusually large number of scans (more than %(limit)s), "
            "which makes it too slow to decode. Save it again from any image editor and upload "
            "the new file."
        ),
        code="truncated",
        params={"limit": _MAX_JPEG_SCANS},
    )


def _too_many_pixels(width: int | None, height: int | None, limit: int) -> ValidationError:
    params = {"limit": f"{limit / 1_000_000:g}"}
    if width is None or height is None:
        message = _("The image has too many pixels; the limit is %(limit)s megapixels.")
    else:
        message = _(
            "The image has too many pixels (%(width)s × %(height)s); "
            "the limit is %(limit)s megapixels."
        )
        params |= {"width": f"{width:,}", "height": f"{height:,}"}
    return ValidationError(message, code="too_many_pixels", params=params)


def _unidentified(data: bytes) -> ValidationError:
    """Pillow (restricted to the allowed formats) could not open it: say what it is, if we can."""
    if _allowed_signature(data):
        # Starts like a JPEG/PNG/WebP but its header cannot be parsed: cut short or damaged.
        return _truncated()
    kind = _sniff_other_format(data)
    if kind:
        return _unsupported(kind)
    return _not_an_image()


def _allowed_signature(data: bytes) -> bool:
    return (
        data.startswith(b"\xff\xd8\xff")
        or data.startswith(_PNG_SIGNATURE)
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"SIMPLE  =", "FITS"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"%PDF-", "PDF"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}


def _sniff_other_format(data: bytes) -> str | None:
    """A well-known image (or image-like) format we refuse, by its magic bytes; None if unknown."""
    for signature, kind in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return kind
    if (
        data[:2] == b"BM"
        and len(data) >= 18
        and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES
    ):
        return "BMP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIC/HEIF"
        if brand in _AVIF_BRANDS:
            return "AVIF"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (
        head.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in head
    ):
        return "SVG"
    return None


# --- File names -----------------------------------------------------------------------------

_MAX_NAME_CHARS = 100
_FALLBACK_NAME = "image"
# Never shown: controls (NUL, newlines, escapes), line/paragraph separators, lone surrogates, and
# bidirectional overrides, which make "photo\u202egpj.exe" display as "photoexe.jpg".
_DROPPED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_DROPPED_CHARS = set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
_PATH_SEPARATORS = re.compile(r"[/\\]")
_EXTENSION = re.compile(r"\.[^.\s]{1,10}\Z")


def filename_sanitize(name: str | None) -> str:
    """The client's file name, fit for display only (never a storage path)."""
    if not name:
        return _FALLBACK_NAME
    kept = "".join(
        ch
        for ch in str(name)
        if unicodedata.category(ch) not in _DROPPED_CATEGORIES and ch not in _DROPPED_CHARS
    )
    # Basename for both POSIX and Windows paths: "../../etc/passwd", "C:\\x\\y.png".
    base = unicodedata.normalize("NFC", _PATH_SEPARATORS.split(kept)[-1]).strip()
    if not base.strip("."):
        return _FALLBACK_NAME  # "", ".", ".."
    if len(base) > _MAX_NAME_CHARS:
        match = _EXTENSION.search(base)
        ext = match.group() if match and match.start() > 0 else ""
        base = base[: _MAX_NAME_CHARS - len(ext)].rstrip() + ext
    return base
