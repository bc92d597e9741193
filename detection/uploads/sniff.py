"""Which gate an upload goes through, image or video, from its first bytes.

The content decides, never the name: a PNG named clip.mp4 is an image, an MP4 named photo.jpg
is a video. Only a file whose content is neither (a text file, a random blob) is routed by what
the client called it, so that the refusal speaks of what the person meant to upload ("not a
video we can read" for notes.mp4, "not an image we can read" for notes.jpg). Used by the
streaming handler (which limit applies while the file streams in) and by the upload service
(which validation runs).
"""

from __future__ import annotations

from typing import Literal

from detection.uploads.containers import allowed_signature

# Enough for every signature below, and for an EBML header (its DocType) in any real file.
HEAD_BYTES = 4096

VIDEO_FORMATS: tuple[str, ...] = ("MP4", "WEBM", "MOV")
VIDEO_EXTENSIONS = {"MP4": ".mp4", "WEBM": ".webm", "MOV": ".mov"}
VIDEO_CONTENT_TYPES = {"MP4": "video/mp4", "WEBM": "video/webm", "MOV": "video/quicktime"}
VIDEO_ACCEPT_ATTR = "video/mp4,video/webm,video/quicktime,.mp4,.m4v,.webm,.mov"
VIDEO_ACCEPTED_FOR_PEOPLE = "MP4, WebM or MOV"
# A file of unknown content with one of these names (or a video/* content type) was meant as a
# video: its refusal says "not a video" rather than "not an image".
_VIDEO_NAME_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov", ".qt", ".mkv", ".avi", ".3gp")

# ISO base media file format (MP4, MOV, and the HEIF/AVIF images built on it): the major brand
# of the 'ftyp' box says which. HEIF and AVIF are images, refused by the image gate by name.
_IMAGE_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"mif1",
    b"msf1",
    b"avif",
    b"avis",
}
# QuickTime files written before 'ftyp' existed start with one of these boxes.
_QUICKTIME_FIRST_BOXES = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = 0x4282
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def video_container_sniff(head: bytes) -> str | None:
    """The container, by content only: "MP4", "MOV" or "WEBM" for those we accept, "MATROSKA"
    for a Matroska file that is not WebM, None for anything else."""
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "MOV" if brand == b"qt  " else "MP4"
    # A legacy QuickTime file: a box size (0: to the end, 1: 64-bit, else at least its header;
    # below 512 MiB, so a text file, whose first byte is printable, never looks like one).
    size = int.from_bytes(head[:4], "big")
    if head[4:8] in _QUICKTIME_FIRST_BOXES and (size in (0, 1) or 8 <= size < 1 << 29):
        return "MOV"
    if head.startswith(_EBML_MAGIC):
        doctype = ebml_doctype(head)
        if doctype == b"webm":
            return "WEBM"
        return "MATROSKA"  # "matroska", or a header too damaged to say: refused either way
    return None


def other_video_format(head: bytes) -> str | None:
    """A well-known video container we do not accept, for the refusal to name; None if none."""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"FLV\x01"):
        return "Flash video (FLV)"
    if head.startswith(_ASF_GUID):
        return "Windows Media (WMV/ASF)"
    if head.startswith(b"OggS"):
        return "Ogg"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "MPEG program stream (MPG/VOB)"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "MPEG transport stream (TS/MTS)"
    return None


def upload_kind(
    *, head: bytes, name: str = "", content_type: str = ""
) -> Literal["image", "video"]:
    """Which gate checks the file whose first bytes are `head` (see the module's docstring)."""
    if allowed_signature(head):
        return "image"
    if video_container_sniff(head) or other_video_format(head):
        return "video"
    if (content_type or "").lower().startswith("video/") or (name or "").lower().endswith(
        _VIDEO_NAME_SUFFIXES
    ):
        return "video"
    return "image"


def ebml_doctype(head: bytes) -> bytes | None:
    """The DocType of the EBML header at the start of `head` ("webm", "matroska"); None when
    the header cannot be read."""
    read = ebml_element(head, 0)
    if read is None:
        return None
    _element_id, start, end = read
    pos, end = start, min(end, len(head))
    while pos < end:
        child = ebml_element(head, pos)
        if child is None:
            return None
        child_id, child_start, child_end = child
        if child_id == _EBML_DOCTYPE:
            return head[child_start : min(child_end, end)].rstrip(b"\x00")
        pos = child_end
    return None


# An EBML element of unknown size ("all ones"): it runs to the end of its parent.
UNKNOWN_SIZE = -1


def ebml_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the variable-length integer at pos; None if it is malformed or cut.

    Element IDs keep their length-marker bit (``keep_marker``); sizes drop it, and a size of
    all ones means unknown (UNKNOWN_SIZE).
    """
    if pos >= len(data):
        return None
    first = data[pos]
    if first == 0:
        return None  # longer than 8 bytes: not valid EBML
    length = 9 - first.bit_length()
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big")
    if keep_marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    if value == (1 << (7 * length)) - 1:
        return UNKNOWN_SIZE, length
    return value, length


def ebml_element(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(element id, payload start, payload end) of the element at pos; the end may lie past the
    data (a file cut short) and is len(data) for an unknown size. None if it is malformed."""
    element_id = ebml_vint(data, pos, keep_marker=True)
    if element_id is None:
        return None
    size = ebml_vint(data, pos + element_id[1], keep_marker=False)
    if size is None:
        return None
    start = pos + element_id[1] + size[1]
    end = len(data) if size[0] == UNKNOWN_SIZE else start + size[0]
    return element_id[0], start, end
