"""Privacy: deleting an account deletes its detections and image files; uploads expire after
DETECTION_RETENTION_DAYS (beat task -> service), and the privacy page states that number."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from deepfake_site.celery import app
from detection.models import Detection, DetectionBatch
from detection.tests.factories import DetectionBatchFactory, DetectionFactory
from detection.worker.tasks import detection_purge_expired_task

pytestmark = pytest.mark.django_db


def test_account_deletion_removes_detections_and_files(
    client, user, other_user, password, stored_files, django_capture_on_commit_callbacks
):
    batch = DetectionBatchFactory(owner=user)
    mine = [DetectionFactory(owner=user, batch=batch) for _ in range(2)]
    mine.append(DetectionFactory(owner=user, done=True))
    theirs = DetectionFactory(owner=other_user)
    paths = [Path(d.image.path) for d in mine]
    assert all(p.exists() for p in paths)

    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:delete"), {"password": password})
    assert response.status_code == 302

    assert not Detection.objects.filter(owner_id=user.id).exists()
    assert not DetectionBatch.objects.filter(owner_id=user.id).exists()
    assert not any(p.exists() for p in paths)
    assert stored_files() == [Path(theirs.image.path)]  # only the other user's file is left


def test_purge_task_deletes_expired_uploads_and_files(
    settings, user, stored_files, django_capture_on_commit_callbacks
):
    settings.DETECTION_RETENTION_DAYS = 7
    now = timezone.now()
    old = DetectionFactory(owner=user, created_at=now - dt.timedelta(days=8))
    fresh = DetectionFactory(owner=user, created_at=now - dt.timedelta(days=6))
    old_path = Path(old.image.path)

    with django_capture_on_commit_callbacks(execute=True):
        detection_purge_expired_task.apply()  # the task beat runs, in-process

    assert list(Detection.objects.values_list("id", flat=True)) == [fresh.id]
    assert not old_path.exists()
    assert stored_files() == [Path(fresh.image.path)]


def test_retention_zero_keeps_everything(settings, user, django_capture_on_commit_callbacks):
    settings.DETECTION_RETENTION_DAYS = 0
    DetectionFactory(owner=user, created_at=timezone.now() - dt.timedelta(days=3650))
    with django_capture_on_commit_callbacks(execute=True):
        detection_purge_expired_task.apply()
    assert Detection.objects.count() == 1


def test_beat_runs_the_purge():
    schedule = app.conf.beat_schedule
    assert any(entry["task"] == "detection.purge_expired" for entry in schedule.values())
    assert "detection.purge_expired" in app.tasks


@pytest.mark.parametrize("days", [7, 90])
def test_privacy_page_states_the_configured_retention(client, settings, days):
    settings.DETECTION_RETENTION_DAYS = days
    page = client.get(reverse("privacy")).content.decode()
    assert f"{days} days after upload" in page


def test_privacy_page_says_when_nothing_expires(client, settings):
    settings.DETECTION_RETENTION_DAYS = 0
    page = client.get(reverse("privacy")).content.decode()
    assert "days after upload" not in page
    assert "keeps uploads until you delete them" in page
