"""The video upload gate: MP4, WebM and MOV recognised by content, stored as a metadata-free copy
of the same frames; every hostile or broken file refused with a clear message and nothing
stored. Clips are made in the tests (tests.video_clips, detection.tests.hostile_video)."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import av
import pytest
from django.core.exceptions import ValidationError
from django.test.client import FakePayload
from django.urls import reverse
from PIL import Image

from detection import services
from detection.models import Detection
from detection.tests import hostile
from detection.tests import hostile_video as hv
from detection.uploads import CleanImage, CleanVideo, upload_validate, video_validate
from detection.uploads.sniff import upload_kind
from detection.uploads.video_containers import ebml_facts, iso_facts

API_LIST = "/api/v1/detections/"
FORMATS = {
    "mp4": ("MP4", ".mp4", "video/mp4", "h264"),
    "mov": ("MOV", ".mov", "video/quicktime", "h264"),
    "webm": ("WEBM", ".webm", "video/webm", "vp9"),
}


def video_upload(data: bytes, name: str = "clip.mp4", content_type: str = "video/mp4"):
    return hostile.upload(data, name, content_type)


def refused(data: bytes, name: str = "clip.mp4", content_type: str = "video/mp4"):
    with pytest.raises(ValidationError) as info:
        video_validate(upload=video_upload(data, name, content_type))
    return info.value


def frames_in(content: bytes) -> int:
    with av.open(io.BytesIO(content)) as container:
        video = container.streams.video[0]
        return sum(1 for packet in container.demux(video) if packet.size)


@pytest.fixture
def ffmpeg_never_opened(monkeypatch):
    """Fails the test if the upload reaches FFmpeg: a refusal from the headers alone."""

    def _remux(*args, **kwargs):
        raise AssertionError("FFmpeg opened a file the headers should have refused")

    monkeypatch.setattr("detection.uploads.video._remux", _remux)


# --- Accepted clips -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_clip_is_accepted_and_described(fmt):
    data = hv.clip(fmt)  # 2 s at 10 fps, 320 x 240
    clean = video_validate(upload=video_upload(data, f"holiday.{fmt}"))
    fmt_name, extension, content_type, codec = FORMATS[fmt]
    assert isinstance(clean, CleanVideo)
    assert (clean.format, clean.extension, clean.content_type) == (
        fmt_name,
        extension,
        content_type,
    )
    assert (clean.width, clean.height) == (320, 240)
    assert clean.frame_count == 20
    assert clean.duration_s == pytest.approx(2.0, abs=0.01)
    assert clean.frame_rate == pytest.approx(10.0)
    assert clean.video_codec == codec
    assert clean.sha256 == hashlib.sha256(data).hexdigest()
    assert clean.original_size == len(data)
    assert clean.provenance == {}
    # The stored copy holds the same frames, and decodes.
    assert frames_in(clean.content) == 20
    # A thumbnail of the first frame (a grey canvas with a face on it), and its hash.
    thumb = Image.open(io.BytesIO(clean.thumbnail))
    assert thumb.format == "WEBP" and max(thumb.size) == 160
    assert isinstance(clean.phash, int) and clean.phash != 0


@pytest.mark.parametrize(
    ("fmt", "encoder", "codec", "tag"),
    [
        ("mp4", "libx265", "hevc", "hvc1"),  # an iPhone's HEVC, tagged for Apple's players
        ("mov", "libx265", "hevc", "hvc1"),
        ("mp4", "libsvtav1", "av1", ""),
        ("webm", "libsvtav1", "av1", ""),
        ("webm", "libvpx", "vp8", ""),
        ("mp4", "libvpx-vp9", "vp9", ""),
    ],
)
def test_every_accepted_codec_is_stored_as_it_came(fmt, encoder, codec, tag):
    data = hv.clip_full(fmt, codec=encoder, codec_tag=tag, metadata=False)
    clean = video_validate(upload=video_upload(data, f"c.{fmt}"))
    assert clean.video_codec == codec and clean.frame_count == 10
    with av.open(io.BytesIO(clean.content)) as stored:
        video = stored.streams.video[0]
        assert video.codec_context.name in (codec, "libdav1d")
        if tag:
            assert video.codec_context.codec_tag == tag
        assert [s.type for s in stored.streams] == ["video", "audio"]
    assert frames_in(clean.content) == 10


@pytest.mark.parametrize(
    ("fmt", "encoder"), [("mp4", None), ("mov", None), ("mov", "libx265"), ("mp4", "libsvtav1")]
)
def test_the_iso_headers_are_read_as_ffmpeg_reads_them(fmt, encoder):
    # What the gate's header checks rest on: a wrong reading would let a bomb through, or
    # refuse a real clip (QuickTime's second 'hdlr', a table without a count like 'sdtp').
    facts = iso_facts(hv.clip_full(fmt, codec=encoder, audio=True, metadata=False))
    [track] = facts.video
    assert (track.width, track.height, track.samples) == (320, 240, 10)
    assert track.duration_s == pytest.approx(1.0)
    assert facts.tracks == 2 and 10 <= facts.largest_index < 100
    assert not facts.truncated and not facts.appended_data


def test_a_fragmented_mp4_is_accepted_and_its_fragments_counted():
    data = hv.fragmented_clip()
    [track] = iso_facts(data).video
    assert track.samples == 20  # declared fragment by fragment
    clean = video_validate(upload=video_upload(data))
    assert clean.frame_count == 20 and frames_in(clean.content) == 20


def test_a_fragment_declaring_millions_of_frames_is_refused_from_its_header(ffmpeg_never_opened):
    error = refused(hv.mp4_fragment_sample_count(hv.fragmented_clip(), 5_000_000))
    assert error.code == "too_many_frames"


def test_the_webm_headers_are_read_as_ffmpeg_reads_them():
    facts = ebml_facts(hv.clip("webm"))
    [track] = facts.video
    assert (track.width, track.height) == (320, 240)
    assert facts.duration_s == pytest.approx(2.0) and facts.tracks == 1


def test_the_detected_container_wins_over_the_name():
    clean = video_validate(upload=video_upload(hv.clip("webm"), "clip.mp4", "video/mp4"))
    assert (clean.format, clean.extension) == ("WEBM", ".webm")


# --- Metadata stripped ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_metadata_is_stripped_and_the_frames_are_kept(fmt):
    data = hv.clip_full(fmt, extra_audio=True, chapters=True)
    assert hv.SECRET_TITLE.encode() in data and hv.SECRET_COMMENT.encode() in data
    clean = video_validate(upload=video_upload(data, f"phone.{fmt}"))

    for name in (
        "GPS location",
        "creation time",
        "title",
        "comment or description",
        "chapters",
        "extra audio tracks",
    ):
        assert name in clean.removed_metadata, (name, clean.removed_metadata)
    # None of it is anywhere in the stored bytes.
    for secret in (hv.SECRET_TITLE, hv.SECRET_COMMENT, hv.SECRET_TRACK_TITLE, "secret chapter"):
        assert secret.encode() not in clean.content, secret
    assert b"52.37" not in clean.content and b"2024-05-06" not in clean.content
    with av.open(io.BytesIO(clean.content)) as stored:
        tags = dict(stored.metadata)
        for stream in stored.streams:
            tags |= {f"{stream.index}:{k}": v for k, v in stream.metadata.items()}
        assert not any(
            word in key.lower()
            for key in tags
            for word in ("title", "comment", "location", "creation", "date", "name")
            if key.lower() != "handler_name" and not key.lower().endswith(":handler_name")
        ), tags
        assert stored.chapters() == []
        # Picture and one sound track: nothing else.
        assert [s.type for s in stored.streams] == ["video", "audio"]
    assert frames_in(clean.content) == frames_in(data) == 10
    assert clean.audio_codec == ("opus" if fmt == "webm" else "aac")


def test_a_clean_clip_reports_only_what_it_had():
    clean = video_validate(upload=video_upload(hv.clip_full("mp4", metadata=False, audio=False)))
    # FFmpeg wrote its own encoder tag when the test made the clip; nothing else was there.
    assert clean.removed_metadata == ("software and encoder",)


def test_an_mp4_is_stored_with_its_index_first_for_playback_while_downloading():
    data = hv.clip("mp4")
    assert data.index(b"moov") > data.index(b"mdat")  # as FFmpeg writes by default
    stored = video_validate(upload=video_upload(data)).content
    assert stored.index(b"moov") < stored.index(b"mdat")


def test_a_webm_is_stored_with_its_index_first():
    cues, cluster = b"\x1c\x53\xbb\x6b", b"\x1f\x43\xb6\x75"
    stored = video_validate(upload=video_upload(hv.clip("webm"), "c.webm", "video/webm")).content
    assert stored.rindex(cues) < stored.index(cluster)


def test_a_portrait_phone_clip_keeps_its_rotation_and_is_described_upright():
    data = hv.clip_full("mp4", rotation=90, audio=False)
    clean = video_validate(upload=video_upload(data))
    assert (clean.width, clean.height) == (240, 320)
    thumb = Image.open(io.BytesIO(clean.thumbnail))
    assert thumb.height > thumb.width
    with av.open(io.BytesIO(clean.content)) as stored:
        frame = next(stored.decode(video=0))
        assert frame.rotation == 90 and (frame.width, frame.height) == (320, 240)


# --- Hostile and broken files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("mp4 cut, index at the end", lambda: hv.clip("mp4")[: len(hv.clip("mp4")) * 6 // 10]),
        (
            "mp4 cut, index first",
            lambda: (lambda d: d[: len(d) * 6 // 10])(hv.faststart(hv.clip())),
        ),
        ("mp4 missing its last bytes", lambda: hv.faststart(hv.clip())[:-200]),
        ("mov cut", lambda: hv.clip("mov")[: len(hv.clip("mov")) // 2]),
        ("webm cut", lambda: hv.clip("webm")[: len(hv.clip("webm")) * 9 // 10]),
        ("header only", lambda: hv.clip("mp4")[:40]),
    ],
)
def test_a_truncated_clip_is_refused(case, make):
    error = refused(make())
    assert error.code == "truncated"
    assert "incomplete or damaged" in error.messages[0]


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_a_file_with_sound_only_is_refused(fmt):
    error = refused(hv.audio_only(fmt), f"song.{fmt}")
    assert error.code == "no_video"
    assert "no video in it" in error.messages[0]


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_a_video_track_without_frames_is_refused(fmt):
    error = refused(hv.clip_full(fmt, video_frames=0), f"empty.{fmt}")
    assert error.code == "no_video"


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_an_absurd_frame_rate_in_the_header_is_refused(fmt):
    # The video track's clock runs 10,000 times faster: 100,000 frames a second.
    error = refused(hv.mp4_timescale_times(hv.clip(fmt), 10_000))
    assert error.code == "bad_frame_rate"
    assert "100,000 frames a second" in error.messages[0]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_frame_rate_above_the_setting_is_refused(fmt, settings):
    settings.DETECTION_VIDEO_MAX_FRAME_RATE = 5  # the clips run at 10
    error = refused(hv.clip(fmt), f"c.{fmt}")
    assert error.code == "bad_frame_rate"
    assert "limit of 5" in error.messages[0]


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_a_video_bomb_declaring_huge_frames_is_refused_from_its_header(fmt, ffmpeg_never_opened):
    bomb = hv.mp4_frame_size(hv.clip(fmt), 60_000, 60_000)  # 3.6 gigapixels a frame
    started = time.perf_counter()
    error = refused(bomb)
    assert time.perf_counter() - started < 1
    assert error.code == "too_many_pixels"
    assert "60,000 × 60,000" in error.messages[0]


def test_a_webm_bomb_is_refused_from_its_header(ffmpeg_never_opened):
    error = refused(hv.webm_frame_size(hv.clip("webm")), "c.webm", "video/webm")
    assert error.code == "too_many_pixels"
    assert "65,535 × 255" in error.messages[0]


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_a_header_declaring_millions_of_frames_is_refused_before_ffmpeg_indexes_them(
    fmt, ffmpeg_never_opened
):
    error = refused(hv.mp4_sample_count(hv.clip(fmt), 5_000_000))
    assert error.code == "too_many_frames"
    assert "5,000,000" in error.messages[0]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_frames_above_the_pixel_setting_are_refused(fmt, settings):
    settings.DETECTION_VIDEO_MAX_PIXELS = 50_000  # the clips are 320 x 240 = 76,800
    error = refused(hv.clip(fmt), f"c.{fmt}")
    assert error.code == "too_many_pixels"
    assert "320 × 240" in error.messages[0]


def test_a_header_understating_the_frame_size_does_not_get_past_the_limit(settings):
    # The sample description says 32 x 24; the H.264 stream itself is 320 x 240.
    settings.DETECTION_VIDEO_MAX_PIXELS = 10_000
    error = refused(hv.mp4_frame_size(hv.clip("mp4"), 32, 24))
    assert error.code == "too_many_pixels"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_clip_longer_than_the_setting_is_refused(fmt, settings):
    settings.DETECTION_VIDEO_MAX_SECONDS = 1.0  # the clips last 2 s
    error = refused(hv.clip(fmt), f"c.{fmt}")
    assert error.code == "too_long"
    assert "the limit is 1 s" in error.messages[0]


def test_a_header_understating_the_duration_is_caught_while_reading_the_packets(settings):
    settings.DETECTION_VIDEO_MAX_SECONDS = 1.0
    lying = hv.mp4_declared_durations(hv.clip("mp4"), 0.5)  # says 0.5 s; holds 2 s of frames
    error = refused(lying)
    assert error.code == "too_long"
    assert "at least" in error.messages[0]


@pytest.mark.parametrize(
    ("fmt", "words"), [("mp4", "(20)"), ("mov", "(20)"), ("webm", "more than 10")]
)
def test_more_frames_than_the_setting_are_refused(fmt, words, settings):
    settings.DETECTION_VIDEO_MAX_FRAMES = 10  # the clips have 20
    error = refused(hv.clip(fmt), f"c.{fmt}")
    assert error.code == "too_many_frames"
    assert words in error.messages[0]  # MP4/MOV declare it; a WebM's frames are counted


def test_text_renamed_mp4_is_not_a_video():
    error = refused(b"just some notes, not a video\n" * 20, "notes.mp4")
    assert error.code == "not_a_video"
    assert "not a video we can read" in error.messages[0]


def test_matroska_that_is_not_webm_is_refused_by_name():
    error = refused(hv.mkv_clip(), "clip.mkv", "video/x-matroska")
    assert error.code == "unsupported_format"
    assert "Matroska (MKV) files are not supported" in error.messages[0]


def test_another_video_container_is_refused_by_name():
    error = refused(hv.avi_header(), "clip.mp4")
    assert error.code == "unsupported_format"
    assert "AVI files are not supported" in error.messages[0]


def test_a_codec_outside_the_allow_list_is_refused():
    error = refused(hv.clip_full("mp4", codec="mpeg4", audio=False, metadata=False))
    assert error.code == "unsupported_format"
    assert "MPEG-4 Part 2" in error.messages[0] and "H.264" in error.messages[0]


def test_an_empty_file_is_refused():
    assert refused(b"").code == "empty"


class _Unreadable(io.BytesIO):
    def read(self, size=-1):
        raise AssertionError("read although the declared size was over the limit")


def test_the_declared_size_is_checked_before_anything_is_read(settings):
    settings.DETECTION_VIDEO_MAX_BYTES = 1000
    upload = video_upload(hv.clip("mp4"))
    upload.file = _Unreadable(upload.file.getvalue())
    with pytest.raises(ValidationError) as info:
        video_validate(upload=upload)
    assert info.value.code == "too_large"
    assert "the limit for a video is 1000\xa0bytes" in info.value.messages[0]


def test_a_size_that_lies_is_caught_while_reading(settings):
    settings.DETECTION_VIDEO_MAX_BYTES = 1000
    upload = video_upload(hv.clip("mp4"))
    upload.size = 10
    with pytest.raises(ValidationError) as info:
        video_validate(upload=upload)
    assert info.value.code == "too_large"


# --- Images and videos, by content ----------------------------------------------------------


def test_a_png_renamed_mp4_is_an_image():
    clean = upload_validate(upload=video_upload(hostile.png(), "clip.mp4", "video/mp4"))
    assert isinstance(clean, CleanImage) and clean.format == "PNG"


def test_an_mp4_renamed_jpg_is_a_video():
    clean = upload_validate(upload=hostile.upload(hv.clip("mp4"), "photo.jpg", "image/jpeg"))
    assert isinstance(clean, CleanVideo) and clean.format == "MP4"


@pytest.mark.parametrize(
    ("name", "content_type", "code"),
    [
        ("notes.mp4", "application/octet-stream", "not_a_video"),
        ("notes", "video/quicktime", "not_a_video"),
        ("notes.jpg", "image/jpeg", "not_an_image"),
        ("notes.txt", "text/plain", "not_an_image"),
    ],
)
def test_unknown_content_is_refused_in_the_words_of_what_was_meant(name, content_type, code):
    with pytest.raises(ValidationError) as info:
        upload_validate(upload=hostile.upload(b"plain text\n" * 30, name, content_type))
    assert info.value.code == code


def test_heic_is_still_an_image_format_we_name():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    assert upload_kind(head=heic, name="x.mp4") == "video"  # unknown content, named .mp4
    assert upload_kind(head=heic, name="x.heic") == "image"
    with pytest.raises(ValidationError) as info:
        upload_validate(upload=hostile.upload(heic, "x.heic", "image/heic"))
    assert "HEIC/HEIF files are not supported" in info.value.messages[0]


# --- Stored through the service: rows, files, nothing on refusal ----------------------------


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.django_db
def test_a_video_upload_is_stored_as_a_video_detection(
    user, enqueued, settings, django_capture_on_commit_callbacks
):
    data = hv.clip_with_metadata("mp4")
    with django_capture_on_commit_callbacks(execute=True):
        [detection] = services.detection_create_many(user=user, uploads=[video_upload(data)])
    detection.refresh_from_db()
    assert detection.kind == Detection.Kind.VIDEO
    assert (detection.format, detection.width, detection.height) == ("MP4", 320, 240)
    assert detection.frame_count == 10 and detection.video_codec == "h264"
    assert detection.duration_s == pytest.approx(1.0, abs=0.01)
    assert detection.frame_rate == pytest.approx(10.0)
    assert detection.sha256 == hashlib.sha256(data).hexdigest()
    assert "GPS location" in detection.removed_metadata
    assert detection.thumbnail and detection.phash is not None
    assert detection.status == Detection.Status.PENDING and enqueued == [detection.id]
    [path] = stored_files(settings)
    assert path.suffix == ".mp4" and detection.image.name.endswith(".mp4")
    content = path.read_bytes()
    assert detection.byte_size == len(content)
    assert hv.SECRET_TITLE.encode() not in content and frames_in(content) == 10


@pytest.mark.django_db
def test_images_and_videos_in_one_upload(user, settings):
    created = services.detection_create_many(
        user=user,
        uploads=[
            hostile.upload(hostile.jpeg(), "face.jpg"),
            video_upload(hv.clip("webm"), "clip.webm", "video/webm"),
            video_upload(hostile.png(), "renamed.mp4", "video/mp4"),  # a PNG: an image
        ],
    )
    kinds = [(d.original_name, d.kind, d.format) for d in created]
    assert kinds == [
        ("face.jpg", "image", "JPEG"),
        ("clip.webm", "video", "WEBM"),
        ("renamed.mp4", "image", "PNG"),
    ]
    assert len({d.batch_id for d in created}) == 1 and created[0].batch_id is not None
    assert sorted(p.suffix for p in stored_files(settings)) == [".jpg", ".png", ".webm"]


@pytest.mark.django_db
def test_the_same_clip_twice_in_one_upload_is_analysed_once(user):
    data = hv.clip("mov")
    created = services.detection_create_many(
        user=user, uploads=[video_upload(data, "a.mov"), video_upload(data, "b.mov")]
    )
    assert len(created) == 1
    assert [(d.name, d.same_as) for d in created.duplicates] == [("b.mov", "a.mov")]


@pytest.mark.django_db
def test_a_clip_checked_before_is_analysed_again_not_reused(user, monkeypatch):
    # Repeats reuse an image's verdict; a video's (per track) is never copied.
    monkeypatch.setattr("detection.services.model_version_current", lambda: "m-1")
    data = hv.clip("mp4")
    [first] = services.detection_create_many(user=user, uploads=[video_upload(data)])
    Detection.objects.filter(id=first.id).update(
        status=Detection.Status.DONE,
        label=Detection.Label.REAL,
        fake_probability=0.1,
        threshold=0.5,
        uncertain_low=0.4,
        uncertain_high=0.6,
        model_name="deepfake-test",
        model_version="m-1",
    )
    [second] = services.detection_create_many(user=user, uploads=[video_upload(data)])
    assert second.reused_from_id is None and second.status == Detection.Status.PENDING


@pytest.mark.django_db
def test_near_duplicate_links_never_point_at_a_video(user):
    [video] = services.detection_create_many(user=user, uploads=[video_upload(hv.clip("mp4"))])
    image = hostile.jpeg((64, 48))
    probe = upload_validate(upload=hostile.upload(image, "face.jpg"))
    Detection.objects.filter(id=video.id).update(phash=probe.phash)  # the very same hash
    [linked] = services.detection_create_many(
        user=user, uploads=[hostile.upload(image, "face.jpg")]
    )
    assert linked.similar_to_id is None


HOSTILE_IN_A_BATCH = [
    ("cut", lambda: hv.clip("mp4")[:5000], "truncated"),
    ("bomb", lambda: hv.mp4_frame_size(hv.clip("mp4"), 60_000, 60_000), "too_many_pixels"),
    ("frames bomb", lambda: hv.mp4_sample_count(hv.clip("mp4"), 5_000_000), "too_many_frames"),
    ("rate", lambda: hv.mp4_timescale_times(hv.clip("mp4"), 10_000), "bad_frame_rate"),
    ("sound only", lambda: hv.audio_only("mp4"), "no_video"),
    ("mkv", hv.mkv_clip, "unsupported_format"),
    ("text", lambda: b"not a video\n" * 40, "not_a_video"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "make", "code"), HOSTILE_IN_A_BATCH, ids=[c[0] for c in HOSTILE_IN_A_BATCH]
)
def test_one_hostile_video_stores_nothing_of_the_whole_upload(user, settings, case, make, code):
    with pytest.raises(ValidationError) as info:
        services.detection_create_many(
            user=user,
            uploads=[
                hostile.upload(hostile.jpeg(), "fine.jpg"),
                video_upload(hv.clip("webm"), "fine.webm", "video/webm"),
                video_upload(make(), "bad.mp4"),
            ],
        )
    [error] = info.value.error_list
    assert error.code == code and error.params["file"] == "bad.mp4"
    assert Detection.objects.count() == 0
    assert stored_files(settings) == []


# --- The page and the API -------------------------------------------------------------------


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_upload_page_accepts_videos_and_lists_their_limits(signed_in, settings):
    settings.DETECTION_VIDEO_MAX_SECONDS = 90
    html = signed_in.get(reverse("detection:upload")).content.decode()
    assert "video/mp4,video/webm,video/quicktime" in html and ".mov" in html
    assert "Videos: MP4, WEBM, MOV" in html
    assert "1 min 30 s per video" in html
    assert 'data-video-max-bytes="104857600"' in html


@pytest.mark.django_db
def test_a_clip_uploaded_on_the_page_opens_its_result(signed_in, settings):
    response = signed_in.post(
        reverse("detection:upload"), {"images": [video_upload(hv.clip("mp4"), "me.mp4")]}
    )
    detection = Detection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("detection:detail", args=[detection.id])
    assert detection.kind == "video" and detection.original_name == "me.mp4"


@pytest.mark.django_db
def test_a_hostile_clip_on_the_page_is_refused_clearly(signed_in, settings):
    bomb = hv.mp4_frame_size(hv.clip("mp4"), 60_000, 60_000)
    response = signed_in.post(reverse("detection:upload"), {"images": [video_upload(bomb)]})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was uploaded" in html and "clip.mp4" in html and "too large" in html
    assert Detection.objects.count() == 0 and stored_files(settings) == []


@pytest.mark.django_db
def test_a_clip_uploaded_through_the_api(token_client, settings):
    response = token_client.post(
        API_LIST,
        {"image": [video_upload(hv.clip("webm"), "c.webm", "video/webm")]},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    [item] = response.json()["detections"]
    assert (item["status"], item["kind"]) == ("pending", "video")
    assert Detection.objects.get().format == "WEBM"
    detail = token_client.get(item["url"]).json()
    assert detail["kind"] == "video" and detail["format"] == "WEBM"


@pytest.mark.django_db
def test_a_truncated_clip_through_the_api_is_refused_with_its_code(token_client, settings):
    cut = hv.clip("mp4")[:6000]
    response = token_client.post(API_LIST, {"image": [video_upload(cut)]}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["code"] == "truncated" and body["errors"][0]["file"] == "clip.mp4"
    assert "incomplete or damaged" in body["detail"]
    assert Detection.objects.count() == 0 and stored_files(settings) == []


@pytest.fixture
def bytes_read(monkeypatch):
    counter = [0]
    real_read = FakePayload.read

    def read(self, size=-1):
        data = real_read(self, size)
        counter[0] += len(data)
        return data

    monkeypatch.setattr(FakePayload, "read", read)
    return counter


@pytest.mark.django_db
def test_a_video_above_the_image_limit_streams_in_under_its_own(token_client, settings):
    data = hv.clip("mp4")
    settings.DETECTION_MAX_UPLOAD_BYTES = len(data) // 4  # the clip is 4x an image's limit
    response = token_client.post(API_LIST, {"image": [video_upload(data)]}, format="multipart")
    assert response.status_code == 202, response.content
    # An image of that size is still refused at the image limit.
    big_image = (hostile.jpeg() + b"\x00" * len(data))[: len(data)]
    response = token_client.post(
        API_LIST, {"image": [hostile.upload(big_image, "big.jpg")]}, format="multipart"
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_a_video_above_its_limit_is_refused_while_it_streams_in(token_client, settings, bytes_read):
    settings.DETECTION_VIDEO_MAX_BYTES = 100_000
    huge = hv.clip("mp4")[:64] + b"\x00" * (8 * 1024 * 1024)  # starts like an MP4
    response = token_client.post(API_LIST, {"image": [video_upload(huge)]}, format="multipart")
    assert response.status_code == 413
    body = response.json()
    assert body["errors"][0]["code"] == "too_large" and "97.7\xa0KB" in body["detail"]
    assert bytes_read[0] < 500_000, bytes_read[0]  # the rest was never read
    assert Detection.objects.count() == 0 and stored_files(settings) == []


VIDEO_CODES = {
    "empty",
    "too_large",
    "not_a_video",
    "unsupported_format",
    "truncated",
    "no_video",
    "too_long",
    "too_many_pixels",
    "too_many_frames",
    "bad_frame_rate",
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_random_damage_is_refused_clearly_or_still_a_clip_never_an_error(fmt):
    """Bit flips, overwritten header bytes, cuts and insertions (seeded): every result is a
    refusal with one of the video codes, or a clip that still reads; never another exception,
    never slow."""
    import random

    rng = random.Random(f"video-damage-{fmt}")
    base = hv.clip(fmt)
    for _ in range(40):
        data = bytearray(base)
        how = rng.choice(["flip", "header", "cut", "insert"])
        if how == "flip":
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == "header":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(min(len(data), 3000))] = rng.choice(
                    [0, 0xFF, rng.randrange(256)]
                )
        elif how == "cut":
            data = data[: rng.randrange(len(data))]
        else:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 100))
        started = time.perf_counter()
        try:
            clean = video_validate(upload=video_upload(bytes(data), f"c.{fmt}"))
        except ValidationError as exc:
            assert exc.code in VIDEO_CODES, exc.code
        else:
            assert clean.frame_count >= 1 and clean.content
        assert time.perf_counter() - started < 2
