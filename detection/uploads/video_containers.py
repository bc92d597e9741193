"""What a video container's own headers declare, read byte by byte before FFmpeg sees the file.

FFmpeg trusts these headers: an MP4 of a few kilobytes can declare frames of 100,000 x 100,000
pixels, or sample tables of millions of entries that the demuxer allocates an index for when it
opens the file. Reading the declarations first lets the gate refuse such a file from its
headers, before any memory is spent on it; the demuxer then only sees files whose declared
sizes are within the limits (and the decoder refuses larger frames by itself: ``max_pixels``).

ISO base media (MP4, MOV): the box tree, without ever reading the media data ('mdat'). Matroska
(WebM): the EBML header and the Segment's elements up to its first Cluster. Nothing here
decodes anything.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass, field

from detection.uploads.sniff import UNKNOWN_SIZE, ebml_element, ebml_vint

# Boxes or elements walked at most: a real file has tens to a few thousand (a fragmented MP4
# has two boxes per fragment); a file of millions of tiny boxes is made to waste time.
_MAX_ITEMS = 100_000
# The 16-byte 'uuid' of an XMP packet in ISO files (Adobe's XMP specification, part 3).
_XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")


class HeaderUnreadable(Exception):
    """The container's structure is broken (a box smaller than its header, a child running
    past its parent, absurdly many boxes): it cannot be a file worth opening."""


@dataclass
class VideoTrackHeader:
    width: int = 0  # coded size, as the sample description / track entry declares it
    height: int = 0
    samples: int | None = None  # frames declared (sample tables plus fragments); None: unknown
    duration_s: float | None = None


@dataclass
class HeaderFacts:
    """What the headers declare. Sizes may lie; the demuxer and decoder are checked again."""

    tracks: int = 0
    video: list[VideoTrackHeader] = field(default_factory=list)
    duration_s: float | None = None  # the whole file's, as declared
    # The largest number of index entries any one track makes the demuxer allocate.
    largest_index: int = 0
    truncated: bool = False  # a box / the Segment runs past the end of the file
    appended_data: bool = False  # bytes after the container's end
    xmp: bool = False


def _u16(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 2], "big")


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def _u64(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 8], "big")


# --- ISO base media file format (MP4, MOV) --------------------------------------------------

# Boxes whose children matter; everything else is skipped by its size.
_TRACK_CONTAINERS = {b"mdia", b"minf", b"stbl", b"edts"}
# Tables the demuxer allocates one entry per declared entry for (a count right after the
# version and flags).
_COUNTED_TABLES = {b"stts", b"ctts", b"stss", b"stsc", b"stco", b"co64", b"elst", b"stps"}


@dataclass
class _Track:
    track_id: int = 0
    handler: bytes = b""
    timescale: int = 0
    duration: int = 0
    width: int = 0
    height: int = 0
    sample_size: int = 0  # constant size of every sample, 0: a table of sizes follows
    samples: int = 0
    first_delta: int = 0  # the first 'stts' entry's sample duration
    stts_entries: int = 0
    largest_table: int = 0


class _Budget:
    def __init__(self) -> None:
        self.left = _MAX_ITEMS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise HeaderUnreadable("too many boxes")


def _box_type_ok(kind: bytes) -> bool:
    # Printable ASCII (QuickTime's '©xyz' boxes live inside 'udta', which is never walked).
    return len(kind) == 4 and all(0x20 <= b < 0x7F for b in kind)


def _iso_children(data: bytes, start: int, end: int, budget: _Budget):
    """(type, payload start, box end) of each box between start and end, which lie in data."""
    pos = start
    while pos + 8 <= end:
        budget.spend()
        size, kind, header = _u32(data, pos), data[pos + 4 : pos + 8], 8
        if size == 1:
            if pos + 16 > end:
                raise HeaderUnreadable("cut box header")
            size, header = _u64(data, pos + 8), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise HeaderUnreadable(f"box {kind!r} does not fit its parent")
        yield kind, pos + header, pos + size
        pos += size


def iso_facts(data: bytes) -> HeaderFacts:
    """The declarations of an MP4/MOV file. HeaderUnreadable if its box tree is broken."""
    facts = HeaderFacts()
    budget = _Budget()
    tracks: list[_Track] = []
    fragment_samples: dict[int, int] = defaultdict(int)
    fragment_largest: dict[int, int] = defaultdict(int)
    movie_duration: float | None = None
    pos, n = 0, len(data)
    while pos < n:
        budget.spend()
        if n - pos < 8:
            facts.appended_data = bool(data[pos:].strip(b"\x00"))
            break
        size, kind, header = _u32(data, pos), data[pos + 4 : pos + 8], 8
        if not _box_type_ok(kind):
            # Not a box: whatever follows the last box (padding is not worth a mention).
            facts.appended_data = bool(data[pos:].strip(b"\x00"))
            break
        if size == 1:
            if n - pos < 16:
                facts.truncated = True
                break
            size, header = _u64(data, pos + 8), 16
        elif size == 0:
            size = n - pos  # the last box runs to the end of the file
        if size < header:
            raise HeaderUnreadable(f"box {kind!r} smaller than its header")
        if pos + size > n:
            facts.truncated = True  # cut short: the box says it is longer than what is left
            break
        end = pos + size
        if kind == b"moov":
            movie_duration = _iso_moov(data, pos + header, end, budget, tracks, facts)
        elif kind == b"moof":
            _iso_moof(data, pos + header, end, budget, fragment_samples, fragment_largest)
        elif kind == b"uuid" and data[pos + header : pos + header + 16] == _XMP_UUID:
            facts.xmp = True
        elif kind == b"meta" and b"<x:xmpmeta" in data[pos:end]:
            facts.xmp = True
        pos = end

    facts.tracks = len(tracks)
    facts.duration_s = movie_duration
    for track in tracks:
        samples = track.samples + fragment_samples.get(track.track_id, 0)
        # The demuxer keeps one index entry per sample, except for uncompressed audio whose
        # samples all have one size and one duration (it indexes chunks then).
        chunked_audio = (
            track.handler == b"soun"
            and track.sample_size != 0
            and track.stts_entries == 1
            and track.first_delta == 1
        )
        index = max(
            track.largest_table,
            fragment_largest.get(track.track_id, 0),
            0 if chunked_audio else samples,
        )
        facts.largest_index = max(facts.largest_index, index)
        if track.handler == b"vide":
            duration = track.duration / track.timescale if track.timescale else None
            facts.video.append(
                VideoTrackHeader(
                    width=track.width, height=track.height, samples=samples, duration_s=duration
                )
            )
    return facts


def _full_box_payload(data: bytes, start: int, end: int, need: int) -> int:
    """Where a full box's fields begin (after version and flags), checking `need` bytes fit."""
    if start + 4 + need > end:
        raise HeaderUnreadable("box too short for its fields")
    return start + 4


def _time_fields(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(timescale, duration) of an 'mvhd' or 'mdhd' box (version 0: 32-bit times, 1: 64-bit)."""
    version = data[start] if start < end else 0
    if version == 1:
        pos = _full_box_payload(data, start, end, 28)
        return _u32(data, pos + 16), _u64(data, pos + 20)
    pos = _full_box_payload(data, start, end, 16)
    return _u32(data, pos + 8), _u32(data, pos + 12)


def _iso_moov(
    data: bytes, start: int, end: int, budget: _Budget, tracks: list[_Track], facts: HeaderFacts
) -> float | None:
    duration = None
    for kind, payload, box_end in _iso_children(data, start, end, budget):
        if kind == b"mvhd":
            timescale, length = _time_fields(data, payload, box_end)
            if timescale:
                duration = length / timescale
        elif kind == b"trak":
            track = _Track()
            _iso_track(data, payload, box_end, budget, track)
            tracks.append(track)
        elif kind in (b"udta", b"meta", b"uuid") and (
            b"<x:xmpmeta" in data[payload:box_end] or _XMP_UUID in data[payload:box_end]
        ):
            facts.xmp = True
    return duration


def _iso_track(data: bytes, start: int, end: int, budget: _Budget, track: _Track) -> None:
    for kind, payload, box_end in _iso_children(data, start, end, budget):
        if kind in _TRACK_CONTAINERS:
            _iso_track(data, payload, box_end, budget, track)
        elif kind == b"tkhd":
            version = data[payload] if payload < box_end else 0
            pos = _full_box_payload(data, payload, box_end, 20 if version == 1 else 12)
            track.track_id = _u32(data, pos + (16 if version == 1 else 8))
        elif kind == b"mdhd":
            track.timescale, track.duration = _time_fields(data, payload, box_end)
        elif kind == b"hdlr" and not track.handler:
            # The media handler ('mdia'), which comes first; a QuickTime file has a data
            # handler in 'minf' too ('dhlr', subtype 'alis' or 'url ').
            pos = _full_box_payload(data, payload, box_end, 8)
            track.handler = data[pos + 4 : pos + 8]
        elif kind == b"stsd":
            pos = _full_box_payload(data, payload, box_end, 4)
            entry = pos + 4  # the first sample description: size, format, then its fields
            if _u32(data, pos) and entry + 36 <= box_end:
                track.width, track.height = _u16(data, entry + 32), _u16(data, entry + 34)
        elif kind == b"stsz":
            pos = _full_box_payload(data, payload, box_end, 8)
            track.sample_size, track.samples = _u32(data, pos), _u32(data, pos + 4)
            if track.sample_size == 0:
                track.largest_table = max(track.largest_table, track.samples)
        elif kind == b"stz2":
            pos = _full_box_payload(data, payload, box_end, 8)
            track.samples = _u32(data, pos + 4)
            track.largest_table = max(track.largest_table, track.samples)
        elif kind in _COUNTED_TABLES:
            pos = _full_box_payload(data, payload, box_end, 4)
            entries = _u32(data, pos)
            track.largest_table = max(track.largest_table, entries)
            if kind == b"stts":
                track.stts_entries = entries
                if entries and pos + 12 <= box_end:
                    track.first_delta = _u32(data, pos + 8)


def _iso_moof(
    data: bytes,
    start: int,
    end: int,
    budget: _Budget,
    samples: dict[int, int],
    largest: dict[int, int],
) -> None:
    """A movie fragment: each 'trun' adds its declared samples to its track's ('tfhd')."""
    for kind, payload, box_end in _iso_children(data, start, end, budget):
        if kind != b"traf":
            continue
        track_id = 0
        for child, child_payload, child_end in _iso_children(data, payload, box_end, budget):
            if child == b"tfhd":
                track_id = _u32(data, _full_box_payload(data, child_payload, child_end, 4))
            elif child == b"trun":
                count = _u32(data, _full_box_payload(data, child_payload, child_end, 4))
                samples[track_id] += count
                largest[track_id] = max(largest[track_id], samples[track_id])


# --- Matroska / WebM (EBML) -----------------------------------------------------------------

_EBML_HEADER = 0x1A45DFA3
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMESTAMP_SCALE = 0x2AD7B1
_DURATION = 0x4489
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_TYPE = 0x83
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA
_CLUSTER = 0x1F43B675
_TRACK_TYPE_VIDEO = 1


def _ebml_children(data: bytes, start: int, end: int, budget: _Budget):
    """(id, payload start, payload end) of each element between start and end; an element of
    unknown size, or one cut short, runs to `end`."""
    pos = start
    while pos < end:
        budget.spend()
        element = ebml_element(data, pos)
        if element is None:
            raise HeaderUnreadable("malformed EBML element")
        element_id, payload, payload_end = element
        yield element_id, payload, min(payload_end, end)
        if payload_end >= end:
            return
        pos = payload_end


def _ebml_uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end][:8], "big")


def _ebml_float(data: bytes, start: int, end: int) -> float | None:
    raw = data[start:end]
    if len(raw) == 4:
        return struct.unpack(">f", raw)[0]
    if len(raw) == 8:
        return struct.unpack(">d", raw)[0]
    return None


def ebml_facts(data: bytes) -> HeaderFacts:
    """The declarations of a WebM file, up to its first Cluster. HeaderUnreadable if broken."""
    facts = HeaderFacts()
    budget = _Budget()
    header = ebml_element(data, 0)
    if header is None or header[0] != _EBML_HEADER or header[2] > len(data):
        raise HeaderUnreadable("no EBML header")
    segment = ebml_element(data, header[2])
    if segment is None or segment[0] != _SEGMENT:
        raise HeaderUnreadable("no Segment after the EBML header")
    _segment_id, start, end = segment
    size = ebml_vint(data, header[2] + 4, keep_marker=False)
    known_size = size is not None and size[0] != UNKNOWN_SIZE
    if known_size and end > len(data):
        facts.truncated = True
    elif known_size and end < len(data):
        facts.appended_data = bool(data[end:].strip(b"\x00"))
    end = min(end, len(data))

    scale = 1_000_000  # nanoseconds per timestamp unit, Matroska's default
    duration = None
    for element_id, payload, payload_end in _ebml_children(data, start, end, budget):
        if element_id == _CLUSTER:
            break  # the media begins; headers come before it in every file we accept
        if element_id == _INFO:
            for child, child_start, child_end in _ebml_children(data, payload, payload_end, budget):
                if child == _TIMESTAMP_SCALE:
                    scale = _ebml_uint(data, child_start, child_end) or scale
                elif child == _DURATION:
                    duration = _ebml_float(data, child_start, child_end)
        elif element_id == _TRACKS:
            _ebml_tracks(data, payload, payload_end, budget, facts)
    if duration is not None and duration == duration and duration >= 0:  # not NaN
        facts.duration_s = duration * scale / 1e9
    return facts


def _ebml_tracks(data: bytes, start: int, end: int, budget: _Budget, facts: HeaderFacts) -> None:
    for element_id, payload, payload_end in _ebml_children(data, start, end, budget):
        if element_id != _TRACK_ENTRY:
            continue
        facts.tracks += 1
        track_type, video = 0, None
        for child, child_start, child_end in _ebml_children(data, payload, payload_end, budget):
            if child == _TRACK_TYPE:
                track_type = _ebml_uint(data, child_start, child_end)
            elif child == _VIDEO:
                video = VideoTrackHeader()
                for item, item_start, item_end in _ebml_children(
                    data, child_start, child_end, budget
                ):
                    if item == _PIXEL_WIDTH:
                        video.width = _ebml_uint(data, item_start, item_end)
                    elif item == _PIXEL_HEIGHT:
                        video.height = _ebml_uint(data, item_start, item_end)
        if track_type == _TRACK_TYPE_VIDEO:
            facts.video.append(video or VideoTrackHeader())
