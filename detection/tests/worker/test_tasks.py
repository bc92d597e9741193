from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from detection.models import Detection
from detection.tests.factories import DetectionFactory
from detection.worker.tasks import (
    detection_purge_expired_task,
    detection_run_task,
    detection_sweep_task,
)

pytestmark = pytest.mark.django_db


def test_task_is_registered_with_late_acks():
    assert detection_run_task.name == "detection.run"
    assert detection_run_task.acks_late is True
    assert detection_run_task.reject_on_worker_lost is True


def test_task_run_twice_gives_one_verdict_and_one_model_call(fake_engine):
    detection = DetectionFactory()
    detection_run_task.apply(args=[detection.id], task_id="message-1").get()
    first = Detection.objects.get(id=detection.id)
    # A duplicate message (another id), then a redelivery of the first one.
    detection_run_task.apply(args=[detection.id], task_id="message-2").get()
    detection_run_task.apply(args=[detection.id], task_id="message-1").get()
    detection.refresh_from_db()
    assert fake_engine.calls == 1
    assert detection.status == Detection.Status.DONE
    assert detection.attempts == 1
    assert (detection.finished_at, detection.label) == (first.finished_at, first.label)


def test_task_retries_a_failing_model_until_max_attempts(fake_engine, settings):
    settings.DETECTION_MAX_ATTEMPTS = 3
    fake_engine.error = RuntimeError("boom")
    detection = DetectionFactory()
    # Eager retries run at once, in this process.
    detection_run_task.apply(args=[detection.id]).get(propagate=False)
    detection.refresh_from_db()
    assert fake_engine.calls == 3
    assert detection.status == Detection.Status.FAILED
    assert detection.attempts == 3


def test_sweep_task_queues_stale_rows(enqueued, settings):
    settings.DETECTION_STALE_AFTER = 60
    stale = DetectionFactory(queued_at=timezone.now() - dt.timedelta(minutes=5))
    detection_sweep_task.apply().get()
    assert enqueued == [stale.id]


def test_purge_task(settings):
    settings.DETECTION_RETENTION_DAYS = 1
    DetectionFactory(created_at=timezone.now() - dt.timedelta(days=2))
    detection_purge_expired_task.apply().get()
    assert Detection.objects.count() == 0


def test_a_worker_reuses_its_database_connection_between_tasks(monkeypatch, settings):
    # Celery's Django fix-up closed the connection around every task (a new PostgreSQL server
    # process per detection); with a reuse limit it leaves them to Django's own rules, which the
    # worker applies at each task's start and end.
    from celery.fixups.django import DjangoWorkerFixup
    from celery.signals import task_postrun, task_prerun

    from deepfake_site.celery import app

    assert settings.CELERY_DB_REUSE_MAX >= 100
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX
    checked = []
    monkeypatch.setattr(
        "detection.worker.tasks.close_old_connections", lambda: checked.append(True)
    )
    class Task:
        def __init__(self, *, eager: bool):
            self.request = type("Request", (), {"is_eager": eager, "headers": {}})()

    for signal in (task_prerun, task_postrun):
        signal.send(sender=None, task_id="t", task=Task(eager=False), args=(1,), kwargs={})
    assert checked == [True, True]
    # An eager run (inside a request or a test's transaction) leaves the connection alone.
    for signal in (task_prerun, task_postrun):
        signal.send(sender=None, task_id="t", task=Task(eager=True), args=(1,), kwargs={})
    assert checked == [True, True]
