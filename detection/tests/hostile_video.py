"""Video files for the upload gate's tests, made in memory with PyAV (no binary files in the
repository): real clips (``tests.video_clips``), clips with sound and metadata, and hostile or
broken ones made by cutting or patching a real clip's bytes. Generators are cached (bytes are
immutable)."""

from __future__ import annotations

import functools
import io
import struct
from fractions import Fraction

import av
import numpy as np

from tests.video_clips import clip_frames, make_clip

SECRET_TITLE = "Secret-Title-42"
SECRET_COMMENT = "secret-comment-about-the-clip"
# ISO 6709, as phones write it (Amsterdam).
SECRET_LOCATION = "+52.3700+004.8900/"
SECRET_TRACK_TITLE = "secret-track-title"
METADATA = {
    "title": SECRET_TITLE,
    "comment": SECRET_COMMENT,
    "location": SECRET_LOCATION,
    "creation_time": "2024-05-06T07:08:09.000000Z",
}
_AUDIO = {"mp4": "aac", "mov": "aac", "webm": "libopus", "mkv": "libopus"}
_CONTAINERS = {"mp4": "mp4", "mov": "mov", "webm": "webm", "mkv": "matroska"}
_VIDEO = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9", "mkv": "libvpx-vp9"}


@functools.lru_cache(maxsize=32)
def clip(fmt: str = "mp4", seconds: float = 2.0, fps: int = 10, size=(320, 240)) -> bytes:
    return make_clip(fmt, seconds=seconds, fps=fps, size=size)


@functools.lru_cache(maxsize=8)
def clip_with_metadata(fmt: str = "mp4") -> bytes:
    return make_clip(fmt, seconds=1.0, fps=10, metadata=dict(METADATA))


def _silence(stream, seconds: float):
    rate = stream.rate
    samples = 960 if stream.codec_context.name in ("libopus", "opus") else 1024
    layout = "mono"
    for index in range(int(seconds * rate / samples)):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, samples), dtype=np.float32 if stream.format.name == "fltp" else np.int16),
            format=stream.format.name,
            layout=layout,
        )
        frame.sample_rate = rate
        frame.pts = index * samples
        frame.time_base = Fraction(1, rate)
        yield frame


@functools.lru_cache(maxsize=16)
def clip_full(
    fmt: str = "mp4",
    *,
    audio: bool = True,
    video_frames: int = 10,
    extra_audio: bool = False,
    chapters: bool = False,
    rotation: int = 0,
    codec: str | None = None,
    metadata: bool = True,
    size=(320, 240),
    codec_tag: str = "",
) -> bytes:
    """A clip written with everything a phone or an editor adds: container and track metadata,
    a sound track (a second one with `extra_audio`), chapters, a display rotation.
    `video_frames=0` makes a video track with no frames at all (the sound keeps the file
    valid)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=_CONTAINERS[fmt]) as container:
        if metadata:
            container.metadata.update(METADATA)
        video = container.add_stream(codec or _VIDEO[fmt], rate=Fraction(10))
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if (codec or _VIDEO[fmt]) == "libx264":
            video.options = {"preset": "ultrafast"}
        if codec_tag:
            video.codec_tag = codec_tag
        if metadata:
            video.metadata["title"] = SECRET_TRACK_TITLE
        if rotation:
            video.set_display_rotation(rotation)
        sounds = []
        if audio:
            for _ in range(2 if extra_audio else 1):
                sound = container.add_stream(_AUDIO[fmt], rate=48000)
                sound.layout = "mono"
                sounds.append(sound)
        if chapters:
            container.set_chapters(
                [
                    {
                        "id": 1,
                        "start": 0,
                        "end": 500,
                        "time_base": Fraction(1, 1000),
                        "metadata": {"title": "secret chapter"},
                    }
                ]
            )
        if video_frames:
            frames = clip_frames(seconds=video_frames / 10, fps=10, size=size)
            for array in frames:
                for packet in video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
        for sound in sounds:
            for frame in _silence(sound, max(video_frames, 10) / 10):
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def audio_only(fmt: str = "mp4") -> bytes:
    """A file of the container with a sound track and no video track."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=_CONTAINERS[fmt]) as container:
        sound = container.add_stream(_AUDIO[fmt], rate=48000)
        sound.layout = "mono"
        for frame in _silence(sound, 1.0):
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return out.getvalue()


@functools.lru_cache(maxsize=2)
def fragmented_clip() -> bytes:
    """A fragmented MP4 (a 'moof' and 'mdat' per half second, as screen recorders and live
    streams write): the frames are declared fragment by fragment ('trun'), not in 'moov'."""
    out = io.BytesIO()
    options = {"movflags": "frag_keyframe+empty_moov"}
    with av.open(out, mode="w", format="mp4", options=options) as container:
        video = container.add_stream("libx264", rate=Fraction(10))
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast", "g": "5"}
        for array in clip_frames(seconds=2.0, fps=10):
            for packet in video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return out.getvalue()


def faststart(data: bytes, fmt: str = "mp4") -> bytes:
    """The same clip with its index ('moov') before the media, as phones write it."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"clip.{fmt}"
        with (
            av.open(io.BytesIO(data)) as source,
            av.open(str(path), mode="w", format=fmt, options={"movflags": "+faststart"}) as target,
        ):
            video = source.streams.video[0]
            copy = target.add_stream_from_template(video)
            for packet in source.demux(video):
                if packet.dts is None:
                    continue
                packet.stream = copy
                target.mux(packet)
        return path.read_bytes()


# --- Byte patches ---------------------------------------------------------------------------


def box_offset(data: bytes, kind: bytes, after: bytes = b"") -> int:
    """Where the first box of this type starts (its size field), found by its type's bytes
    (after the first `after` box, if given: 'avc1' is also a brand in 'ftyp')."""
    start = data.index(after) if after else 0
    return data.index(kind, start) - 4


def patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    raw = struct.pack(fmt, *values)
    return data[:offset] + raw + data[offset + len(raw) :]


def mp4_frame_size(data: bytes, width: int, height: int) -> bytes:
    """The sample description ('avc1') declares frames of width x height (the H.264 stream
    inside still says 320 x 240: a header that lies)."""
    entry = box_offset(data, b"avc1", after=b"stsd")
    return patch(data, entry + 32, ">HH", width, height)


def mp4_sample_count(data: bytes, count: int) -> bytes:
    """The sample-size table ('stsz') declares `count` frames."""
    stsz = box_offset(data, b"stsz")
    return patch(data, stsz + 16, ">I", count)


def mp4_fragment_sample_count(data: bytes, count: int) -> bytes:
    """The first fragment's run ('trun') declares `count` frames."""
    trun = box_offset(data, b"trun")
    return patch(data, trun + 12, ">I", count)


def mp4_timescale_times(data: bytes, factor: int) -> bytes:
    """The video track's clock ('mdhd' timescale) runs `factor` times faster: every frame
    lasts 1/factor of its time, so a 10 fps clip declares 10 x factor frames a second."""
    mdhd = box_offset(data, b"mdhd")
    version = data[mdhd + 8]
    at = mdhd + 12 + (16 if version == 1 else 8)
    (timescale,) = struct.unpack(">I", data[at : at + 4])
    return patch(data, at, ">I", timescale * factor)


def mp4_declared_durations(data: bytes, seconds: float) -> bytes:
    """The movie ('mvhd'), the track ('tkhd', 'elst') and the media ('mdhd') all declare
    `seconds`; the frames inside still last what they last (a header that lies)."""
    for kind in (b"mvhd", b"mdhd"):
        box = box_offset(data, kind)
        at = box + 12 + 8  # version 0: creation and modification times, then the clock
        (timescale,) = struct.unpack(">I", data[at : at + 4])
        data = patch(data, at + 4, ">I", int(seconds * timescale))
    return data


def webm_frame_size(data: bytes) -> bytes:
    """The WebM track entry declares frames as large as its fields can say in the bytes FFmpeg
    gave them (PixelWidth 2 bytes: 65,535; PixelHeight 1 byte: 255): 16.7 megapixels."""
    video = data.index(b"\xe0", data.rindex(b"\x16\x54\xae\x6b"))  # Video, in Tracks
    for element_id in (b"\xb0", b"\xba"):
        at = data.index(element_id, video)
        length = data[at + 1] & 0x7F
        data = data[: at + 2] + b"\xff" * length + data[at + 2 + length :]
    return data


def mkv_clip() -> bytes:
    """A Matroska file (DocType "matroska") holding a VP9 clip: valid, but not WebM."""
    return clip_full("mkv", audio=False, metadata=False)


def avi_header() -> bytes:
    return b"RIFF" + struct.pack("<I", 2000) + b"AVI LIST" + b"\x00" * 200
