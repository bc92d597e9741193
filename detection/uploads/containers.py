"""Byte-level reading of the containers: metadata present, WebP coding, JPEG scans, and the magic
bytes of formats we refuse. Nothing here decodes pixels."""

from __future__ import annotations

import zlib

from PIL import Image, PngImagePlugin

from detection.uploads.formats import DECODE_ERRORS, MAX_JPEG_SCANS

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
    "appended data",
    "C2PA Content Credentials",
)
_GPS_IFD = 0x8825


def metadata_found(img: Image.Image, fmt: str, data: bytes) -> tuple[str, ...]:
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
        except DECODE_ERRORS:
            pass  # unreadable EXIF is still dropped; it just cannot be described further
    if "xmp" in img.info:
        found.add("XMP")
    if img.info.get("icc_profile"):
        found.add("ICC profile")
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        found.add("extra embedded images" if img.format == "MPO" else "animation frames")
    if _has_appended_data(data, fmt, pictures=frames if img.format == "MPO" else 1):
        found.add("appended data")
    if c2pa_found(img, fmt, data):
        found.add("C2PA Content Credentials")
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


def png_text_unreadable_drop(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """``data`` without the PNG text chunks that Pillow would refuse the whole file for, and
    their keywords; ``data`` itself when there are none (or it is no PNG).

    Pillow inflates a compressed text chunk (zTXt, iTXt) to at most PngImagePlugin.
    MAX_TEXT_CHUNK (1 MiB) and raises ValueError, whether the chunk comes before the pixels (at
    open) or after them (at load), when there is more; it raises too once the text it keeps
    passes MAX_TEXT_MEMORY (64 MiB) in all. Both are bomb guards, and the pixels are fine: the
    text is metadata, which re-encoding drops anyway. So such a chunk is cut out (the others
    are copied byte for byte, their CRCs with them) and Pillow opens the rest, its guards
    still in place. Each chunk is inflated here with the same bound and the same test as
    Pillow's (never unbounded), and no more than MAX_TEXT_MEMORY is inflated in all: past that,
    every further compressed text chunk is dropped without being inflated.

    The worker never needs it: it decodes the stored copy, re-encoded without any text chunk
    (detection/tests/worker/test_png_text.py checks that such a file decodes there)."""
    if not data.startswith(_PNG_SIGNATURE):
        return data, ()
    chunk_limit = PngImagePlugin.MAX_TEXT_CHUNK
    memory_limit = PngImagePlugin.MAX_TEXT_MEMORY
    kept_parts: list[bytes] = []
    dropped: list[str] = []
    kept_text = inflated = 0
    start, pos, end = 0, len(_PNG_SIGNATURE), len(data)
    while pos + 12 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IEND" or pos + 12 + length > end:
            break  # the rest is copied as it is: Pillow judges a damaged structure itself
        following = pos + 12 + length
        if kind in _PNG_TEXT_CHUNKS:
            keyword, text, compressed, counted = _png_text_parts(
                kind, data[pos + 8 : pos + 8 + length]
            )
            size: int | None = len(text)
            if compressed:
                size = None  # dropped, unless inflated within both bounds below
                if inflated < memory_limit:
                    inflater = zlib.decompressobj()
                    try:
                        text = inflater.decompress(text, chunk_limit)
                    except zlib.error:  # Pillow reads it as no text
                        text, tail = b"", b""
                    else:
                        tail = inflater.unconsumed_tail
                    inflated += len(text)
                    if not tail:
                        size = len(text)
            if size is None or (counted and kept_text + size > memory_limit):
                kept_parts.append(data[start:pos])
                start = following
                dropped.append(keyword[:79].decode("latin-1"))
            elif counted:
                kept_text += size
        pos = following
    if not dropped:
        return data, ()
    kept_parts.append(data[start:])
    return b"".join(kept_parts), tuple(dropped)


def _png_text_parts(kind: bytes, body: bytes) -> tuple[bytes, bytes, bool, bool]:
    """(keyword, text, whether Pillow inflates the text, whether it counts it against
    MAX_TEXT_MEMORY) of a text chunk, read the way PngImagePlugin reads it."""
    keyword, sep, rest = body.partition(b"\x00")
    if kind == b"tEXt":
        return keyword, rest, False, bool(keyword)
    if kind == b"zTXt":
        # A method byte, then the stream; Pillow refuses a method other than 0 by itself.
        return keyword, rest[1:], rest[:1] in (b"", b"\x00"), bool(keyword)
    # iTXt: compression flag, method, language\0, translated keyword\0, text.
    if not sep or len(rest) < 2:
        return keyword, b"", False, False
    flag, method = rest[0], rest[1]
    fields = rest[2:].split(b"\x00", 2)
    if len(fields) < 3 or (flag and method):  # skipped by Pillow
        return keyword, b"", False, False
    return keyword, fields[2], bool(flag), True


def c2pa_found(img: Image.Image, fmt: str, data: bytes) -> bool:
    """Whether the file embeds a C2PA manifest store (Content Credentials): a JUMBF box in JPEG
    APP11 segments, a PNG caBX chunk, a WebP C2PA chunk. Only their presence, not their validity."""
    if fmt == "JPEG":
        # An APP11 segment: "JP", box instance and sequence numbers, then a JUMBF superbox whose
        # description box is labelled "c2pa".
        return any(
            marker == "APP11" and body.startswith(b"JP") and b"c2pa" in body[:96]
            for marker, body in getattr(img, "applist", [])
        )
    if fmt == "PNG":
        pos, end = len(_PNG_SIGNATURE), len(data)
        while pos + 8 <= end:
            kind = data[pos + 4 : pos + 8]
            if kind == b"caBX":
                return True
            if kind == b"IEND":
                break
            pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
        return False
    return webp_chunk(data, b"C2PA") is not None


def webp_chunk(data: bytes, fourcc: bytes) -> bytes | None:
    """The payload of a WebP file's first top-level chunk of this kind (b"XMP ", b"EXIF"); None
    if it has none."""
    for kind, start, size in _webp_chunks(data):
        if kind == fourcc:
            return data[start : start + size]
    return None


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


def webp_is_lossless(data: bytes) -> bool:
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


def jpeg_scan_count(data: bytes) -> int:
    """Start-of-scan markers up to the first top-level EOI (more than the limit: stops counting).

    Walks the segments, skipping entropy-coded data, so bytes in an EXIF thumbnail or appended
    after the image (a phone's motion-photo video) are not mistaken for scans.
    """
    return _jpeg_walk(data, 0, max_scans=MAX_JPEG_SCANS)[0]


def _jpeg_walk(data: bytes, start: int, *, max_scans: int) -> tuple[int, int | None]:
    """(scans, offset just past the top-level EOI) of the JPEG stream whose SOI is at start.

    The offset is None when the walk stops before an EOI (a broken structure, or more than
    max_scans scans). An EXIF thumbnail's EOI sits inside an APP1 segment, which is skipped
    whole by its length, so only the image's own EOI ends the walk.
    """
    pos, end, scans = start + 2, len(data), 0
    while pos + 2 <= end and scans <= max_scans:
        if data[pos] != 0xFF:
            break  # not a marker: the structure is broken and Pillow will say so
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return scans, pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            pos += 2
            continue
        if pos + 4 > end:
            break
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
    return scans, None


def _image_end(data: bytes, fmt: str, *, pictures: int) -> int | None:
    """Where the image's own bytes end (a JPEG's EOI, a PNG's IEND chunk, a WebP's RIFF size);
    None when the structure gives no end to trust."""
    if fmt == "JPEG":
        # An MPO's further pictures are whole JPEG streams right after the first; they are
        # reported as "extra embedded images", so only what follows the last one is appended.
        end: int | None = 0
        for _picture in range(pictures):
            if end is None or data[end : end + 2] != b"\xff\xd8":
                break
            end = _jpeg_walk(data, end, max_scans=MAX_JPEG_SCANS)[1]
        return end or None
    if fmt == "PNG":
        pos = len(_PNG_SIGNATURE)
        while pos + 8 <= len(data):
            length = int.from_bytes(data[pos : pos + 4], "big")
            if data[pos + 4 : pos + 8] == b"IEND":
                return pos + 12 + length
            pos += 12 + length
        return None
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)


def _has_appended_data(data: bytes, fmt: str, *, pictures: int) -> bool:
    """Whether bytes follow the image's end (an HTML page, a ZIP, a motion-photo video).

    Padding (only zero or 0xFF bytes, as some cameras and editors write) carries nothing and
    is not reported.
    """
    end = _image_end(data, fmt, pictures=pictures)
    if end is None or end >= len(data):
        return False
    return bool(data[end:].strip(b"\x00\xff"))


def allowed_signature(data: bytes) -> bool:
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


def sniff_other_format(data: bytes) -> str | None:
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

