"""Reports that a verdict is wrong: the service's rules, the result page's form, the API, the
admin's counts per model version and `manage.py export_feedback`."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from detection import services
from detection.models import Detection, DetectionFeedback
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import image_bytes

pytestmark = pytest.mark.django_db

VERSION = "fake-model-20260101-abcdef123456"  # the factory's verdicts


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _submit(user, detection, truth="real", note=""):
    return services.detection_feedback_submit(
        user=user, detection_id=detection.id, truth=truth, note=note
    )


# --- the service -------------------------------------------------------------------------


def test_submit_snapshots_the_verdict_and_a_new_report_replaces_the_old(user):
    detection = DetectionFactory(owner=user, done=True)  # fake, 0.87
    report, created = _submit(user, detection, truth="real", note="  my own photo  ")
    assert created is True
    assert (report.truth, report.note) == ("real", "my own photo")
    assert (report.label, report.fake_probability) == ("fake", 0.87)
    assert (report.model_name, report.model_version) == ("fake-model", VERSION)

    # The verdict changes later (a re-run): the report keeps what it was about.
    Detection.objects.filter(id=detection.id).update(label="real", fake_probability=0.1)
    assert DetectionFeedback.objects.get().label == "fake"

    again, created = _submit(user, detection, truth="unknown", note="")
    assert created is False
    assert DetectionFeedback.objects.count() == 1
    assert again.id == report.id
    assert (again.truth, again.note, again.label) == ("unknown", "", "real")
    assert again.created_at >= report.created_at


@pytest.mark.parametrize(
    ("fields", "truth", "code"),
    [
        ({}, "real", "no_verdict"),  # pending
        ({"no_face": True}, "real", "no_verdict"),
        ({"done": True}, "fake", "agrees_with_verdict"),
        ({"done": True, "label": "uncertain", "fake_probability": 0.5}, "unknown",
         "uncertain_needs_truth"),
        ({"done": True}, "maybe", "invalid_choice"),
    ],
)  # fmt: skip
def test_submit_refuses_what_is_not_a_wrong_verdict(user, fields, truth, code):
    detection = DetectionFactory(owner=user, **fields)
    with pytest.raises(ValidationError) as caught:
        _submit(user, detection, truth=truth)
    codes = [e.code for errors in caught.value.error_dict.values() for e in errors] if hasattr(
        caught.value, "error_dict"
    ) else [e.code for e in caught.value.error_list]
    assert code in codes
    assert not DetectionFeedback.objects.exists()


def test_submit_refuses_a_note_too_long_and_accepts_an_uncertain_verdict(user):
    detection = DetectionFactory(owner=user, done=True, label="uncertain", fake_probability=0.5)
    with pytest.raises(ValidationError) as caught:
        _submit(user, detection, truth="fake", note="x" * 2001)
    assert "2000 characters" in str(caught.value)
    report, _ = _submit(user, detection, truth="fake", note="x" * 2000)
    assert report.label == "uncertain"


def test_another_users_detection_is_a_404_for_submit_and_withdraw(user, other_user):
    detection = DetectionFactory(owner=user, done=True)
    _submit(user, detection)
    with pytest.raises(Http404):
        _submit(other_user, detection)
    with pytest.raises(Http404):
        services.detection_feedback_withdraw(user=other_user, detection_id=detection.id)
    assert DetectionFeedback.objects.get().truth == "real"


def test_withdraw_deletes_the_report_and_says_whether_there_was_one(user):
    detection = DetectionFactory(owner=user, done=True)
    _submit(user, detection)
    assert services.detection_feedback_withdraw(user=user, detection_id=detection.id) is True
    assert not DetectionFeedback.objects.exists()
    assert services.detection_feedback_withdraw(user=user, detection_id=detection.id) is False
    assert Detection.objects.filter(id=detection.id).exists()


# --- the result page ---------------------------------------------------------------------


def test_result_page_offers_only_answers_that_say_the_verdict_is_wrong(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)  # verdict: fake
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "Is this verdict wrong?" in html
    assert 'id="feedback-form"' in html
    assert 'value="real"' in html and 'value="unknown"' in html
    assert 'name="truth" value="fake"' not in html
    assert 'name="note"' in html


@pytest.mark.parametrize("fields", [{}, {"no_face": True}])
def test_result_page_has_no_form_without_a_real_or_fake_verdict(signed_in, user, fields):
    detection = DetectionFactory(owner=user, **fields)
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert "Is this verdict wrong?" not in html
    assert 'id="feedback-form"' not in html


def test_report_from_the_page_then_withdraw_it(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)
    detail = reverse("detection:detail", args=[detection.id])
    response = signed_in.post(
        reverse("detection:feedback", args=[detection.id]),
        {"truth": "real", "note": "I took this photo"},
    )
    assert response.status_code == 302
    assert response["Location"] == detail + "#feedback"
    report = DetectionFeedback.objects.get(detection=detection)
    assert (report.truth, report.note) == ("real", "I took this photo")

    html = signed_in.get(detail).content.decode()
    assert "You reported this verdict as wrong on" in html
    assert timezone.localtime(report.created_at).strftime("%Y-%m-%d %H:%M") in html
    assert "I took this photo" in html
    assert 'id="feedback-withdraw"' in html
    assert "Change your report" in html

    response = signed_in.post(reverse("detection:feedback-withdraw", args=[detection.id]))
    assert response.status_code == 302
    assert not DetectionFeedback.objects.exists()
    html = signed_in.get(detail).content.decode()
    assert "You reported this verdict as wrong" not in html
    assert "Is this verdict wrong?" in html


def test_page_report_that_does_not_fit_is_shown_with_its_error(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)  # fake
    response = signed_in.post(
        reverse("detection:feedback", args=[detection.id]), {"truth": "fake", "note": ""}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html
    assert "<details class=\"feedback-details\" open>" in html
    assert not DetectionFeedback.objects.exists()


def test_page_report_on_another_users_detection_is_a_404(client, user, other_user):
    detection = DetectionFactory(owner=user, done=True)
    client.force_login(other_user)
    response = client.post(reverse("detection:feedback", args=[detection.id]), {"truth": "real"})
    assert response.status_code == 404
    response = client.post(reverse("detection:feedback-withdraw", args=[detection.id]))
    assert response.status_code == 404
    assert not DetectionFeedback.objects.exists()


def test_page_report_needs_a_sign_in(client, user):
    detection = DetectionFactory(owner=user, done=True)
    response = client.post(reverse("detection:feedback", args=[detection.id]), {"truth": "real"})
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert not DetectionFeedback.objects.exists()


# --- the API -----------------------------------------------------------------------------


def _api_feedback(detection):
    return f"/api/v1/detections/{detection.id}/feedback/"


def test_api_report_201_then_200_then_delete(token_client, user):
    detection = DetectionFactory(owner=user, done=True)
    url = f"/api/v1/detections/{detection.id}/"
    assert token_client.get(url).json()["feedback"] is None

    response = token_client.post(
        _api_feedback(detection), {"truth": "real", "note": "mine"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["truth"] == "real" and response.json()["note"] == "mine"
    assert set(response.json()) == {"truth", "note", "created_at"}

    response = token_client.post(_api_feedback(detection), {"truth": "unknown"}, format="json")
    assert response.status_code == 200, response.content
    body = token_client.get(url).json()["feedback"]
    assert body["truth"] == "unknown" and body["note"] == ""
    assert body["created_at"]

    response = token_client.delete(_api_feedback(detection))
    assert response.status_code == 204
    assert token_client.get(url).json()["feedback"] is None
    assert token_client.delete(_api_feedback(detection)).status_code == 204


def test_api_report_refusals_name_the_field(token_client, user):
    done = DetectionFactory(owner=user, done=True)
    response = token_client.post(_api_feedback(done), {"truth": "fake"}, format="json")
    assert response.status_code == 409  # well formed, but the verdict already says so
    body = response.json()
    assert body["code"] == "agrees_with_verdict"
    assert body["errors"][0]["field"] == "truth"

    response = token_client.post(_api_feedback(done), {"truth": "perhaps"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "truth"

    pending = DetectionFactory(owner=user)
    response = token_client.post(_api_feedback(pending), {"truth": "real"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "no_verdict"
    assert not DetectionFeedback.objects.exists()


def test_api_report_on_another_users_detection_is_a_404(token_client, other_user):
    detection = DetectionFactory(owner=other_user, done=True)
    response = token_client.post(_api_feedback(detection), {"truth": "real"}, format="json")
    assert response.status_code == 404
    assert token_client.delete(_api_feedback(detection)).status_code == 404
    assert not DetectionFeedback.objects.exists()


def test_api_report_is_not_held_back_by_a_spent_upload_budget(token_client, user, monkeypatch):
    monkeypatch.setattr("detection.throttles.upload_budget_wait", lambda **kwargs: 40)
    detection = DetectionFactory(owner=user, done=True)
    response = token_client.post(_api_feedback(detection), {"truth": "real"}, format="json")
    assert response.status_code == 201, response.content
    # Uploads are still refused: the budget is spent.
    assert token_client.post("/api/v1/detections/", {}).status_code == 429


def test_api_list_queries_do_not_grow_with_reports(token_client, user):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = token_client.get("/api/v1/detections/")
        assert response.status_code == 200
        return len(captured)

    for _ in range(2):
        _submit(user, DetectionFactory(owner=user, done=True))
    queries()  # the token's first use is recorded once
    few = queries()
    for _ in range(4):
        _submit(user, DetectionFactory(owner=user, done=True))
    assert queries() == few
    results = token_client.get("/api/v1/detections/").json()["results"]
    assert [r["feedback"]["truth"] for r in results] == ["real"] * 6


# --- the admin ---------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password="x-long-password-1"
    )
    client.force_login(admin)
    return client


def _reports_for_counts(user):
    old, new = "old-model-v1", "new-model-v2"
    for truth, label, version in [
        ("real", "fake", old), ("real", "fake", old), ("unknown", "fake", old),
        ("fake", "real", new),
    ]:  # fmt: skip
        detection = DetectionFactory(owner=user, done=True, model_version=version, label=label,
                                     fake_probability=0.9 if label == "fake" else 0.1)
        _submit(user, detection, truth=truth)
    # Verdicts of the old model nobody reported, and one without a face (not counted).
    DetectionFactory.create_batch(5, owner=user, done=True, model_version=old)
    DetectionFactory(owner=user, no_face=True, model_version=old)
    return old, new


def test_counts_per_model_version(user):
    from detection.selectors import detection_feedback_counts

    old, new = _reports_for_counts(user)
    rows = {row["model_version"]: row for row in detection_feedback_counts()}
    assert rows[old]["reports"] == 3
    assert rows[old]["label_fake"] == 3 and rows[old]["label_real"] == 0
    assert (rows[old]["truth_real"], rows[old]["truth_unknown"]) == (2, 1)
    assert rows[old]["verdicts"] == 8
    assert rows[old]["rate"] == 37.5
    assert rows[new]["reports"] == 1 and rows[new]["truth_fake"] == 1
    assert rows[new]["label_real"] == 1 and rows[new]["verdicts"] == 1
    assert [row["model_version"] for row in detection_feedback_counts()] == [old, new]


def test_admin_counts_page_renders_the_counts(admin_client, user):
    old, new = _reports_for_counts(user)
    response = admin_client.get(reverse("admin:detection_detectionfeedback_counts"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Wrong-verdict reports per model version" in html
    assert f'data-version="{old}"' in html and f'data-version="{new}"' in html
    rows = {row["model_version"]: row for row in response.context["rows"]}
    assert rows[old]["reports"] == 3
    assert response.context["totals"]["reports"] == 4
    assert response.context["totals"]["truth_unknown"] == 1
    assert f"?model_version__exact={old}" in html

    changelist = admin_client.get(reverse("admin:detection_detectionfeedback_changelist"))
    assert changelist.status_code == 200
    assert reverse("admin:detection_detectionfeedback_counts") in changelist.content.decode()
    filtered = admin_client.get(
        reverse("admin:detection_detectionfeedback_changelist"),
        {"model_version__exact": old, "truth__exact": "real"},
    )
    assert filtered.status_code == 200
    assert filtered.context["cl"].result_count == 2

    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:detection_detectionfeedback_counts") in index

    report = DetectionFeedback.objects.filter(truth="fake").get()
    change = admin_client.get(
        reverse("admin:detection_detection_change", args=[report.detection_id])
    )
    assert change.status_code == 200
    assert "It is fake" in change.content.decode()


def test_admin_counts_page_is_for_staff_only(client, user):
    url = reverse("admin:detection_detectionfeedback_counts")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code in (302, 403)
    assert "Wrong-verdict reports" not in response.content.decode()


def test_admin_counts_page_without_reports(admin_client):
    response = admin_client.get(reverse("admin:detection_detectionfeedback_counts"))
    assert response.status_code == 200
    assert "No verdict has been reported as wrong yet." in response.content.decode()


# --- export_feedback ---------------------------------------------------------------------


def _export(out, *args) -> str:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("export_feedback", str(out), *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue() + stderr.getvalue()


def _manifest(out) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _files(out) -> set[str]:
    return {
        f"{folder}/{p.name}" for folder in ("real", "fake") for p in (out / folder).iterdir()
    }


def test_export_writes_reported_images_by_truth_with_a_manifest(user, tmp_path):
    said_real = DetectionFactory(owner=user, done=True)  # verdict fake
    said_fake = DetectionFactory(
        owner=user, done=True, label="real", fake_probability=0.12,
        image__data=image_bytes("PNG"), image__filename="upload.png", sha256="ab" * 32,
    )  # fmt: skip
    unknown = DetectionFactory(owner=user, done=True)
    DetectionFactory(owner=user, done=True)  # not reported
    _submit(user, said_real, truth="real", note="=HYPERLINK(evil)")
    _submit(user, said_fake, truth="fake")
    _submit(user, unknown, truth="unknown")

    out = tmp_path / "eval"
    printed = _export(out)
    real_name = f"real/{said_real.id}-{said_real.sha256[:16]}.jpg"
    fake_name = f"fake/{said_fake.id}-{'ab' * 8}.png"
    assert _files(out) == {real_name, fake_name}
    with default_storage.open(said_real.image.name, "rb") as fh:
        assert (out / real_name).read_bytes() == fh.read()
    with default_storage.open(said_fake.image.name, "rb") as fh:
        assert (out / fake_name).read_bytes() == fh.read()

    rows = _manifest(out)
    assert list(rows[0])[:6] == ["id", "truth", "label", "fake_probability", "model_version",
                                 "note"]
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {str(said_real.id), str(said_fake.id)}
    assert by_id[str(said_real.id)]["truth"] == "real"
    assert by_id[str(said_real.id)]["label"] == "fake"
    assert by_id[str(said_real.id)]["fake_probability"] == "0.8700"
    assert by_id[str(said_real.id)]["model_version"] == VERSION
    assert by_id[str(said_real.id)]["note"] == "'=HYPERLINK(evil)"  # not a formula
    assert by_id[str(said_fake.id)]["file"] == fake_name

    assert "1 real, 1 fake" in printed
    assert "2 written now" in printed
    assert "Skipped 1 report" in printed


def test_export_is_what_the_ml_tools_read(user, tmp_path):
    from ml.data import LABELS, discover

    said_real = DetectionFactory(owner=user, done=True)
    said_fake = DetectionFactory(owner=user, done=True, label="real", fake_probability=0.1)
    _submit(user, said_real, truth="real")
    _submit(user, said_fake, truth="fake")
    out = tmp_path / "eval"
    _export(out)
    records = discover([out])
    labels = {r.path.rsplit("/", 1)[1].split("-")[0]: r.label for r in records}
    assert labels == {str(said_real.id): LABELS["real"], str(said_fake.id): LABELS["fake"]}


def test_export_rerun_is_idempotent_and_follows_changed_reports(user, tmp_path):
    first = DetectionFactory(owner=user, done=True)
    second = DetectionFactory(owner=user, done=True)
    _submit(user, first, truth="real")
    _submit(user, second, truth="real")
    out = tmp_path / "eval"
    _export(out)
    before = _files(out)
    manifest = (out / "manifest.csv").read_bytes()

    printed = _export(out)
    assert _files(out) == before
    assert (out / "manifest.csv").read_bytes() == manifest
    assert "0 written now, 2 already there" in printed

    # The owner changes one answer and withdraws the other; a foreign file is left alone.
    (out / "real" / "notes.txt").write_text("mine")
    _submit(user, first, truth="unknown")
    services.detection_feedback_withdraw(user=user, detection_id=second.id)
    DetectionFactory(owner=user, done=True)
    printed = _export(out)
    assert _files(out) == {"real/notes.txt"}
    assert _manifest(out) == []
    assert "Removed 2 file(s)" in printed
    assert "real/notes.txt" in printed

    Detection.objects.filter(id=first.id).update(label="real", fake_probability=0.2)
    _submit(user, first, truth="fake")
    _export(out)
    assert f"fake/{first.id}-{first.sha256[:16]}.jpg" in _files(out)
    assert not any(name.startswith(f"real/{first.id}-") for name in _files(out))


def test_export_filters_by_model_version_and_date(user, tmp_path):
    old = DetectionFactory(owner=user, done=True, model_version="old-v1")
    new = DetectionFactory(owner=user, done=True, model_version="new-v2")
    _submit(user, old, truth="real")
    _submit(user, new, truth="real")
    DetectionFeedback.objects.filter(detection=old).update(
        created_at=timezone.now() - dt.timedelta(days=10)
    )

    out = tmp_path / "by-version"
    _export(out, "--model-version", "old-v1")
    assert [row["id"] for row in _manifest(out)] == [str(old.id)]

    out = tmp_path / "by-date"
    since = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    _export(out, "--since", since)
    assert [row["id"] for row in _manifest(out)] == [str(new.id)]


def test_export_skips_and_counts_a_missing_stored_image(user, tmp_path):
    detection = DetectionFactory(owner=user, done=True)
    kept = DetectionFactory(owner=user, done=True)
    _submit(user, detection, truth="real")
    _submit(user, kept, truth="real")
    default_storage.delete(detection.image.name)
    out = tmp_path / "eval"
    printed = _export(out)
    assert [row["id"] for row in _manifest(out)] == [str(kept.id)]
    assert "Could not read the stored image of 1 report" in printed


def test_export_refuses_a_file_as_folder(tmp_path):
    from django.core.management.base import CommandError

    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CommandError, match="not a folder"):
        _export(target)
