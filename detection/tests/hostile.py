"""Hostile and ordinary upload files, generated in memory (no binary files in the repository).

Every function returns the bytes of one file; ``upload`` wraps bytes as a Django upload whose
name and content type lie as freely as a client's can. Generators that cost more than a few
milliseconds are cached: callers must not mutate what they get (bytes are immutable anyway).
"""

from __future__ import annotations

import functools
import random
import struct
import zipfile
import zlib
from io import BytesIO

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

HTML_PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"
PHP_PAYLOAD = b"<?php system($_GET['cmd']); ?>"
XMP_PACKET = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b"<rdf:Description>secret-xmp-creator</rdf:Description></rdf:RDF></x:xmpmeta>"
)
CAMERA_MAKE = "HostileCam-Secret-Make"
COMMENT = b"secret-jpeg-comment"
IPTC_SECRET = b"secret-iptc-byline"
# Amsterdam, as EXIF rationals: degrees, minutes, seconds.
GPS = {1: "N", 2: (52.0, 22.0, 12.5), 3: "E", 4: (4.0, 53.0, 42.0)}


def upload(
    data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


# --- Ordinary images ------------------------------------------------------------------------


def two_colour(size: tuple[int, int] = (40, 20), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: orientation mistakes show in which half is where."""
    img = Image.new("RGB", size, (220, 20, 20))
    img.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    return img.convert(mode)


def jpeg(size: tuple[int, int] = (40, 20), **options) -> bytes:
    return encode(two_colour(size), "JPEG", quality=90, **options)


def png(size: tuple[int, int] = (40, 20), mode: str = "RGB", **options) -> bytes:
    return encode(two_colour(size, mode), "PNG", **options)


def webp(size: tuple[int, int] = (40, 20), mode: str = "RGB", **options) -> bytes:
    return encode(two_colour(size, mode), "WEBP", **options)


@functools.lru_cache(maxsize=2)
def photo_like_jpeg(size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A JPEG as expensive to decode as a camera photo (noise and gradients; 12 MP by default)."""
    noise = Image.effect_noise(size, 40)
    gradient = Image.linear_gradient("L").resize(size)
    img = Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, 0.5)))
    return encode(img, "JPEG", quality=92)


# --- Metadata -------------------------------------------------------------------------------


def jpeg_segment_insert(data: bytes, marker: int, body: bytes) -> bytes:
    """Insert an APPn/COM segment right after a JPEG's SOI marker."""
    assert data[:2] == b"\xff\xd8"
    return data[:2] + struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body + data[2:]


def iptc_segment() -> bytes:
    """An APP13 "Photoshop 3.0" body holding one IPTC record (2:80, by-line)."""
    record = b"\x1c\x02\x50" + struct.pack(">H", len(IPTC_SECRET)) + IPTC_SECRET
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(record))
    resource += record + (b"\x00" if len(record) % 2 else b"")
    return b"Photoshop 3.0\x00" + resource


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_with_gps(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = CAMERA_MAKE  # Make
    exif.get_ifd(0x8825).update(GPS)  # the GPS IFD
    return exif


def jpeg_with_metadata(orientation: int = 6, size: tuple[int, int] = (40, 20)) -> bytes:
    """A phone photo's worth of metadata: EXIF (orientation, GPS), XMP, ICC, IPTC, a comment."""
    data = encode(
        two_colour(size),
        "JPEG",
        quality=95,
        exif=exif_with_gps(orientation),
        xmp=XMP_PACKET,
        icc_profile=srgb_icc(),
        comment=COMMENT,
    )
    return jpeg_segment_insert(data, 0xED, iptc_segment())


def jpeg_with_exif_thumbnail(size: tuple[int, int] = (40, 20)) -> bytes:
    """A JPEG whose EXIF (APP1) holds a thumbnail: a whole JPEG, with its own SOS and EOI.

    Written by hand (Pillow writes no thumbnails): a little-endian TIFF header, an empty IFD0,
    and an IFD1 pointing at the thumbnail's bytes, as cameras lay it out.
    """
    thumbnail = encode(two_colour((8, 4)), "JPEG", quality=80)
    ifd1 = 8 + 6  # after the TIFF header and an IFD0 of no entries (count, next-IFD offset)
    thumbnail_at = ifd1 + 2 + 2 * 12 + 4
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<HI", 0, ifd1)
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 0x0201, 4, 1, thumbnail_at)  # JPEGInterchangeFormat
    tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))  # ...Length
    tiff += struct.pack("<I", 0) + thumbnail
    return jpeg_segment_insert(jpeg(size), 0xE1, b"Exif\x00\x00" + tiff)


def png_with_metadata() -> bytes:
    info = PngInfo()
    info.add_text("Author", "secret-png-author")
    info.add_text("Description", "secret-png-description", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode())
    return encode(two_colour(), "PNG", pnginfo=info, exif=exif_with_gps(1), icc_profile=srgb_icc())


def webp_with_metadata(lossless: bool = False) -> bytes:
    return encode(
        two_colour(),
        "WEBP",
        lossless=lossless,
        exif=exif_with_gps(1),
        xmp=XMP_PACKET,
        icc_profile=srgb_icc(),
    )


# --- Not images, or not our formats ---------------------------------------------------------


def text_file() -> bytes:
    return b"Shopping list:\n- milk\n- eggs\n"


def html_file() -> bytes:
    return b"<!DOCTYPE html>\n" + HTML_PAYLOAD


def svg_file() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script></svg>"
    )


def tiff() -> bytes:
    return encode(two_colour(), "TIFF")


def gif() -> bytes:
    return encode(two_colour(), "GIF")


def bmp() -> bytes:
    return encode(two_colour(), "BMP")


def fits() -> bytes:
    """A minimal FITS file: one 2880-byte header of 80-character cards, then the data block."""
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                   10",
        "NAXIS2  =                   10",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return header + bytes(range(100)).ljust(2880, b"\x00")


# --- Damaged --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _noisy(size: tuple[int, int] = (256, 256)) -> Image.Image:
    # Noise does not compress: cutting the file anywhere loses real image data.
    return Image.merge("RGB", [Image.effect_noise(size, 60)] * 3)


def truncated_jpeg() -> bytes:
    data = encode(_noisy(), "JPEG", quality=90)
    return data[: len(data) * 6 // 10]


def truncated_png() -> bytes:
    data = encode(_noisy(), "PNG")
    return data[: len(data) * 6 // 10]


def jpeg_header_only() -> bytes:
    """The first bytes of a JPEG: its signature, but cut before the frame header."""
    return jpeg()[:20]


def jpeg_scan_bomb(scans: int = 500, size: tuple[int, int] = (1000, 1000)) -> bytes:
    """A progressive JPEG whose last scan is repeated: every repeat is another full decoding pass.

    libjpeg only warns about the bogus progression, so the file decodes, slowly: 2000 scans of a
    12 MP image take about 17 s of CPU.
    """
    data = encode(Image.new("RGB", size, (120, 130, 140)), "JPEG", progressive=True, quality=90)
    last_scan = data[data.rindex(b"\xff\xda") : -2]  # up to, not including, EOI
    return data[:-2] + last_scan * (scans - data.count(b"\xff\xda") + 1) + b"\xff\xd9"


def jpeg_with_motion_photo_trailer(trailer_bytes: int = 2_000_000) -> bytes:
    """A JPEG followed by compressed-looking data (a phone's motion-photo video) full of 0xFFDA."""
    trailer = random.Random(1).randbytes(1024) + b"\xff\xda" * 64
    return jpeg() + (trailer * (trailer_bytes // len(trailer) + 1))[:trailer_bytes]


# --- Polyglots ------------------------------------------------------------------------------


def png_html_polyglot() -> bytes:
    """A valid PNG that is also an HTML page: the payload in a tEXt chunk and after IEND."""
    info = PngInfo()
    info.add_text("Comment", HTML_PAYLOAD.decode())
    return encode(two_colour(), "PNG", pnginfo=info) + HTML_PAYLOAD


def zip_archive() -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("shell.php", PHP_PAYLOAD)
    return out.getvalue()


def jpeg_with_trailing_zip() -> bytes:
    """A valid JPEG followed by a ZIP archive (a "GIFAR"-style polyglot) and an HTML page."""
    return jpeg() + zip_archive() + HTML_PAYLOAD


# --- Decompression bombs --------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.lru_cache(maxsize=4)
def png_bomb(width: int = 30000, height: int = 30000, colour: bool = False) -> bytes:
    """A complete, valid PNG of zeros: 30000x30000 1-bit is about 110 KB on disk, 900 MB decoded.

    Built with zlib by hand, so the pixels are never allocated here either.
    """
    bit_depth, colour_type, row_bytes = (8, 2, width * 3) if colour else (1, 0, (width + 7) // 8)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    row = b"\x00" * (1 + row_bytes)  # filter byte 0, then the row
    rows_per_call = max(1, (1 << 20) // len(row))
    compressor = zlib.compressobj(9)
    parts = []
    for start in range(0, height, rows_per_call):
        parts.append(compressor.compress(row * min(rows_per_call, height - start)))
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def png_text_chunk(kind: bytes, keyword: bytes, text: bytes) -> bytes:
    """A compressed text chunk holding ``text``: zTXt, or iTXt with its compression flag set.
    Highly compressible text is a few KB on disk for megabytes inflated."""
    stream = zlib.compress(text, 9)
    if kind == b"zTXt":
        return png_chunk(kind, keyword + b"\x00\x00" + stream)
    return png_chunk(kind, keyword + b"\x00\x01\x00" + b"en\x00\x00" + stream)


def png_with_chunks(*, before: bytes = b"", after: bytes = b"") -> bytes:
    """png() with chunks put before its image data (read by Pillow at open) and after it (read
    at load), the IEND chunk last."""
    data = png()
    idat, iend = data.index(b"IDAT") - 4, data.rindex(b"IEND") - 4
    return data[:idat] + before + data[idat:iend] + after + data[iend:]


# --- Animation ------------------------------------------------------------------------------


def animated_png(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (16, 16), (i * 80, 0, 0)) for i in range(frames)]
    return encode(images[0], "PNG", save_all=True, append_images=images[1:])


def animated_webp(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (16, 16), (i * 80, 0, 0)) for i in range(frames)]
    return encode(images[0], "WEBP", save_all=True, append_images=images[1:], lossless=True)


def mpo(size: tuple[int, int] = (40, 20)) -> bytes:
    """A JPEG with a second picture behind it (MPF), as stereo and some phone cameras write."""
    second = Image.new("RGB", size, (0, 255, 0))
    return encode(two_colour(size), "MPO", save_all=True, append_images=[second])
