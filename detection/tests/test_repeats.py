"""Repeats (the same bytes again reuse the verdict), near-duplicates (linked), duplicate files
within one upload (analysed once), re-runs and thumbnails: services, pages and API."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from detection import services
from detection.models import Detection, DetectionFace
from detection.tests.helpers import heatmap_png_bytes, upload
from detection.uploads.fingerprint import phash_distance
from detection.worker import services as worker_services

pytestmark = pytest.mark.django_db

MODEL = "deepfake-test-20261202-abcdef012345"


def pattern_jpeg(seed: int, *, size=(96, 72), quality=92) -> bytes:
    """A picture with coarse structure (random 8x6 blocks, scaled up): unlike a flat colour, two
    seeds give unrelated perceptual hashes."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(blocks).resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def current_model(monkeypatch) -> str:
    monkeypatch.setattr("detection.services.model_version_current", lambda: MODEL)
    return MODEL


def _finish(detection: Detection, *, model=MODEL, p=0.91) -> Detection:
    """Give a row the verdict a worker would: done, one fake face with a heatmap."""
    Detection.objects.filter(id=detection.id).update(
        status=Detection.Status.DONE,
        label=Detection.Label.FAKE,
        fake_probability=p,
        threshold=0.5,
        uncertain_low=0.4,
        uncertain_high=0.6,
        model_name="deepfake-test",
        model_version=model,
        face_box=[4, 3, 20, 24],
        deciding_face=1,
        heatmap_status=Detection.HeatmapStatus.DONE,
    )
    DetectionFace.objects.create(
        detection=detection,
        index=1,
        box=[4, 3, 20, 24],
        fake_probability=p,
        label="fake",
        detector_confidence=0.99,
        heatmap=b"\x89PNG-heatmap",
        heatmap_box=[0, 0, 40, 40],
    )
    detection.refresh_from_db()
    return detection


def _create(user, *files):
    return services.detection_create_many(user=user, uploads=list(files))


# --- the same bytes again -------------------------------------------------------------------


def test_same_bytes_same_model_reuse_the_verdict_at_once(
    user, enqueued, current_model, django_capture_on_commit_callbacks
):
    data = pattern_jpeg(1)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = _create(user, upload("first.jpg", data))
    _finish(first)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        [again] = _create(user, upload("again.jpg", data))
    again.refresh_from_db()
    assert enqueued == []  # no model run
    assert again.status == Detection.Status.DONE
    assert again.reused_from_id == first.id
    assert (again.label, again.fake_probability, again.model_version) == ("fake", 0.91, MODEL)
    assert (again.uncertain_low, again.uncertain_high, again.threshold) == (0.4, 0.6, 0.5)
    [face] = again.faces.all()
    assert (face.index, face.box, face.fake_probability) == (1, [4, 3, 20, 24], 0.91)
    assert bytes(face.heatmap) == b"\x89PNG-heatmap" and face.heatmap_box == [0, 0, 40, 40]
    # Its own stored file: deleting the first check leaves this one whole.
    assert again.image.name != first.image.name
    first.delete()
    again.refresh_from_db()
    assert again.reused_from_id is None and again.label == "fake"


def test_a_copy_points_to_the_first_check_not_to_another_copy(
    user, current_model, django_capture_on_commit_callbacks
):
    data = pattern_jpeg(2)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    [second] = _create(user, upload("b.jpg", data))
    [third] = _create(user, upload("c.jpg", data))
    assert second.reused_from_id == first.id
    assert third.reused_from_id == first.id


def test_another_model_or_another_user_or_no_verdict_is_no_repeat(
    user, other_user, enqueued, current_model, django_capture_on_commit_callbacks
):
    data = pattern_jpeg(3)
    with django_capture_on_commit_callbacks(execute=True):
        [old_model] = _create(user, upload("old.jpg", data))
        [theirs] = _create(other_user, upload("theirs.jpg", pattern_jpeg(4)))
        [pending] = _create(user, upload("pending.jpg", pattern_jpeg(5)))
    _finish(old_model, model="deepfake-old-20250101-000000000000")
    _finish(theirs)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        made = _create(
            user,
            upload("1.jpg", data),  # checked before, by another model
            upload("2.jpg", pattern_jpeg(4)),  # checked by another user
            upload("3.jpg", pattern_jpeg(5)),  # checked, but no verdict yet
        )
    assert [d.reused_from_id for d in made] == [None, None, None]
    assert [d.status for d in made] == ["pending"] * 3
    assert sorted(enqueued) == sorted(d.id for d in made)
    # The exact image checked by another model is linked as very similar; never another user's.
    assert made[0].similar_to_id == old_model.id
    assert made[1].similar_to_id is None
    assert made[2].similar_to_id == pending.id


def test_no_known_model_version_means_no_reuse(
    user, enqueued, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("detection.services.model_version_current", lambda: None)
    data = pattern_jpeg(6)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    [again] = _create(user, upload("a.jpg", data))
    assert again.reused_from_id is None and again.status == "pending"


# --- near-duplicates ------------------------------------------------------------------------


def test_a_resaved_copy_is_linked_to_the_most_recent_similar_check(user, current_model):
    original = pattern_jpeg(7, quality=95)
    [older] = _create(user, upload("older.jpg", original))
    [newer] = _create(user, upload("newer.png", _resaved(original, "PNG")))
    [unrelated] = _create(user, upload("other.jpg", pattern_jpeg(8)))
    # A smaller, recompressed copy: other bytes, nearly the same picture.
    [copy] = _create(user, upload("copy.jpg", _resaved(original, "JPEG", scale=0.5)))
    assert unrelated.similar_to_id is None
    assert newer.similar_to_id == older.id
    assert copy.similar_to_id == newer.id  # the most recent of the two
    assert copy.reused_from_id is None  # other bytes: run, not reused
    assert phash_distance(copy.phash, older.phash) <= 5
    assert phash_distance(unrelated.phash, older.phash) > 5


def _resaved(data: bytes, fmt: str, scale: float = 1.0) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    if scale != 1.0:
        img = img.resize((int(img.width * scale), int(img.height * scale)))
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 70} if fmt == "JPEG" else {}))
    return out.getvalue()


# --- duplicates within one upload -----------------------------------------------------------


def test_duplicate_files_in_one_upload_are_analysed_once_and_reported(
    user, enqueued, current_model, django_capture_on_commit_callbacks
):
    data = pattern_jpeg(9)
    with django_capture_on_commit_callbacks(execute=True):
        made = _create(
            user,
            upload("a.jpg", data),
            upload("b.jpg", pattern_jpeg(10)),
            upload("a copy.jpg", data),
        )
    assert [d.original_name for d in made] == ["a.jpg", "b.jpg"]
    assert [(x.name, x.same_as) for x in made.duplicates] == [("a copy.jpg", "a.jpg")]
    assert len(enqueued) == 2
    assert Detection.objects.filter(owner=user).count() == 2


def test_two_copies_of_one_file_make_one_detection_without_a_batch(user, current_model):
    data = pattern_jpeg(11)
    made = _create(user, upload("x.jpg", data), upload("y.jpg", data))
    assert len(made) == 1 and made[0].batch_id is None
    assert made.duplicates[0].name == "y.jpg"


def test_a_refused_file_still_refuses_the_whole_upload(user, current_model):
    data = pattern_jpeg(12)
    with pytest.raises(ValidationError):
        _create(user, upload("x.jpg", data), upload("x2.jpg", data), upload("bad.jpg", b"nope"))
    assert not Detection.objects.exists()


# --- run again ------------------------------------------------------------------------------


def test_rerun_a_reused_verdict_queues_the_model(
    user, enqueued, current_model, django_capture_on_commit_callbacks
):
    data = pattern_jpeg(13)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    [again] = _create(user, upload("a.jpg", data))
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        rerun = services.detection_rerun(user=user, detection_id=again.id)
    assert enqueued == [again.id]
    assert rerun.status == "pending" and rerun.reused_from_id is None
    assert rerun.label == "" and rerun.fake_probability is None
    assert not rerun.faces.exists()
    first.refresh_from_db()
    assert first.label == "fake" and first.faces.count() == 1  # the first check is untouched


def test_rerun_refuses_a_verdict_that_ran_and_others_rows(user, other_user, current_model):
    [mine] = _create(user, upload("a.jpg", pattern_jpeg(14)))
    _finish(mine)
    with pytest.raises(ValidationError):
        services.detection_rerun(user=user, detection_id=mine.id)
    with pytest.raises(Http404):
        services.detection_rerun(user=other_user, detection_id=mine.id)


def test_rerun_retries_a_failed_detection(user, enqueued, django_capture_on_commit_callbacks):
    [row] = _create(user, upload("a.jpg", pattern_jpeg(15)))
    Detection.objects.filter(id=row.id).update(status="failed", error="boom", attempts=3)
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        rerun = services.detection_rerun(user=user, detection_id=row.id)
    assert (rerun.status, rerun.error, rerun.attempts) == ("pending", "", 0)
    assert enqueued == [row.id]


# --- thumbnails -----------------------------------------------------------------------------


def test_upload_makes_a_small_thumbnail_served_to_its_owner_only(
    user, other_user, client, password
):
    big = pattern_jpeg(16, size=(1600, 1200))
    [row] = _create(user, upload("big.jpg", big))
    client.login(username=user.username, password=password)
    response = client.get(reverse("detection:thumbnail", args=[row.id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert "private" in response["Cache-Control"]
    thumb = Image.open(io.BytesIO(response.content))
    assert max(thumb.size) == 160 and thumb.size == (160, 120)
    assert len(response.content) < len(big) / 10
    client.logout()
    client.login(username=other_user.username, password=password)
    assert client.get(reverse("detection:thumbnail", args=[row.id])).status_code == 404


def test_an_older_row_gets_its_thumbnail_and_hash_on_first_request(user, client, password):
    [row] = _create(user, upload("old.jpg", pattern_jpeg(17, size=(400, 300))))
    Detection.objects.filter(id=row.id).update(thumbnail=None, phash=None)
    client.login(username=user.username, password=password)
    response = client.get(reverse("detection:thumbnail", args=[row.id]))
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (160, 120)
    row.refresh_from_db()
    assert bytes(row.thumbnail) == response.content and row.phash is not None


def test_history_lists_thumbnails_not_full_images(user, client, password):
    [row] = _create(user, upload("a.jpg", pattern_jpeg(18)))
    client.login(username=user.username, password=password)
    html = client.get(reverse("detection:history")).content.decode()
    assert reverse("detection:thumbnail", args=[row.id]) in html
    assert reverse("detection:image", args=[row.id]) not in html


# --- pages and API --------------------------------------------------------------------------


def test_the_page_says_when_the_image_was_checked_before(user, client, password, current_model):
    data = pattern_jpeg(19)
    [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    client.login(username=user.username, password=password)
    response = client.post(
        reverse("detection:upload"), {"images": [upload("again.jpg", data)]}, follow=True
    )
    html = response.content.decode()
    [again] = Detection.objects.filter(reused_from=first)
    assert response.redirect_chain[-1][0] == reverse("detection:detail", args=[again.id])
    assert "You checked this image on" in html
    assert reverse("detection:detail", args=[first.id]) in html
    assert reverse("detection:rerun", args=[again.id]) in html
    # The first check's own page offers no re-run: it ran.
    first_page = client.get(reverse("detection:detail", args=[first.id])).content.decode()
    assert reverse("detection:rerun", args=[first.id]) not in first_page

    response = client.post(reverse("detection:rerun", args=[again.id]), follow=True)
    assert "queued to be analysed again" in response.content.decode()
    again.refresh_from_db()
    assert again.status == "pending"


def test_the_page_links_a_very_similar_earlier_check(user, client, password, current_model):
    original = pattern_jpeg(20)
    [older] = _create(user, upload("older.jpg", original))
    _finish(older)
    [newer] = _create(user, upload("newer.png", _resaved(original, "PNG")))
    client.login(username=user.username, password=password)
    html = client.get(reverse("detection:detail", args=[newer.id])).content.decode()
    assert "A very similar image was checked on" in html
    assert reverse("detection:detail", args=[older.id]) in html
    assert "verdict fake (91.0% likely fake)" in html


def test_upload_page_reports_duplicate_files(user, client, password, current_model):
    data = pattern_jpeg(21)
    client.login(username=user.username, password=password)
    response = client.post(
        reverse("detection:upload"),
        {"images": [upload("one.jpg", data), upload("two.jpg", data)]},
        follow=True,
    )
    html = response.content.decode()
    assert "“two.jpg” is the same file as “one.jpg”, so it was analysed once." in html
    assert Detection.objects.filter(owner=user).count() == 1


def test_api_reports_duplicates_repeats_and_reruns(token_client, user, current_model):
    data = pattern_jpeg(22)
    url = reverse("api:detection-list")
    response = token_client.post(
        url, {"image": [upload("a.jpg", data), upload("b.jpg", data)]}, format="multipart"
    )
    assert response.status_code == 202
    body = response.json()
    assert body["duplicates"] == [{"name": "b.jpg", "same_as": "a.jpg"}]
    first = Detection.objects.get(id=body["detections"][0]["id"])
    _finish(first)

    response = token_client.post(url, {"image": [upload("c.jpg", data)]}, format="multipart")
    [item] = response.json()["detections"]
    assert item["status"] == "done"  # at once
    detail = token_client.get(item["url"]).json()
    assert detail["reused_from"]["id"] == first.id
    assert detail["reused_from"]["label"] == "fake"
    assert detail["similar_to"] is None
    assert detail["thumbnail_url"].endswith(f"/detections/{item['id']}/thumbnail/")
    thumb = token_client.get(detail["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"

    response = token_client.post(f"{item['url']}rerun/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    response = token_client.post(f"{item['url']}rerun/")  # pending now: not rerunnable
    assert response.status_code == 409
    assert response.json()["code"] == "not_rerunnable"


def test_history_marks_a_repeat(user, client, password, current_model):
    data = pattern_jpeg(23)
    [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    [again] = _create(user, upload("b.jpg", data))
    client.login(username=user.username, password=password)
    html = client.get(reverse("detection:history")).content.decode()
    row = html[html.index(f'id="detection-{again.id}"') :]
    row = row[: row.index("</tr>")]
    assert ">repeat</span>" in row
    first_row = html[html.index(f'id="detection-{first.id}"') :]
    assert ">repeat</span>" not in first_row[: first_row.index("</tr>")]


def test_a_repeat_of_a_check_whose_heatmaps_are_pending_shows_them_once_made(
    token_client, user, client, password, current_model
):
    from ml.inference import FaceHeatmap  # the worker's type; web tests import ml lazily

    data = pattern_jpeg(24)
    [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    # The verdict is out, its heatmaps still being made by run "t1" (detection.worker).
    Detection.objects.filter(id=first.id).update(
        claim_token="t1", started_at=timezone.now(), heatmap_status="pending"
    )
    DetectionFace.objects.filter(detection=first).update(heatmap=None, heatmap_box=None)

    response = token_client.post(
        reverse("api:detection-list"), {"image": [upload("b.jpg", data)]}, format="multipart"
    )
    [item] = response.json()["detections"]
    detail = token_client.get(item["url"]).json()
    assert detail["reused_from"]["id"] == first.id
    assert detail["heatmap_status"] == "pending"  # was "failed": never to come
    assert detail["faces"][0]["heatmap_url"] is None
    client.login(username=user.username, password=password)
    page = client.get(reverse("detection:detail", args=[item["id"]])).content.decode()
    assert "Making the heatmap" in page

    assert worker_services._heatmaps_save(
        detection_id=first.id,
        claim_token="t1",
        heatmaps=[FaceHeatmap(png=heatmap_png_bytes(), region=(0, 0, 40, 40))],
    )
    detail = token_client.get(item["url"]).json()
    assert detail["heatmap_status"] == "done"
    [face] = detail["faces"]
    assert face["heatmap_box"] == [0, 0, 40, 40]
    png = token_client.get(face["heatmap_url"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert b"".join(png) == heatmap_png_bytes()
    page = client.get(reverse("detection:detail", args=[item["id"]])).content.decode()
    assert reverse("detection:face-heatmap", args=[item["id"], 1]) in page


def test_a_repeat_of_heatmaps_left_pending_past_the_time_limit_reads_failed(
    user, settings, current_model
):
    data = pattern_jpeg(25)
    [first] = _create(user, upload("a.jpg", data))
    _finish(first)
    started = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    Detection.objects.filter(id=first.id).update(started_at=started, heatmap_status="pending")
    [again] = _create(user, upload("b.jpg", data))
    again.refresh_from_db()
    assert again.reused_from_id == first.id
    assert again.heatmap_status == again.heatmap_state == "failed"  # its worker is gone
