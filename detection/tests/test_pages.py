"""Pages that keep up (issue 12): the batch page row by row with its summary and CSV, the
history's count, select-all and filters, times with their zone, the API page's steps."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from detection import selectors
from detection.models import Detection
from detection.tests.factories import (
    DetectionBatchFactory,
    DetectionFactory,
    detection_with_three_faces,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _batch(owner, *specs: dict) -> tuple[object, list[Detection]]:
    batch = DetectionBatchFactory(owner=owner)
    return batch, [DetectionFactory(owner=owner, batch=batch, **spec) for spec in specs]


def _row(html: str, detection_id: int) -> str:
    start = html.index(f'id="detection-{detection_id}"')
    return html[start : html.index("</tr>", start)]


# --- batch page: row by row ---------------------------------------------------------------


def test_batch_status_sends_each_row_and_a_summary_as_verdicts_arrive(signed_in, user):
    batch, (fake, real, running, pending) = _batch(
        user,
        {"done": True},
        {"done": True, "label": "real", "fake_probability": 0.1},
        {"status": Detection.Status.RUNNING},
        {},
    )
    url = reverse("detection:batch-status", args=[batch.id])

    data = signed_in.get(url).json()

    assert data["final"] is False and data["status"] == "running"
    rows = {row["id"]: row["html"] for row in data["rows"]}
    assert list(rows) == [fake.id, real.id, running.id, pending.id]  # upload order
    # Each row is one <tr>, with its state, and the verdict of a finished one is in it at once.
    assert rows[fake.id].strip().startswith(f'<tr id="detection-{fake.id}" data-state="done-fake"')
    assert rows[fake.id].count("<tr") == 1
    assert '<span class="badge badge-fake">Fake</span>' in rows[fake.id]
    assert "87.0%" in rows[fake.id]
    assert '<span class="badge badge-real">Real</span>' in rows[real.id]
    assert 'data-state="running"' in rows[running.id]
    assert ">Running</span>" in rows[running.id]
    assert "The model is looking at it" in rows[running.id]
    assert ">Pending</span>" in rows[pending.id]
    assert data["summary"] == "1 fake, 1 real; 1 still running, 1 waiting for a worker."
    assert data["counts"] == {"pending": 1, "running": 1, "done": 2, "failed": 0}
    assert data["labels"] == {"real": 1, "fake": 1, "uncertain": 0, "no_face": 0}

    # The running one finishes: only its row changes, and the summary with it.
    Detection.objects.filter(id=running.id).update(
        status=Detection.Status.DONE,
        label="uncertain",
        fake_probability=0.5,
        uncertain_low=0.4,
        uncertain_high=0.6,
    )
    later = signed_in.get(url).json()
    later_rows = {row["id"]: row["html"] for row in later["rows"]}
    assert later_rows[fake.id] == rows[fake.id]
    assert 'data-state="done-uncertain"' in later_rows[running.id]
    assert later["summary"] == "1 fake, 1 uncertain, 1 real; 1 waiting for a worker."


def test_batch_summary_counts_every_outcome_in_words(signed_in, user):
    batch, _ = _batch(
        user,
        {"done": True},
        {"done": True},
        {"done": True, "label": "uncertain", "fake_probability": 0.5},
        {"no_face": True},
        {"status": Detection.Status.FAILED, "error": "The image could not be read."},
        {"status": Detection.Status.FAILED, "error": "The image could not be read."},
    )
    data = signed_in.get(reverse("detection:batch-status", args=[batch.id])).json()
    assert data["final"] is True and data["status"] == "done"
    assert data["summary"] == "2 fake, 1 uncertain, 1 with no face found, 2 failed; all 6 finished."

    page = signed_in.get(reverse("detection:batch", args=[batch.id])).content.decode()
    summary = re.search(r'<p id="batch-summary"[^>]*>(.*?)</p>', page, re.S)
    assert summary and summary.group(1) == data["summary"]
    assert 'role="status"' in summary.group(0)  # announced as it changes
    assert 'data-poll-url=""' in page  # finished: the page does not poll


def test_batch_summary_before_anything_finished(signed_in, user):
    batch, _ = _batch(user, {}, {}, {"status": Detection.Status.RUNNING})
    data = signed_in.get(reverse("detection:batch-status", args=[batch.id])).json()
    assert data["summary"] == "Nothing finished yet; 1 still running, 2 waiting for a worker."
    page = signed_in.get(reverse("detection:batch", args=[batch.id])).content.decode()
    assert reverse("detection:batch-status", args=[batch.id]) in page
    assert "js/batch-status.js" in page


def test_batch_page_rows_say_running_and_carry_labels_for_phones(signed_in, user):
    batch, (running, several) = _batch(user, {"status": Detection.Status.RUNNING}, {})
    several.delete()
    several = detection_with_three_faces(owner=user, batch=batch)
    page = signed_in.get(reverse("detection:batch", args=[batch.id])).content.decode()
    row = _row(page, running.id)
    assert ">Running</span>" in row
    assert 'data-label="Verdict"' in row and 'data-label="P(fake)"' in row
    assert "3 faces; face 2 decided." in _row(page, several.id)
    assert 'class="detections-table stack-table"' in page


# --- batch CSV ----------------------------------------------------------------------------


def _csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_batch_csv_holds_only_that_batch_with_the_history_columns(signed_in, user, other_user):
    batch, (first, second) = _batch(user, {"done": True, "original_name": "=cmd.jpg"}, {})
    _batch(user, {"done": True, "original_name": "other-batch.jpg"})
    DetectionFactory(owner=user, original_name="single.jpg")
    url = reverse("detection:batch-export", args=[batch.id])

    response = signed_in.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="batch-{batch.id}.csv"' in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    rows = _csv(response)
    assert [row["id"] for row in rows] == [str(first.id), str(second.id)]
    assert list(rows[0]) == selectors.CSV_HEADER
    assert rows[0]["original_name"] == "'=cmd.jpg"  # formulas defused, as in the history export
    assert (rows[0]["label"], rows[0]["face_count"]) == ("fake", "1")
    page = signed_in.get(reverse("detection:batch", args=[batch.id])).content.decode()
    assert f'href="{url}"' in page


def test_batch_csv_of_another_user_or_a_missing_batch_is_404(client, user, other_user):
    batch, _ = _batch(user, {"done": True, "original_name": "secret.jpg"})
    client.force_login(other_user)
    theirs = client.get(reverse("detection:batch-export", args=[batch.id]))
    missing = client.get(reverse("detection:batch-export", args=[batch.id + 999]))
    assert theirs.status_code == missing.status_code == 404
    assert b"secret.jpg" not in theirs.content


def test_batch_csv_selector_refuses_at_once_not_when_read(user, other_user):
    batch, _ = _batch(user, {})
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.detection_batch_csv_rows(user=other_user, batch_id=batch.id)


# --- history ------------------------------------------------------------------------------


def _count_text(html: str) -> str:
    found = re.search(r'<p class="result-count" id="result-count">(.*?)</p>', html, re.S)
    assert found, "no result count on the page"
    return found.group(1)


def test_history_says_how_many_match_the_filters(signed_in, user, other_user):
    DetectionFactory.create_batch(2, owner=user, done=True)
    DetectionFactory(owner=user, no_face=True)
    DetectionFactory(owner=other_user, done=True)
    url = reverse("detection:history")
    assert _count_text(signed_in.get(url).content.decode()) == "3 detections in all"
    assert _count_text(signed_in.get(url, {"label": "fake"}).content.decode()) == (
        "2 detections match"
    )
    assert _count_text(signed_in.get(url, {"label": "no_face"}).content.decode()) == (
        "1 detection matches"
    )
    nothing = signed_in.get(url, {"label": "real"}).content.decode()
    assert _count_text(nothing) == "0 detections match"
    assert "No detections match these filters." in nothing


def test_history_count_covers_every_page(signed_in, user):
    DetectionFactory.create_batch(27, owner=user)
    second = signed_in.get(reverse("detection:history"), {"page": 2}).content.decode()
    assert _count_text(second) == "27 detections in all"


def test_history_without_uploads_shows_no_count(signed_in):
    html = signed_in.get(reverse("detection:history")).content.decode()
    assert "result-count" not in html and "No uploads yet." in html


def test_history_select_all_is_a_labelled_checkbox_shown_by_its_script(signed_in, user):
    DetectionFactory.create_batch(2, owner=user)
    html = signed_in.get(reverse("detection:history")).content.decode()
    select_all = re.search(r'<label class="select-all" hidden>(.*?)</label>', html, re.S)
    assert select_all, "the select-all box is hidden until history.js shows it"
    assert '<input type="checkbox" id="select-all" aria-controls="history-table">' in (
        select_all.group(1)
    )
    assert "Select all on this page" in select_all.group(1)
    # Inside the bulk delete form, next to its button, and the script is on the page.
    form = html[html.index('id="history-form"') : html.index("</form>", html.index("history-form"))]
    assert 'id="select-all"' in form and "Delete selected…" in form
    assert form.count('name="ids"') == 2
    assert "js/history.js" in html


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("label", ["", "real", "fake", "uncertain", "no_face"]),
        ("status", ["", "pending", "running", "done", "failed"]),
    ],
)
def test_history_filters_offer_every_label_and_status(signed_in, user, field, values):
    DetectionFactory(owner=user)
    html = signed_in.get(reverse("detection:history")).content.decode()
    select = re.search(rf'<select name="{field}" id="id_{field}">(.*?)</select>', html, re.S)
    assert select
    assert re.findall(r'<option value="([^"]*)"', select.group(1)) == values
    assert set(values[1:]) == set(
        Detection.Label.values if field == "label" else Detection.Status.values
    )


@pytest.mark.parametrize("label", Detection.Label.values)
def test_history_label_filter_applies_each_label(signed_in, user, label):
    def verdict(label: str) -> Detection:
        if label == Detection.Label.NO_FACE:
            return DetectionFactory(owner=user, no_face=True)
        return DetectionFactory(owner=user, done=True, label=label)

    wanted = verdict(label)
    for other in set(Detection.Label.values) - {label}:
        verdict(other)
    response = signed_in.get(reverse("detection:history"), {"label": label})
    assert [d.id for d in response.context["page"].object_list] == [wanted.id]


def test_history_rows_carry_labels_for_phones(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)
    html = signed_in.get(reverse("detection:history")).content.decode()
    row = _row(html, detection.id)
    for label in ("Verdict", "P(fake)", "Uploaded"):
        assert f'data-label="{label}"' in row
    assert 'class="detections-table stack-table has-select"' in html


# --- times say their zone -----------------------------------------------------------------

TIME = re.compile(r'<time datetime="([^"]+)"[^>]*>([^<]+)</time>')


def test_times_on_pages_say_their_zone_and_local_time_script_is_loaded(signed_in, user, settings):
    settings.TIME_ZONE = "Europe/Paris"
    batch, (detection,) = _batch(user, {"done": True})
    pages = [
        reverse("detection:history"),
        reverse("detection:detail", args=[detection.id]),
        reverse("detection:batch", args=[batch.id]),
        reverse("detection:delete", args=[detection.id]),
    ]
    for url in pages:
        html = signed_in.get(url).content.decode()
        times = TIME.findall(html)
        assert times, url
        for machine, shown in times:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? CES?T", shown), (url, shown)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", machine)
        assert "js/local-time.js" in html, url


def test_token_times_on_the_account_page_say_their_zone(signed_in, user):
    from accounts.services import api_token_create, api_token_revoke

    token, _ = api_token_create(user=user, name="old")
    api_token_revoke(user=user, token_id=token.id)
    api_token_create(user=user, name="laptop")
    html = signed_in.get(reverse("accounts:profile")).content.decode()
    shown = [text for _machine, text in TIME.findall(html)]
    assert len(shown) == 3  # two created, one revoked
    assert all(text.endswith(" UTC") for text in shown)


# --- API page -----------------------------------------------------------------------------


def test_api_page_numbers_its_steps_and_mentions_wait(signed_in, settings):
    settings.API_MAX_WAIT_SECONDS = 25.0
    html = signed_in.get(reverse("detection:api-help")).content.decode()
    steps = re.findall(r"<h2[^>]*>(\d+)\. ([^<]+)</h2>", html)
    assert [number for number, _title in steps] == ["1", "2", "3", "4", "5", "6", "7"]
    titles = " / ".join(title.lower() for _number, title in steps)
    for word in ("create a token", "set it", "upload", "verdict", "list", "download", "delete"):
        assert word in titles
    assert "?wait=25" in html
    assert "at most 25" in html
    # The token goes in client-side only: a placeholder in the page, filled by api-token.js.
    assert (
        'export TOKEN=<span id="token-slot" data-placeholder="paste-your-token-here">'
        "paste-your-token-here</span>" in html
    )
    assert '<div class="token-note message message-warning" id="token-note" hidden>' in html
    assert 'id="token-forget"' in html and "js/api-token.js" in html


def test_new_token_is_handed_to_the_api_page_by_the_browser_only(signed_in, user):
    response = signed_in.post(reverse("accounts:token-create"), {"name": "laptop"})
    html = response.content.decode()
    key = re.search(r'id="new-token-key" value="([^"]+)" data-token-name="laptop"', html)
    assert key, "the key field carries the token name for api-token.js"
    assert "js/api-token.js" in html
    assert 'id="new-token-api-hint" class="token-note" hidden' in html
    # The API page itself never contains a key.
    api_page = signed_in.get(reverse("detection:api-help")).content.decode()
    assert key.group(1) not in api_page
