"""The validation flow of a video upload (MP4, WebM, MOV), before it is stored.

``video_validate`` never trusts the file name or the client's content type. It

1. refuses by ``upload.size`` before reading, then reads at most limit + 1 bytes;
2. recognises the container by content: an ISO-BMFF 'ftyp' box (brand "qt  ": MOV, else MP4;
   HEIF/AVIF brands are images) or an EBML header whose DocType is "webm" (other Matroska files
   are refused by name); anything else is refused, naming AVI, FLV and the like;
3. reads what the container's headers declare (``video_containers``), without FFmpeg, and
   refuses a video bomb from them: frames over DETECTION_VIDEO_MAX_PIXELS, more frames than
   DETECTION_VIDEO_MAX_FRAMES, a duration over DETECTION_VIDEO_MAX_SECONDS, sample tables
   far larger than any real clip's, a file cut short;
4. opens it with PyAV (FFmpeg inside the wheel) restricted to that one demuxer, with the
   decoder's own ``max_pixels`` bound, and checks the codec (an allow-list), frame size and
   frame rate the demuxer reports;
5. reads every packet once, without decoding, counting frames and measuring the duration as it
   goes (stopping as soon as a limit is passed: a header that lies is caught here), and decodes
   only until the first frame comes out (the thumbnail and its hash; proof that it decodes);
   a corrupt packet or a demuxer error is a truncated file;
6. in the same pass copies the packets, unchanged (no re-encoding), into a fresh container of
   the same format. What is stored is that copy: the picture (and the sound, see below), and
   nothing else of the upload. MP4/MOV are written with 'faststart' (the index first, so a
   browser starts playing before the download ends), WebM with its index (Cues) first.

Kept: the video track (the default one, else the first; cover art is not a track), its display
rotation (a phone's portrait clip stays upright), and its first audio track when its codec is
one browsers play in that container: people check lip sync and voices when judging a clip, and
it is theirs (served to its owner only). Audio is never analysed. Dropped: all container and
track metadata (title, comment, GPS location, creation time, camera make/model, encoder and
software tags, XMP), chapters, attachments, cover art, subtitle and data tracks (timecode, GPS
telemetry), further video and audio tracks, and any bytes after the container's end.
``removed_metadata`` lists what of this the upload had. The stored file names no encoder
version and no creation time ('bitexact').

An image renamed .mp4 never gets here: ``sniff.upload_kind`` sends files by content, so a
PNG named clip.mp4 is checked (and accepted) as the image it is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from io import BytesIO
from pathlib import Path

import av
import av.error
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image

from detection.uploads import messages
from detection.uploads import video_messages as refuse
from detection.uploads.fingerprint import image_phash, image_small, image_thumbnail
from detection.uploads.sniff import (
    HEAD_BYTES,
    VIDEO_CONTENT_TYPES,
    VIDEO_EXTENSIONS,
    other_video_format,
    video_container_sniff,
)
from detection.uploads.validate import upload_read_at_most
from detection.uploads.video_containers import (
    HeaderFacts,
    HeaderUnreadable,
    ebml_facts,
    iso_facts,
)

logger = logging.getLogger(__name__)

# The one FFmpeg demuxer (and muxer) each format is opened with; no other parser sees the bytes.
_DEMUXERS = {"MP4": "mp4", "MOV": "mov", "WEBM": "webm"}
# Codecs by FFmpeg's name. Video: what phones, cameras, editors and browsers write; a decoder
# for some rare codec is attack surface without a user. WebM allows only VP8, VP9 and AV1.
VIDEO_CODECS = {
    "MP4": frozenset({"h264", "hevc", "av1", "vp9"}),
    "MOV": frozenset({"h264", "hevc", "av1", "vp9"}),
    "WEBM": frozenset({"vp8", "vp9", "av1"}),
}
CODEC_NAMES = {
    "h264": "H.264",
    "hevc": "H.265 (HEVC)",
    "av1": "AV1",
    "vp8": "VP8",
    "vp9": "VP9",
    "prores": "Apple ProRes",
    "mpeg4": "MPEG-4 Part 2",
    "mjpeg": "Motion JPEG",
}
# Audio kept only in these codecs (each valid in its container); other audio is dropped.
AUDIO_CODECS = {
    "MP4": frozenset({"aac", "mp3", "opus", "alac", "ac3", "eac3", "flac"}),
    "MOV": frozenset(
        {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be"}
    ),
    "WEBM": frozenset({"opus", "vorbis"}),
}
# Muxer options of the stored copy: the index first (see the module's docstring); 'bitexact':
# no encoder version, creation time or random ids written.
_MUXER_OPTIONS = {
    "MP4": {"movflags": "+faststart", "fflags": "+bitexact"},
    "MOV": {"movflags": "+faststart", "fflags": "+bitexact"},
    "WEBM": {"cues_to_front": "1", "fflags": "+bitexact"},
}
# The QuickTime demuxer could follow a track's data reference to another file; never.
_DEMUXER_OPTIONS = {"MP4": {"enable_drefs": "0"}, "MOV": {"enable_drefs": "0"}, "WEBM": {}}

# A clip a few hundredths of a second over the duration limit (an export rounding up) is not
# worth refusing.
DURATION_SLACK_S = 0.5
# A phone's 240 fps slow motion averages a hair above 240 (timestamps are rounded): a frame rate
# within 1 % of the limit is the limit.
_RATE_SLACK = 1.01
# Tracks a real clip has: video, sound, perhaps timecode, subtitles and a few data tracks.
MAX_TRACKS = 16
# Index entries any one track may make the demuxer allocate: room for every limit (frames of
# video; about 50 audio packets a second), far below what a crafted 10 KB header can declare.
_INDEX_ENTRIES_PER_SECOND = 1000
_MIN_INDEX_ENTRIES = 100_000
# A decoder gives its first frame after a few packets (its reordering delay); past this many,
# the stream is not one it can decode.
_PACKETS_BEFORE_FIRST_FRAME = 64
# Seconds one FFmpeg step (opening, reading one packet) may take: a safety net, far above what
# any file within the size limit needs.
_STEP_TIMEOUT_S = 20.0

# What a hostile or broken file can make PyAV raise (FFmpegError's subclasses are OSError,
# ValueError, EOFError and the like); each refuses the upload, never a server error.
FFMPEG_ERRORS = (av.error.FFmpegError, OSError, ValueError, EOFError, IndexError, KeyError)

# Names in removed_metadata, in the order they are listed.
_REMOVED_ORDER = (
    "GPS location",
    "creation time",
    "camera make and model",
    "software and encoder",
    "title",
    "comment or description",
    "other tags",
    "XMP",
    "chapters",
    "cover art",
    "subtitles",
    "data tracks (timecode, telemetry)",
    "attachments",
    "extra video tracks",
    "extra audio tracks",
    "audio (a format we do not keep)",
    "appended data",
)
# Tags FFmpeg reports that describe the file's structure, not the person or the clip.
_STRUCTURAL_TAGS = {
    "major_brand",
    "minor_version",
    "compatible_brands",
    "handler_name",
    "vendor_id",
    "language",
    "duration",
    "number_of_frames",
    "number_of_bytes",
    "bps",
    "_statistics_tags",
}


@dataclass(frozen=True)
class CleanVideo:
    content: bytes = field(repr=False)  # the remuxed copy to store: no metadata, same frames
    format: str  # "MP4" | "WEBM" | "MOV": the detected container, not the file name's
    extension: str  # ".mp4" | ".webm" | ".mov"
    content_type: str  # "video/mp4" | "video/webm" | "video/quicktime"
    width: int  # of the picture as shown (display rotation applied)
    height: int
    duration_s: float  # of the video track, measured from its packets
    frame_rate: float  # average frames per second
    frame_count: int  # frames (packets) in the video track
    video_codec: str  # FFmpeg's name: "h264", "hevc", "vp9", ...
    sha256: str  # hex sha256 of the ORIGINAL uploaded bytes (dedup, audit)
    original_size: int  # bytes of the original upload
    removed_metadata: tuple[str, ...]  # what the upload had and the stored copy has not
    phash: int = 0  # 64-bit difference hash of the first frame
    thumbnail: bytes = field(default=b"", repr=False)  # a small WebP of the first frame
    provenance: dict = field(default_factory=dict, repr=False, compare=False)
    audio_codec: str = ""  # of the kept audio track; "" when none is kept


def video_validate(*, upload: UploadedFile) -> CleanVideo:
    """Check one video upload and return its metadata-free copy; ValidationError if refused.

    Codes: "empty", "too_large", "not_a_video", "unsupported_format", "truncated", "no_video",
    "too_long", "too_many_pixels", "too_many_frames", "bad_frame_rate".
    """
    max_bytes = settings.DETECTION_VIDEO_MAX_BYTES
    if upload.size is not None:
        if upload.size == 0:
            raise messages.empty()
        if upload.size > max_bytes:
            raise refuse.too_large(upload.size, max_bytes)
    data = upload_read_at_most(upload, max_bytes + 1)
    if not data:
        raise messages.empty()
    if len(data) > max_bytes:
        raise refuse.too_large(len(data), max_bytes)

    head = data[:HEAD_BYTES]
    fmt = video_container_sniff(head)
    if fmt is None:
        other = other_video_format(head)
        raise refuse.unsupported(other) if other else refuse.not_a_video()
    if fmt == "MATROSKA":
        raise refuse.unsupported("Matroska (MKV)")

    try:
        facts = ebml_facts(data) if fmt == "WEBM" else iso_facts(data)
    except HeaderUnreadable as exc:
        raise refuse.truncated() from exc
    _headers_check(facts)

    try:
        stored = _remux(data, fmt)
    except _Refused as exc:
        raise exc.error from exc.__cause__
    except FFMPEG_ERRORS as exc:
        # The headers were sound, yet FFmpeg could not read (or copy) the streams: broken.
        logger.info("Video refused as damaged: %s", exc)
        raise refuse.truncated() from exc

    removed = set(stored.removed)
    if facts.xmp:
        removed.add("XMP")
    if facts.appended_data:
        removed.add("appended data")
    small = image_small(stored.first_frame)
    return CleanVideo(
        content=stored.content,
        format=fmt,
        extension=VIDEO_EXTENSIONS[fmt],
        content_type=VIDEO_CONTENT_TYPES[fmt],
        width=stored.first_frame.width,
        height=stored.first_frame.height,
        duration_s=round(stored.duration_s, 3),
        frame_rate=round(stored.frame_rate, 3),
        frame_count=stored.frame_count,
        video_codec=stored.video_codec,
        sha256=hashlib.sha256(data).hexdigest(),
        original_size=len(data),
        removed_metadata=tuple(name for name in _REMOVED_ORDER if name in removed),
        phash=image_phash(small),
        thumbnail=image_thumbnail(small),
        audio_codec=stored.audio_codec,
    )


# --- From the headers, before FFmpeg --------------------------------------------------------


def _headers_check(facts: HeaderFacts) -> None:
    max_pixels = settings.DETECTION_VIDEO_MAX_PIXELS
    max_frames = settings.DETECTION_VIDEO_MAX_FRAMES
    max_seconds = settings.DETECTION_VIDEO_MAX_SECONDS
    if facts.truncated:
        raise refuse.truncated()
    if facts.tracks > MAX_TRACKS:
        raise refuse.too_complex(facts.tracks, MAX_TRACKS)
    for track in facts.video:
        if track.width * track.height > max_pixels:
            raise refuse.too_many_pixels(track.width, track.height, max_pixels)
        if track.samples is not None and track.samples > max_frames:
            raise refuse.too_many_frames(track.samples, max_frames)
        if track.duration_s is not None and track.duration_s > max_seconds + DURATION_SLACK_S:
            raise refuse.too_long(track.duration_s, max_seconds)
    if facts.duration_s is not None and facts.duration_s > max_seconds + DURATION_SLACK_S:
        raise refuse.too_long(facts.duration_s, max_seconds)
    if facts.largest_index > _index_limit():
        raise refuse.truncated()  # a sample table no real clip within the limits has


def _index_limit() -> int:
    return max(
        settings.DETECTION_VIDEO_MAX_FRAMES,
        int(settings.DETECTION_VIDEO_MAX_SECONDS * _INDEX_ENTRIES_PER_SECOND),
        _MIN_INDEX_ENTRIES,
    )


# --- One pass with FFmpeg: check, measure, copy ---------------------------------------------


class _Refused(Exception):
    def __init__(self, error) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Stored:
    content: bytes
    first_frame: Image.Image  # upright RGB
    duration_s: float
    frame_rate: float
    frame_count: int
    video_codec: str
    audio_codec: str
    removed: set[str]


@dataclass
class _Timing:
    """First start, last start and last end of a stream's packets, in its time base."""

    first: int | None = None
    last_start: int | None = None
    end: int | None = None

    def add(self, start: int, duration: int) -> None:
        self.first = start if self.first is None else min(self.first, start)
        self.last_start = start if self.last_start is None else max(self.last_start, start)
        end = start + max(duration, 0)
        self.end = end if self.end is None else max(self.end, end)

    def span_s(self, time_base: Fraction) -> float:
        if self.first is None or self.end is None:
            return 0.0
        return float((self.end - self.first) * time_base)


def _remux(data: bytes, fmt: str) -> _Stored:
    max_pixels = settings.DETECTION_VIDEO_MAX_PIXELS
    container = av.open(
        BytesIO(data),
        mode="r",
        format=_DEMUXERS[fmt],
        # Every stream's decoder (those FFmpeg opens to probe the streams too) refuses frames
        # above the pixel limit before allocating them, whatever the headers said.
        options={"max_pixels": str(max_pixels)},
        container_options=_DEMUXER_OPTIONS[fmt],
        metadata_errors="replace",
        timeout=_STEP_TIMEOUT_S,
    )
    with container:
        video, audio, removed = _streams_choose(container, fmt)
        video_codec = _video_check(video, fmt, iso=fmt != "WEBM")
        removed |= _tags_found(container)
        with tempfile.TemporaryDirectory(prefix="video-intake-") as folder:
            path = Path(folder) / f"stored{VIDEO_EXTENSIONS[fmt]}"
            output = av.open(
                str(path), mode="w", format=_DEMUXERS[fmt], options=_MUXER_OPTIONS[fmt]
            )
            finished = False
            try:
                # opaque: the stream is described by the decoder's context (no encoder is
                # looked up: there is none for AV1's decoder, libdav1d, and none is needed).
                out_video = output.add_stream_from_template(video, opaque=True)
                if fmt != "WEBM" and video.codec_context.codec_tag:
                    # The source's tag ('hvc1', not the muxer's default 'hev1': Apple's players
                    # play only the former); valid, as the container family is the same.
                    out_video.codec_context.codec_tag = video.codec_context.codec_tag
                out_audio = output.add_stream_from_template(audio) if audio is not None else None
                for stream in (out_video, out_audio):
                    if stream is not None:
                        stream.metadata.clear()
                scan = _scan(container, output, video, audio, out_video, out_audio)
                finished = True
            finally:
                try:
                    output.close()  # writes the index; with faststart, moves it to the front
                except FFMPEG_ERRORS:
                    if finished:
                        raise
            content = path.read_bytes()
    frame, frames, timing = scan
    duration_s, frame_rate = _measured(video, frames, timing)
    return _Stored(
        content=content,
        first_frame=frame,
        duration_s=duration_s,
        frame_rate=frame_rate,
        frame_count=frames,
        video_codec=video_codec,
        audio_codec=_codec_name(audio) if audio is not None else "",
        removed=removed,
    )


def _codec_name(stream) -> str:
    context = getattr(stream, "codec_context", None)
    if context is None:
        return ""
    return context.codec.canonical_name or context.name or ""


def _streams_choose(container, fmt: str):
    """(the video stream, the audio stream kept or None, names of the tracks dropped)."""
    attached = av.stream.Disposition.attached_pic
    removed: set[str] = set()
    videos = [s for s in container.streams.video if attached not in s.disposition]
    if len(videos) < len(container.streams.video):
        removed.add("cover art")
    if not videos:
        raise _Refused(refuse.no_video_track())
    default = av.stream.Disposition.default
    video = next((s for s in videos if default in s.disposition), videos[0])
    if len(videos) > 1:
        removed.add("extra video tracks")
    audios = list(container.streams.audio)
    audio = next((s for s in audios if default in s.disposition), audios[0]) if audios else None
    if len(audios) > 1:
        removed.add("extra audio tracks")
    if audio is not None and _codec_name(audio) not in AUDIO_CODECS[fmt]:
        removed.add("audio (a format we do not keep)")
        audio = None
    if len(container.streams.subtitles):
        removed.add("subtitles")
    if len(container.streams.data):
        removed.add("data tracks (timecode, telemetry)")
    if len(container.streams.attachments):
        removed.add("attachments")
    if container.chapters():
        removed.add("chapters")
    return video, audio, removed


def _video_check(video, fmt: str, *, iso: bool) -> str:
    """The video codec's name, once codec, frame size and the declared rate are acceptable."""
    codec = _codec_name(video)
    if codec not in VIDEO_CODECS[fmt]:
        name = CODEC_NAMES.get(codec) or (
            video.codec_context.codec.long_name if video.codec_context is not None else ""
        )
        raise _Refused(refuse.unsupported_codec(name or "a format we cannot read"))
    width, height = video.codec_context.width, video.codec_context.height
    if width <= 0 or height <= 0:
        raise _Refused(refuse.no_frame_size())
    if width * height > settings.DETECTION_VIDEO_MAX_PIXELS:
        raise _Refused(refuse.too_many_pixels(width, height, settings.DETECTION_VIDEO_MAX_PIXELS))
    max_frames = settings.DETECTION_VIDEO_MAX_FRAMES
    if video.frames and video.frames > max_frames:
        raise _Refused(refuse.too_many_frames(video.frames, max_frames))
    # An MP4/MOV's rate comes from its sample table (frames over duration): a header value. A
    # WebM's is FFmpeg's guess from the first packets; it is measured over all of them instead.
    rate = video.average_rate
    max_rate = settings.DETECTION_VIDEO_MAX_FRAME_RATE
    if iso and rate is not None and not 0 < rate <= max_rate * _RATE_SLACK:
        raise _Refused(refuse.bad_frame_rate(float(rate), max_rate))
    return codec


def _tags_found(container) -> set[str]:
    """Names of the metadata in the container's and its streams' tags."""
    found: set[str] = set()
    tags = list(container.metadata)
    for stream in container.streams:
        tags.extend(stream.metadata)
    for tag in tags:
        name = _tag_name(tag.lower())
        if name:
            found.add(name)
    return found


def _tag_name(key: str) -> str | None:
    if key in _STRUCTURAL_TAGS or key.startswith("_statistics_writing_app"):
        return None
    if any(word in key for word in ("location", "gps", "xyz", "iso6709")):
        return "GPS location"
    if "date" in key or "creation_time" in key or key == "time":
        return "creation time"
    if key.endswith(("make", "model", "manufacturer")):
        return "camera make and model"
    if any(word in key for word in ("encoder", "software", "encoded_by", "writing_app")):
        return "software and encoder"
    if key in ("title", "name") or key.endswith(".title"):  # 'name': an MP4 track's title
        return "title"
    if any(word in key for word in ("comment", "description", "synopsis")):
        return "comment or description"
    return "other tags"


def _scan(container, output, video, audio, out_video, out_audio):
    """Read every packet once: count, time, decode until the first frame, copy to `output`.

    Returns (first frame upright, video frames, the video's timing). Stops at the first limit
    passed, so a file that declares little and holds much costs no more than the limits allow.
    """
    max_frames = settings.DETECTION_VIDEO_MAX_FRAMES
    max_seconds = settings.DETECTION_VIDEO_MAX_SECONDS
    decoder = video.codec_context
    decoder.thread_count = 1  # only the first frame is decoded: no threads to start
    decoder.options = {"max_pixels": str(settings.DETECTION_VIDEO_MAX_PIXELS)}
    frames = 0
    first = None
    tried = 0
    timings = {video.index: _Timing()}
    if audio is not None:
        timings[audio.index] = _Timing()
    streams = [video] + ([audio] if audio is not None else [])
    for packet in container.demux(*streams):
        if packet.dts is None and packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if packet.is_corrupt:
            raise _Refused(refuse.truncated())
        stream = packet.stream
        start = packet.pts if packet.pts is not None else packet.dts
        if start is not None:
            timing = timings[stream.index]
            timing.add(start, packet.duration or 0)
            span = timing.span_s(stream.time_base)
            if span > max_seconds + DURATION_SLACK_S:
                raise _Refused(refuse.too_long(span, max_seconds, at_least=True))
        if stream.index == video.index:
            frames += 1
            if frames > max_frames:
                raise _Refused(refuse.too_many_frames(max_frames, max_frames, at_least=True))
            if first is None:
                tried += 1
                if tried > _PACKETS_BEFORE_FIRST_FRAME:
                    raise _Refused(refuse.truncated())
                first = _first_frame(video, packet)
            packet.stream = out_video
        else:
            packet.stream = out_audio
        output.mux(packet)
    if frames == 0:
        raise _Refused(refuse.no_frames())
    if first is None:
        first = _first_frame(video, None)  # the decoder's delay: what it still holds
    if first is None:
        raise _Refused(refuse.truncated())
    if video.frames and frames < video.frames:
        raise _Refused(refuse.truncated())  # the sample table lists frames the file lacks
    return first, frames, timings[video.index]


def _first_frame(video, packet) -> Image.Image | None:
    """Decode `packet` (None: drain the decoder); the first frame out, upright RGB, or None."""
    try:
        decoded = video.decode(packet)
    except FFMPEG_ERRORS as exc:
        raise _Refused(refuse.truncated()) from exc
    if not decoded:
        return None
    frame = decoded[0]
    max_pixels = settings.DETECTION_VIDEO_MAX_PIXELS
    if frame.width * frame.height > max_pixels:  # the decoder's bound makes this unreachable
        raise _Refused(refuse.too_many_pixels(frame.width, frame.height, max_pixels))
    return _upright(frame.to_image(), frame.rotation)


def _upright(img: Image.Image, rotation: int | float) -> Image.Image:
    """The picture as players show it: the display matrix rotates it counter-clockwise."""
    turns = round((rotation or 0) / 90) % 4
    transposes = {
        1: Image.Transpose.ROTATE_90,
        2: Image.Transpose.ROTATE_180,
        3: Image.Transpose.ROTATE_270,
    }
    img = img.convert("RGB")
    return img.transpose(transposes[turns]) if turns else img


def _measured(video, frames: int, timing: _Timing) -> tuple[float, float]:
    """(duration in seconds, frames per second) of the video track, from its packets; refuses
    an absurd rate (one no real clip has, whatever the header said)."""
    max_rate = settings.DETECTION_VIDEO_MAX_FRAME_RATE
    time_base = video.time_base or Fraction(1, 1000)
    if timing.first is None:
        raise _Refused(refuse.truncated())  # no packet carried a time
    starts_s = float((timing.last_start - timing.first) * time_base)
    declared = video.average_rate
    if frames > 1:
        if starts_s <= 0:
            raise _Refused(refuse.bad_frame_rate(math.inf, max_rate))
        rate = (frames - 1) / starts_s
        if rate > max_rate * _RATE_SLACK:
            raise _Refused(refuse.bad_frame_rate(rate, max_rate))
    else:
        rate = float(declared) if declared and 0 < declared <= max_rate * _RATE_SLACK else 0.0
    duration_s = timing.span_s(time_base)
    if timing.end == timing.last_start and rate:
        duration_s = starts_s + 1 / rate  # packets without durations: add the last frame's
    if declared and 0 < declared <= max_rate * _RATE_SLACK:
        rate = float(declared)  # the container's average (what players show) when sane
    if rate <= 0:
        raise _Refused(refuse.bad_frame_rate(None, max_rate))
    if duration_s > settings.DETECTION_VIDEO_MAX_SECONDS + DURATION_SLACK_S:
        raise _Refused(refuse.too_long(duration_s, settings.DETECTION_VIDEO_MAX_SECONDS))
    return duration_s, rate
