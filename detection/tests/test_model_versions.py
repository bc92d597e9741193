"""Model versions: the public model card pages, their plots, the card link of each verdict, and
re-checking a past detection with the current model, shown side by side."""

from __future__ import annotations

import json
import os

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import Http404
from django.urls import reverse

from detection import model_cards, services
from detection.models import Detection
from detection.tests.factories import (
    THREE_FACES,
    DetectionFactory,
    WorkerHeartbeatFactory,
    detection_with_three_faces,
)
from detection.tests.helpers import image_bytes

pytestmark = pytest.mark.django_db

OLD = "fake-model-20260101-abcdef123456"  # the factory's verdicts
NEW = "fake-model-v2-20270101-fedcba654321"


def _shipped(folder: str) -> model_cards.ModelCard:
    return next(c for c in model_cards.model_cards_list() if c.shipped_as == folder)


@pytest.fixture
def current(monkeypatch):
    """Set the version of the model that serves new verdicts (None: it cannot be told)."""

    def _set(version: str | None) -> None:
        monkeypatch.setattr("detection.model_cards.model_version_current", lambda: version)
        monkeypatch.setattr("detection.services.model_version_current", lambda: version)

    _set(NEW)
    return _set


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _model_dir(root, *, version: str, card_md: str = "# Model card: test\n") -> os.PathLike:
    folder = root / "served-model"
    (folder / "plots").mkdir(parents=True)
    card = {"name": "served", "version": version, "created": "2027-01-01T00:00:00+00:00",
            "architecture": "tiny", "test_metrics": {"roc_auc": 0.75, "accuracy": 0.7}}
    (folder / "card.json").write_text(json.dumps(card))
    (folder / "card.md").write_text(card_md)
    (folder / "plots" / "roc_curve.png").write_bytes(image_bytes("PNG"))
    return folder


# --- the model card pages ----------------------------------------------------------------


def test_model_list_is_public_and_says_which_version_serves(client):
    default, v1 = _shipped("default"), _shipped("v1")
    response = client.get(reverse("detection:model-list"))
    assert response.status_code == 200
    html = response.content.decode()
    for card in (default, v1):
        assert reverse("detection:model-card", args=[card.version]) in html
    # No worker reports in: the configured folder (the shipped default) serves.
    assert model_cards.model_version_current() == default.version
    assert f'class="model-current" data-version="{default.version}"' in html
    assert html.count("Gives new verdicts") == 1
    assert "ml/models/v1" in html


def test_model_list_follows_what_a_live_worker_reports(client, monkeypatch, settings):
    settings.DETECTION_MODEL_VERSION_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(model_cards, "_clock", lambda: clock[0])
    v1 = _shipped("v1")
    WorkerHeartbeatFactory(model_version=v1.version)
    html = client.get(reverse("detection:model-list")).content.decode()
    assert f'class="model-current" data-version="{v1.version}"' in html

    WorkerHeartbeatFactory(pid=7, model_version="unknown-build-1")
    clock[0] += 4.9  # the answer is kept for the cache time...
    html = client.get(reverse("detection:model-list")).content.decode()
    assert f'class="model-current" data-version="{v1.version}"' in html
    clock[0] += 0.1  # ...and read again once it has passed
    html = client.get(reverse("detection:model-list")).content.decode()
    assert 'id="current-not-installed"' in html and "unknown-build-1" in html


def test_model_version_is_read_once_per_cache_time(settings, monkeypatch,
                                                   django_assert_num_queries):
    settings.DETECTION_MODEL_VERSION_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(model_cards, "_clock", lambda: clock[0])
    WorkerHeartbeatFactory(model_version="m-1")
    with django_assert_num_queries(1):
        assert [model_cards.model_version_current() for _ in range(3)] == ["m-1"] * 3
    # A heartbeat written in this process is seen at once (a worker's own answer).
    from detection.worker.heartbeat import worker_heartbeat_beat

    worker_heartbeat_beat(model_name="m", model_version="m-2")
    with django_assert_num_queries(1):
        assert model_cards.model_version_current() == "m-2"
    # Another folder configured (ML_MODEL_DIR) is never answered from the cache.
    settings.ML_MODEL_DIR = "/nonexistent"
    with django_assert_num_queries(1):
        model_cards.model_version_current()
    # 0 turns the cache off.
    settings.DETECTION_MODEL_VERSION_CACHE_SECONDS = 0
    with django_assert_num_queries(2):
        model_cards.model_version_current()
        model_cards.model_version_current()


def test_model_card_page_renders_the_card_markdown(client):
    default = _shipped("default")
    response = client.get(reverse("detection:model-card", args=[default.version]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1" in html and "Model card: deepfake-nprnet-v2" in html
    assert "<table>" in html and '<td align="right">' in html  # tables, no style attribute
    assert "text-align: right" not in html
    assert 'href="plots/roc_curve.png"' in html  # relative to /models/<version>/
    assert reverse("detection:model-card-plot", args=[default.version, "roc_curve.png"]) in html
    assert "Gives new verdicts" in html
    v1_html = client.get(reverse("detection:model-card", args=[_shipped("v1").version]))
    v1_html = v1_html.content.decode()
    assert "Gives new verdicts" not in v1_html
    assert 'id="not-current"' in v1_html
    assert reverse("detection:model-card", args=[default.version]) in v1_html


def test_model_card_plot_and_json_are_served_from_the_model_folder(client):
    default = _shipped("default")
    response = client.get(reverse("detection:model-card-plot", args=[default.version,
                                                                     "roc_curve.png"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == (
        default.folder / "plots" / "roc_curve.png"
    ).read_bytes()
    # The relative link in card.md resolves to the same view.
    response = client.get(f"/models/{default.version}/plots/roc_curve.png")
    assert response.status_code == 200

    response = client.get(reverse("detection:model-card-json", args=[default.version]))
    assert response.status_code == 200
    assert json.loads(b"".join(response.streaming_content))["version"] == default.version


@pytest.mark.parametrize(
    "name",
    ["card.json", "model.keras", "..png", "missing.png", ".hidden.png", "..%2Fcard.json",
     "%2E%2E%2Fcard.json", "roc_curve.png%00"],
)  # fmt: skip
def test_model_card_plot_serves_nothing_else(client, name):
    default = _shipped("default")
    response = client.get(f"/models/{default.version}/plots/{name}")
    assert response.status_code == 404


def test_model_card_plot_path_stays_inside_plots(tmp_path, settings):
    folder = _model_dir(tmp_path, version="served-1")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    (folder / "plots" / "link.png").symlink_to(secret)
    settings.ML_MODEL_DIR = str(folder)
    assert model_cards.model_card_plot_path(version="served-1", name="roc_curve.png") is not None
    for name in ("link.png", "../card.json", "../plots/roc_curve.png", "/etc/passwd"):
        assert model_cards.model_card_plot_path(version="served-1", name=name) is None
    assert model_cards.model_card_plot_path(version="nope", name="roc_curve.png") is None


def test_unknown_version_is_a_404(client):
    assert client.get(reverse("detection:model-card", args=["no-such-model"])).status_code == 404
    assert client.get("/models/no-such-model/card.json").status_code == 404


def test_a_served_model_elsewhere_is_listed_and_its_card_is_made_safe(client, settings, tmp_path):
    card_md = (
        "# Model card: served\n\n<script>alert(1)</script>\n\n"
        "[bad](javascript:alert(1)) [good](https://example.org/x) [plot](plots/roc_curve.png)\n\n"
        "| a | b |\n|---|--:|\n| 1 | 2 |\n"
    )
    settings.ML_MODEL_DIR = str(_model_dir(tmp_path, version="served-1", card_md=card_md))
    cards = model_cards.model_cards_list()
    assert cards[0].version == "served-1" and cards[0].configured and not cards[0].shipped_as
    assert {c.shipped_as for c in cards[1:]} >= {"default", "v1"}

    html = client.get(reverse("detection:model-list")).content.decode()
    assert 'class="model-current" data-version="served-1"' in html

    html = client.get(reverse("detection:model-card", args=["served-1"])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert 'href="https://example.org/x"' in html
    assert '<td align="right">2</td>' in html


# --- the verdict's link to its card ------------------------------------------------------


def test_result_page_links_the_verdict_to_its_model_card(signed_in, user):
    default = _shipped("default")
    detection = DetectionFactory(owner=user, done=True, model_version=default.version)
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    card_url = reverse("detection:model-card", args=[default.version])
    assert f'<a href="{card_url}" id="model-card-link"' in html
    assert "No model card is installed for this version." not in html


def test_result_page_says_when_a_verdicts_version_has_no_card(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)  # the factory's made-up version
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "No model card is installed for this version." in html
    assert 'id="model-card-link"' not in html


# --- re-check: the service ---------------------------------------------------------------


def _recheck(user, detection):
    return services.detection_recheck(user=user, detection_id=detection.id)


def test_recheck_copies_the_image_and_the_intake_facts(
    user, current, enqueued, django_capture_on_commit_callbacks
):
    old = DetectionFactory(
        owner=user, done=True, sha256="cd" * 32, removed_metadata=["EXIF"],
        provenance={"exif": {"make": "TestCam"}}, phash=-1234567, thumbnail=b"webp-bytes",
        original_name="holiday.jpg",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        new, created = _recheck(user, old)
    assert created is True
    assert new.id != old.id and new.owner == user
    assert new.rechecked_from_id == old.id
    assert new.status == Detection.Status.PENDING and new.label == "" and not new.model_version
    assert enqueued == [new.id]
    # A new file with the same bytes.
    assert new.image.name != old.image.name
    with default_storage.open(old.image.name, "rb") as a, default_storage.open(
        new.image.name, "rb"
    ) as b:
        assert a.read() == b.read()
    fresh = Detection.objects.get(id=new.id)
    for field in ("sha256", "width", "height", "format", "byte_size", "removed_metadata",
                  "provenance", "phash", "original_name"):
        assert getattr(fresh, field) == getattr(old, field), field
    assert bytes(fresh.thumbnail) == b"webp-bytes"
    assert fresh.batch_id is None


def test_deleting_either_row_keeps_the_others_image(
    user, current, django_capture_on_commit_callbacks
):
    old = DetectionFactory(owner=user, done=True)
    new, _ = _recheck(user, old)
    with django_capture_on_commit_callbacks(execute=True):
        services.detection_delete(user=user, detection_id=old.id)
    assert not default_storage.exists(old.image.name)
    assert default_storage.exists(new.image.name)
    new.refresh_from_db()
    assert new.rechecked_from_id is None  # the earlier one is gone; the re-check stays

    again, _ = _recheck(user, DetectionFactory(owner=user, done=True))
    earlier = again.rechecked_from
    with django_capture_on_commit_callbacks(execute=True):
        services.detection_delete(user=user, detection_id=again.id)
    assert default_storage.exists(earlier.image.name)


def test_recheck_twice_gives_the_same_recheck(user, current, enqueued,
                                              django_capture_on_commit_callbacks):
    old = DetectionFactory(owner=user, done=True)
    with django_capture_on_commit_callbacks(execute=True):
        first, created = _recheck(user, old)
        second, created_again = _recheck(user, old)
    assert created and not created_again
    assert second.id == first.id
    assert enqueued == [first.id]
    # Done with the current model: still that one.
    Detection.objects.filter(id=first.id).update(
        status="done", label="real", fake_probability=0.1, model_version=NEW,
        uncertain_low=0.4, uncertain_high=0.6,
    )  # fmt: skip
    assert _recheck(user, old)[0].id == first.id
    # A newer model again: a new re-check.
    current("fake-model-v3")
    third, created = _recheck(user, old)
    assert created and third.id not in (first.id,)


@pytest.mark.parametrize(
    ("fields", "version", "code"),
    [
        ({}, NEW, "not_done"),
        ({"done": True, "model_version": NEW}, NEW, "already_current"),
        ({"done": True}, None, "model_unknown"),
    ],
)
def test_recheck_refusals(user, current, enqueued, fields, version, code):
    current(version)
    detection = DetectionFactory(owner=user, **fields)
    with pytest.raises(ValidationError) as caught:
        _recheck(user, detection)
    assert caught.value.error_list[0].code == code
    assert Detection.objects.count() == 1
    assert enqueued == []


def test_recheck_of_a_lost_image_says_so_and_leaves_nothing(user, current):
    detection = DetectionFactory(owner=user, done=True)
    default_storage.delete(detection.image.name)
    with pytest.raises(ValidationError, match="cannot be read"):
        _recheck(user, detection)
    assert Detection.objects.count() == 1


def test_recheck_of_another_users_detection_is_a_404(user, other_user, current):
    detection = DetectionFactory(owner=user, done=True)
    with pytest.raises(Http404):
        _recheck(other_user, detection)
    assert Detection.objects.count() == 1


# --- re-check: the pages -----------------------------------------------------------------


def test_recheck_button_only_when_the_current_model_differs(signed_in, user, current):
    detection = DetectionFactory(owner=user, done=True)
    url = reverse("detection:detail", args=[detection.id])
    html = signed_in.get(url).content.decode()
    assert 'id="recheck-button"' in html
    assert f"Re-check with the current model <code class=\"version\">{NEW}</code>" in html

    current(OLD)
    assert 'id="recheck-button"' not in signed_in.get(url).content.decode()
    current(None)
    assert 'id="recheck-button"' not in signed_in.get(url).content.decode()
    current(NEW)
    pending = DetectionFactory(owner=user)
    html = signed_in.get(reverse("detection:detail", args=[pending.id])).content.decode()
    assert 'id="recheck-button"' not in html


def test_recheck_from_the_page_then_both_verdicts_side_by_side(
    signed_in, user, current, enqueued, django_capture_on_commit_callbacks
):
    old = detection_with_three_faces(owner=user)  # face 2 decides, 0.83
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("detection:recheck", args=[old.id]))
    new = Detection.objects.get(rechecked_from=old)
    assert response.status_code == 302
    assert response["Location"] == reverse("detection:detail", args=[new.id])
    assert enqueued == [new.id]

    # While it waits: the earlier verdict is there, the new one is pending.
    html = signed_in.get(response["Location"]).content.decode()
    assert 'id="recheck-compare"' in html
    assert OLD in html
    assert 'id="recheck-new-label"><span class="badge badge-pending">Pending' in html

    # The worker's verdict: the faces found again, in another order, with new probabilities.
    Detection.objects.filter(id=new.id).update(
        status="done", label="real", fake_probability=0.3, model_name="fake-model-v2",
        model_version=NEW, deciding_face=1, face_box=[32, 24, 16, 12],
        uncertain_low=0.4, uncertain_high=0.6,
    )  # fmt: skip
    from detection.tests.factories import DetectionFaceFactory

    DetectionFaceFactory(detection=new, index=1, box=THREE_FACES[1]["box"],
                         fake_probability=0.3, label="real")
    DetectionFaceFactory(detection=new, index=2, box=THREE_FACES[0]["box"],
                         fake_probability=0.15, label="real")
    html = signed_in.get(reverse("detection:detail", args=[new.id])).content.decode()
    table = html[html.index('id="recheck-table"'):html.index("</table>", html.index(
        'id="recheck-table"'))]
    assert OLD in table and NEW in table
    assert "83.0%" in table and "30.0%" in table  # the image's P(fake), before and now
    assert 'id="recheck-earlier-label"><span class="badge badge-fake">' in table
    assert 'id="recheck-new-label"><span class="badge badge-real">' in table
    # Faces paired by where they are: new face 1 is the old face 2.
    assert "(then face 2)" in table
    assert "20.0%" in table and "15.0%" in table
    assert "not found" in table  # the old face 3 was not found again
    assert reverse("detection:detail", args=[old.id]) in html

    # The earlier page links to its re-check, and no longer offers another one.
    html = signed_in.get(reverse("detection:detail", args=[old.id])).content.decode()
    assert 'id="rechecks"' in html
    assert reverse("detection:detail", args=[new.id]) in html
    assert 'id="recheck-button"' not in html
    assert 'id="recheck-link"' in html


def test_page_recheck_refused_says_why(signed_in, user, current):
    detection = DetectionFactory(owner=user, done=True, model_version=NEW)
    response = signed_in.post(reverse("detection:recheck", args=[detection.id]), follow=True)
    assert "already comes from the current model" in response.content.decode()
    assert Detection.objects.count() == 1


def test_page_recheck_of_another_users_detection_is_a_404(client, user, other_user, current):
    detection = DetectionFactory(owner=user, done=True)
    client.force_login(other_user)
    assert client.post(reverse("detection:recheck", args=[detection.id])).status_code == 404
    assert Detection.objects.count() == 1


def test_page_recheck_is_refused_when_the_upload_budget_is_spent(
    signed_in, user, current, monkeypatch
):
    monkeypatch.setattr("detection.throttles.upload_budget_wait", lambda **kwargs: 30)
    detection = DetectionFactory(owner=user, done=True)
    response = signed_in.post(reverse("detection:recheck", args=[detection.id]))
    assert response.status_code == 429
    assert Detection.objects.count() == 1


# --- re-check: the API -------------------------------------------------------------------


def test_api_recheck(token_client, user, current, enqueued, django_capture_on_commit_callbacks):
    old = DetectionFactory(owner=user, done=True)
    assert token_client.get(f"/api/v1/detections/{old.id}/").json()["rechecked_from"] is None
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client.post(f"/api/v1/detections/{old.id}/recheck/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["id"] != old.id
    assert body["rechecked_from"].endswith(f"/api/v1/detections/{old.id}/")
    assert enqueued == [body["id"]]

    again = token_client.post(f"/api/v1/detections/{old.id}/recheck/")
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    same = DetectionFactory(owner=user, done=True, model_version=NEW)
    refused = token_client.post(f"/api/v1/detections/{same.id}/recheck/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "already_current"

    current(None)
    unknown = token_client.post(f"/api/v1/detections/{DetectionFactory(owner=user, done=True).id}"
                                "/recheck/")
    assert unknown.status_code == 503


def test_api_recheck_of_another_users_detection_is_a_404(token_client, other_user, current):
    detection = DetectionFactory(owner=other_user, done=True)
    assert token_client.post(f"/api/v1/detections/{detection.id}/recheck/").status_code == 404
    assert Detection.objects.count() == 1


def test_schema_documents_feedback_and_recheck():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(public=True)
    detection = schema["components"]["schemas"]["Detection"]["properties"]
    assert "feedback" in detection and "rechecked_from" in detection
    paths = schema["paths"]
    assert {"post", "delete"} <= set(paths["/api/v1/detections/{id}/feedback/"])
    assert "post" in paths["/api/v1/detections/{id}/recheck/"]


def test_every_page_links_the_model_cards_in_its_footer(client):
    html = client.get(reverse("home")).content.decode()
    footer = html[html.index('<footer class="site-footer">') :]
    assert f'href="{reverse("detection:model-list")}"' in footer
