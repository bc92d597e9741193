"""What people and clients see of a video: playback with range requests (page and API), the
result page while it runs and once done (timeline, frame strip, tracks), the type filter of the
history, the API and the CSV export, and the API's video fields. Detections are made directly
(detection/tests/video_records.py): no worker here."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from detection import shared
from detection.models import Detection, clock_label
from detection.shared import RangeNotSatisfiable, byte_range
from detection.tests.factories import DetectionBatchFactory, DetectionFactory
from detection.tests.video_records import clip_bytes, video_detection
from detection.video_timeline import X_MARGIN, timeline_plot, x_percent

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/detections/"


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _video_url(detection) -> str:
    return reverse("detection:video", args=[detection.id])


# --- Range parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", (0, 99)),
        ("bytes=10-", (10, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),  # more than the file: all of it
        ("bytes=990-5000", (990, 999)),  # the end is clipped
        ("BYTES = 5-6", (5, 6)),  # the unit is case-insensitive; spaces tolerated
        ("bytes=7-3", None),  # invalid: ignored, the whole file
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-5", None),  # another unit
        ("bytes=-", None),
        ("bytes=abc", None),
    ],
)
def test_byte_range(header, expected):
    assert byte_range(header, size=1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
def test_byte_range_past_the_end_is_not_satisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, size=1000)


# --- Playback ------------------------------------------------------------------------------


def test_the_whole_video_with_accept_ranges(signed_in, user):
    detection = video_detection(owner=user)
    clip = clip_bytes("mp4")
    response = signed_in.get(_video_url(detection))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(clip))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response["ETag"])
    assert "Content-Range" not in response
    assert _body(response) == clip


def test_a_range_is_206_with_just_those_bytes(signed_in, user):
    detection = video_detection(owner=user)
    clip = clip_bytes("mp4")
    response = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=10-99")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-99/{len(clip)}"
    assert response["Content-Length"] == "90"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert _body(response) == clip[10:100]


def test_open_ended_and_suffix_ranges(signed_in, user):
    detection = video_detection(owner=user)
    clip = clip_bytes("mp4")
    size = len(clip)
    rest = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=100-")
    assert rest.status_code == 206
    assert rest["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert _body(rest) == clip[100:]
    tail = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=-64")
    assert tail.status_code == 206
    assert tail["Content-Range"] == f"bytes {size - 64}-{size - 1}/{size}"
    assert _body(tail) == clip[-64:]


def test_a_range_past_the_end_is_416(signed_in, user):
    detection = video_detection(owner=user)
    size = len(clip_bytes("mp4"))
    response = signed_in.get(_video_url(detection), HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"
    assert response.content == b""


def test_several_ranges_get_the_whole_file(signed_in, user):
    detection = video_detection(owner=user)
    response = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=0-1,5-6")
    assert response.status_code == 200
    assert _body(response) == clip_bytes("mp4")


def test_if_range_resumes_only_the_same_file(signed_in, user):
    detection = video_detection(owner=user)
    etag = signed_in.get(_video_url(detection))["ETag"]
    same = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert same.status_code == 206
    other = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"x"')
    assert other.status_code == 200
    assert _body(other) == clip_bytes("mp4")


def test_a_range_is_streamed_in_chunks(signed_in, user, monkeypatch):
    monkeypatch.setattr(shared, "VIDEO_CHUNK_BYTES", 1000)
    detection = video_detection(owner=user)
    clip = clip_bytes("mp4")
    response = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=5-3504")
    chunks = list(response.streaming_content)
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 500]
    assert b"".join(chunks) == clip[5:3505]


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("webm", "video/webm"), ("mov", "video/quicktime")]
)
def test_each_format_has_its_content_type(signed_in, user, fmt, content_type):
    detection = video_detection(owner=user, fmt=fmt)
    response = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=0-3")
    assert response.status_code == 206
    assert response["Content-Type"] == content_type
    assert _body(response) == clip_bytes(fmt)[:4]


def test_another_users_video_and_an_image_are_404(client, user, other_user):
    detection = video_detection(owner=user)
    image = DetectionFactory(owner=other_user, done=True)
    client.force_login(other_user)
    assert client.get(_video_url(detection)).status_code == 404
    assert client.get(_video_url(detection), HTTP_RANGE="bytes=0-9").status_code == 404
    # An image has no video to play, even for its owner.
    assert client.get(_video_url(image)).status_code == 404


def test_a_missing_stored_file_is_404_not_500(signed_in, user):
    detection = video_detection(owner=user)
    detection.image.storage.delete(detection.image.name)
    assert signed_in.get(_video_url(detection)).status_code == 404


def test_api_video_action_serves_ranges(token_client, user, other_user):
    detection = video_detection(owner=user)
    clip = clip_bytes("mp4")
    url = reverse("api:detection-video", args=[detection.id])
    whole = token_client.get(url)
    assert whole.status_code == 200
    assert whole["Accept-Ranges"] == "bytes"
    assert _body(whole) == clip
    part = token_client.get(url, HTTP_RANGE="bytes=-10")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes {len(clip) - 10}-{len(clip) - 1}/{len(clip)}"
    assert _body(part) == clip[-10:]
    assert token_client.get(url, HTTP_RANGE=f"bytes={len(clip) + 5}-").status_code == 416
    image = DetectionFactory(owner=user, done=True)
    refused = token_client.get(reverse("api:detection-video", args=[image.id]))
    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    theirs = video_detection(owner=other_user)
    assert token_client.get(reverse("api:detection-video", args=[theirs.id])).status_code == 404


def test_ranges_from_the_s3_store(bucket, signed_in, user):
    detection = video_detection(owner=user)  # stored in the (moto) bucket
    clip = clip_bytes("mp4")
    response = signed_in.get(_video_url(detection), HTTP_RANGE="bytes=1000-1999")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 1000-1999/{len(clip)}"
    assert _body(response) == clip[1000:2000]


@pytest.fixture
def bucket(settings, monkeypatch):
    """The default storage in an empty moto bucket, as detection/tests/test_storage_s3.py."""
    import boto3
    from moto import mock_aws

    from detection.tests.test_storage_s3 import BUCKET, REGION, S3_STORAGE

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client(
            "s3",
            region_name=REGION,
            aws_access_key_id="moto-key-id",
            aws_secret_access_key="moto-secret",
        )
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        settings.STORAGES = {**settings.STORAGES, "default": S3_STORAGE}
        yield client


# --- The result page -----------------------------------------------------------------------


def test_a_running_video_shows_its_progress(signed_in, user):
    detection = video_detection(
        owner=user, status=Detection.Status.RUNNING, frames_total=40, frames_done=12
    )
    page = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "Analysing frame 12 of 40" in page
    assert '<progress max="40" value="12"' in page
    assert f'src="{_video_url(detection)}"' in page
    assert 'preload="metadata"' in page and " controls " in page
    assert "js/video-timeline.js" in page
    assert 'id="video-timeline"' not in page
    assert 'style="' not in page  # the pages' CSP allows no inline style

    data = signed_in.get(reverse("detection:status", args=[detection.id])).json()
    assert (data["kind"], data["frames_done"], data["frames_total"]) == ("video", 12, 40)
    assert data["final"] is False
    assert "Analysing frame 12 of 40" in data["html"]


def test_a_pending_video_waits_for_a_worker(signed_in, user):
    detection = video_detection(owner=user)
    page = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "Waiting for a worker" in page
    assert "<progress" not in page


def test_a_done_video_shows_verdict_timeline_strip_and_tracks(signed_in, user):
    detection = video_detection(owner=user, done=True)
    page = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert 'id="detection-label">Fake<' in page
    assert (
        'Probability that the video is fake: <strong>88.0%</strong> (<a href="#track-1">face '
        "track 1</a>)" in page
    )
    assert "the most suspicious face track decides" in page
    assert "Not calibrated on video data." in page
    assert 'style="' not in page

    timeline = page[page.index('id="video-timeline"') :]
    # One line per track, the deciding one drawn heavier.
    lines = re.findall(r'<polyline class="([^"]+)" data-track="(\d)" points="([^"]+)"', timeline)
    assert [track for _c, track, _p in lines] == ["1", "2"]
    assert "timeline-line-deciding" in lines[0][0] and "deciding" not in lines[1][0]
    assert len(lines[0][2].split()) == 4 and len(lines[1][2].split()) == 3
    # A focusable point per frame judged, with its time and a title.
    points = re.findall(r'<circle class="timeline-point[^"]*"[^>]*data-time="([^"]+)"', timeline)
    assert sorted(points, key=float) == ["0", "0.5", "0.5", "1", "1", "1.5", "1.5"]
    assert timeline.count('tabindex="0"') == 2  # one per track in the Tab order
    assert "<title>Track 1 at 0:01.0: 93.0% likely fake</title>" in timeline
    # The uncertain band (40%..60%) and the threshold (50%), P(fake) 1 at the top.
    assert re.search(
        r'<rect class="timeline-band" id="timeline-band" x="0" y="40%" '
        r'width="100%" height="20%"',
        timeline,
    )
    assert 'id="timeline-threshold" x1="0" x2="100%" y1="50%" y2="50%"' in timeline
    assert "Track 1 · Fake · <strong>decides</strong>" in timeline

    # The strip: the two frames kept, most suspicious first, each with its face's box.
    strip = re.findall(r'<button type="button" class="frame-card" data-time="([^"]+)"', page)
    assert strip == ["1", "0.5"]
    frames = re.findall(r'src="(/detections/\d+/frames/\d+\.jpg)"', page)
    assert len(frames) == 2
    # Box [64, 60, 120, 120] of a 320 x 240 frame.
    assert 'x="20%" y="25%" width="37.5%" height="50%"' in page

    rows = re.findall(r'<tr id="track-(\d)"( class="face-row-deciding")?>', page)
    assert rows == [("1", ' class="face-row-deciding"'), ("2", "")]
    assert "0:00.0–0:01.5" in page and "0:00.5–0:01.5" in page

    data = signed_in.get(reverse("detection:status", args=[detection.id])).json()
    assert data["final"] is True
    assert 'id="video-timeline"' in data["html"]


def test_a_video_without_a_face_says_so(signed_in, user):
    detection = video_detection(owner=user, no_face=True)
    page = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert 'id="no-face-found"' in page
    assert "found no face in the 4 frames it looked at in this video" in page
    assert 'id="video-timeline"' not in page and 'id="frame-strip"' not in page


def test_the_image_page_is_unchanged(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)
    page = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert f'src="{reverse("detection:image", args=[detection.id])}"' in page
    assert "<video" not in page and "video-timeline.js" not in page
    data = signed_in.get(reverse("detection:status", args=[detection.id])).json()
    assert (data["kind"], data["frames_done"], data["frames_total"]) == ("image", None, None)


def test_the_frame_picture_is_the_owners_only(client, user, other_user):
    detection = video_detection(owner=user, done=True)
    kept = detection.video_faces.filter(snapshot__isnull=False).first()
    plain = detection.video_faces.filter(snapshot__isnull=True).first()
    client.force_login(user)
    response = client.get(reverse("detection:video-frame", args=[detection.id, kept.id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    # A face without a picture, and a face asked for under another detection, are 404.
    assert (
        client.get(reverse("detection:video-frame", args=[detection.id, plain.id])).status_code
        == 404
    )
    second = video_detection(owner=user)
    assert (
        client.get(reverse("detection:video-frame", args=[second.id, kept.id])).status_code == 404
    )
    client.force_login(other_user)
    assert (
        client.get(reverse("detection:video-frame", args=[detection.id, kept.id])).status_code
        == 404
    )


def test_detail_queries_do_not_grow_with_frames(signed_in, user):
    few = video_detection(owner=user, done=True)
    many_tracks = {
        i: {
            "label": "real",
            "fake_probability": 0.1,
            "points": [(t / 2, 0.1, [10, 10, 40, 40], t < 2) for t in range(8)],
        }
        for i in range(1, 6)
    }
    many = video_detection(owner=user, done=True, tracks=many_tracks)

    def queries(detection) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert (
                signed_in.get(reverse("detection:detail", args=[detection.id])).status_code == 200
            )
        return len(captured)

    queries(few)
    assert queries(many) == queries(few)


def test_a_shared_report_of_a_video_plays_it_with_its_timeline(client, user):
    from detection import services

    detection = video_detection(owner=user, done=True)
    share = services.detection_share_create(user=user, detection_id=detection.id)
    # Anyone with the link, signed out.
    page = client.get(reverse("detection:shared-report", args=[share.token])).content.decode()
    media = reverse("detection:shared-image", args=[share.token])
    assert f'<video id="detection-video" src="{media}"' in page
    assert "Probability that the video is fake" in page
    assert 'id="video-timeline"' in page and 'id="tracks-table"' in page
    assert "/frames/" not in page  # the frames' pictures are the owner's only
    assert 'style="' not in page
    clip = clip_bytes("mp4")
    part = client.get(media, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206
    assert part["Content-Type"] == "video/mp4"
    assert part["Cache-Control"] == "private, no-store"
    assert _body(part) == clip[:100]
    services.detection_share_revoke(user=user, detection_id=detection.id)
    assert client.get(media, HTTP_RANGE="bytes=0-99").status_code == 404


# --- History, batch, CSV -------------------------------------------------------------------


def test_history_lists_both_with_a_type_filter(signed_in, user):
    video = video_detection(owner=user, done=True)
    image = DetectionFactory(owner=user, done=True, original_name="portrait.jpg")
    everything = signed_in.get(reverse("detection:history")).content.decode()
    assert f'id="detection-{video.id}"' in everything and f'id="detection-{image.id}"' in everything
    assert '<label for="id_kind">Type:</label>' in everything
    assert re.search(r'class="row-tag row-tag-video"[^>]*>video · 0:02</span>', everything)

    videos = signed_in.get(reverse("detection:history"), {"kind": "video"}).content.decode()
    assert f'id="detection-{video.id}"' in videos and f'id="detection-{image.id}"' not in videos
    images = signed_in.get(reverse("detection:history"), {"kind": "image"}).content.decode()
    assert f'id="detection-{image.id}"' in images and f'id="detection-{video.id}"' not in images
    assert "row-tag-video" not in images
    # An unknown type is dropped, as other bad filter values are: the whole history.
    anything = signed_in.get(reverse("detection:history"), {"kind": "audio"}).content.decode()
    assert f'id="detection-{image.id}"' in anything and f'id="detection-{video.id}"' in anything


def _csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_body(response).decode())))


def test_csv_export_has_the_kind_last_and_filters_by_it(signed_in, user):
    video = video_detection(owner=user, done=True)
    DetectionFactory(owner=user, done=True)
    response = signed_in.get(reverse("detection:export"))
    header = next(csv.reader(io.StringIO(_body(response).decode())))
    assert header[-2:] == ["face_count", "kind"]
    rows = _csv(signed_in.get(reverse("detection:export"), {"kind": "video"}))
    assert [(r["id"], r["kind"], r["format"]) for r in rows] == [(str(video.id), "video", "MP4")]


def test_a_batch_row_shows_a_videos_progress(signed_in, user):
    batch = DetectionBatchFactory(owner=user)
    video_detection(
        owner=user, batch=batch, status=Detection.Status.RUNNING, frames_total=10, frames_done=3
    )
    DetectionFactory(owner=user, batch=batch, done=True)
    data = signed_in.get(reverse("detection:batch-status", args=[batch.id])).json()
    row = data["rows"][0]["html"]
    assert 'data-state="running-3"' in row
    assert "Analysing frame 3 of 10" in row
    assert "row-tag-video" in row


# --- API -----------------------------------------------------------------------------------

VIDEO_FIELDS = (
    "duration_s",
    "frame_rate",
    "frame_count",
    "video_codec",
    "frames_total",
    "frames_done",
    "progress",
    "deciding_track",
    "aggregate_method",
    "video_url",
)


def test_api_detail_of_a_done_video(token_client, user):
    detection = video_detection(owner=user, done=True)
    data = token_client.get(f"{LIST_URL}{detection.id}/").json()
    assert data["kind"] == "video"
    assert (data["format"], data["width"], data["height"]) == ("MP4", 320, 240)
    assert (data["duration_s"], data["frame_rate"], data["frame_count"]) == (2.0, 10.0, 20)
    assert data["video_codec"] == "h264"
    assert (data["frames_total"], data["frames_done"], data["progress"]) == (4, 4, 1.0)
    assert (data["deciding_track"], data["label"], data["fake_probability"]) == (1, "fake", 0.88)
    assert "not calibrated on video data" in data["aggregate_method"].lower()
    assert data["video_url"].endswith(f"/api/v1/detections/{detection.id}/video/")
    assert data["faces"] == []
    first, second = data["tracks"]
    assert {k: first[k] for k in first if k != "points"} == {
        "index": 1, "fake_probability": 0.88, "label": "fake", "max_probability": 0.93,
        "frames": 4, "start_s": 0.0, "end_s": 1.5,
    }  # fmt: skip
    assert first["points"][2] == {
        "time_s": 1.0,
        "fake_probability": 0.93,
        "box": [64, 60, 120, 120],
    }
    assert [p["time_s"] for p in first["points"]] == [0.0, 0.5, 1.0, 1.5]
    assert [p["time_s"] for p in second["points"]] == [0.5, 1.0, 1.5]


def test_api_progress_of_a_running_video(token_client, user):
    running = video_detection(
        owner=user, status=Detection.Status.RUNNING, frames_total=40, frames_done=12
    )
    data = token_client.get(f"{LIST_URL}{running.id}/").json()
    assert (data["status"], data["frames_done"], data["frames_total"]) == ("running", 12, 40)
    assert data["progress"] == 0.3
    assert data["tracks"] == [] and data["deciding_track"] is None
    pending = video_detection(owner=user)
    data = token_client.get(f"{LIST_URL}{pending.id}/").json()
    assert (data["frames_total"], data["frames_done"], data["progress"]) == (None, 0, None)


def test_api_video_fields_are_null_for_an_image(token_client, user):
    image = DetectionFactory(owner=user, done=True)
    data = token_client.get(f"{LIST_URL}{image.id}/").json()
    assert data["kind"] == "image"
    assert {name: data[name] for name in VIDEO_FIELDS} == dict.fromkeys(VIDEO_FIELDS)
    assert data["tracks"] == []


def test_api_list_filters_by_kind(token_client, user):
    video = video_detection(owner=user, done=True)
    image = DetectionFactory(owner=user, done=True)
    both = token_client.get(LIST_URL).json()["results"]
    assert {(r["id"], r["kind"]) for r in both} == {(video.id, "video"), (image.id, "image")}
    [listed] = token_client.get(LIST_URL, {"kind": "video"}).json()["results"]
    assert listed["id"] == video.id and len(listed["tracks"]) == 2
    [listed] = token_client.get(LIST_URL, {"kind": "image"}).json()["results"]
    assert listed["id"] == image.id
    assert len(token_client.get(LIST_URL, {"kind": ""}).json()["results"]) == 2
    refused = token_client.get(LIST_URL, {"kind": "audio"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "kind"


def test_api_list_queries_do_not_grow_with_videos(token_client, user):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert token_client.get(LIST_URL).status_code == 200
        return len(captured)

    video_detection(owner=user, done=True)
    DetectionFactory(owner=user, done=True)
    queries()  # the token's first use of the minute is recorded once
    few = queries()
    for _ in range(3):
        video_detection(owner=user, done=True)
    assert queries() == few


def test_schema_documents_the_video_fields_action_and_filter():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(public=True)
    components = schema["components"]["schemas"]
    detection = components["Detection"]["properties"]
    for name in (*VIDEO_FIELDS, "kind", "tracks"):
        assert name in detection, name
    assert detection["progress"]["nullable"] is True
    assert detection["tracks"]["items"] == {"$ref": "#/components/schemas/VideoTrack"}
    track = components["VideoTrack"]["properties"]
    assert set(track) == {
        "index", "fake_probability", "label", "max_probability", "frames", "start_s", "end_s",
        "points",
    }  # fmt: skip
    assert set(components["VideoPoint"]["properties"]) == {"time_s", "fake_probability", "box"}
    video = schema["paths"]["/api/v1/detections/{id}/video/"]["get"]
    assert {"200", "206", "416", "404"} <= set(video["responses"])
    assert "video/webm" in video["responses"]["206"]["content"]
    assert any(p["name"] == "Range" and p["in"] == "header" for p in video["parameters"])
    [kind] = [
        p for p in schema["paths"]["/api/v1/detections/"]["get"]["parameters"]
        if p["name"] == "kind"
    ]  # fmt: skip
    assert sorted(kind["schema"]["enum"]) == ["", "image", "private", "video"]


# --- The timeline's numbers ----------------------------------------------------------------


def test_clock_labels():
    assert clock_label(0) == "0:00"
    assert clock_label(7.4) == "0:07"
    assert clock_label(62) == "1:02"
    assert clock_label(3725) == "1:02:05"
    assert clock_label(3.46, tenths=True) == "0:03.5"
    assert clock_label(59.96, tenths=True) == "1:00.0"


def test_timeline_geometry(user):
    detection = video_detection(owner=user, done=True)
    tracks = list(detection.tracks.prefetch_related("faces"))
    plot = timeline_plot(detection=detection, tracks=tracks)
    assert x_percent(0, 2) == X_MARGIN and x_percent(2, 2) == 100 - X_MARGIN
    first = plot.series[0]
    # t = 1 s of 2 s is the middle; P(fake) 0.93 is 7% from the top.
    assert (first.points[2].x, first.points[2].y) == ("50", "7")
    assert first.polyline.split()[2] == "500,70"
    assert [t.label for t in plot.ticks] == ["0 s", "0.5 s", "1 s", "1.5 s", "2 s"]
    assert (plot.ticks[0].anchor, plot.ticks[-1].anchor) == ("start", "end")
    assert plot.summary.startswith("P(fake) of each face track over the 0:02 of the video")
    # A longer clip is labelled in minutes and seconds, at most MAX_TICKS labels.
    detection.duration_s = 90.0
    long = timeline_plot(detection=detection, tracks=tracks)
    assert [t.label for t in long.ticks] == ["0:00", "0:30", "1:00", "1:30"]
    assert long.series[0].points[2].x == "3.067"  # 1 s of 90 s, after the 2% margin


def test_a_running_video_shows_its_timeline_filling_in(client, user):
    from rest_framework.test import APIClient

    detection = video_detection(
        owner=user,
        status=Detection.Status.RUNNING,
        frames_total=6,
        frames_done=4,
        progress_points=[[0.25, 0.31], [0.75, None], [1.25, 0.62], [1.75, 0.58]],
    )
    client.force_login(user)
    html = client.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert 'id="timeline-so-far"' in html
    assert html.count('<circle class="timeline-point') == 3  # a frame without a face: none
    assert 'data-time="1.25"' in html
    assert 'id="timeline-band"' not in html  # the band comes with the verdict
    assert "Analysing frame 4 of 6" in html
    status = client.get(reverse("detection:status", args=[detection.id])).json()
    assert status["final"] is False and 'id="timeline-so-far"' in status["html"]

    api = APIClient()
    api.force_authenticate(user)
    body = api.get(reverse("api:detection-detail", args=[detection.id])).json()
    assert body["frames_so_far"] == [
        {"time_s": 0.25, "fake_probability": 0.31},
        {"time_s": 0.75, "fake_probability": None},
        {"time_s": 1.25, "fake_probability": 0.62},
        {"time_s": 1.75, "fake_probability": 0.58},
    ]


def test_a_done_video_draws_its_tracks_not_the_line_so_far(client, user):
    detection = video_detection(owner=user, done=True, progress_points=[[0.25, 0.9]])
    client.force_login(user)
    html = client.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert 'id="timeline-so-far"' not in html and 'id="timeline-band"' in html
