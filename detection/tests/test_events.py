"""Waiting for a verdict: woken by the worker's announcement (Redis), or re-reading the row."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from detection import events, selectors
from detection.models import Detection
from detection.tests.factories import DetectionFactory

# The row is finished by another thread, on its own connection: it must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def _finish_later(detection_id: int, *, delay: float, announce: bool) -> threading.Thread:
    def finish() -> None:
        time.sleep(delay)
        Detection.objects.filter(id=detection_id).update(
            status=Detection.Status.DONE, label="no_face", uncertain_low=0.4, uncertain_high=0.6
        )
        if announce:
            events.detection_finished_announce(detection_id=detection_id)
        connection.close()

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_a_finished_detection_is_answered_at_once(user):
    done = DetectionFactory(owner=user, done=True)
    got = selectors.detection_get_finished(user=user, detection_id=done.id, wait=30)
    assert got.status == Detection.Status.DONE


def test_an_unfinished_detection_is_answered_unfinished_when_the_wait_is_up(settings, user):
    settings.REDIS_URL = ""
    pending = DetectionFactory(owner=user)
    got = selectors.detection_get_finished(user=user, detection_id=pending.id, wait=0.2)
    assert got.status == Detection.Status.PENDING


def test_waiting_on_another_users_detection_is_404_without_waiting(user, other_user):
    from django.http import Http404

    theirs = DetectionFactory(owner=other_user)
    with pytest.raises(Http404):
        selectors.detection_get_finished(user=user, detection_id=theirs.id, wait=30)


def test_without_redis_the_wait_reads_the_row_until_it_is_finished(settings, user):
    settings.REDIS_URL = ""
    pending = DetectionFactory(owner=user)
    thread = _finish_later(pending.id, delay=0.3, announce=False)
    got = selectors.detection_get_finished(user=user, detection_id=pending.id, wait=20)
    thread.join()
    assert got.status == Detection.Status.DONE


@pytest.mark.services
def test_with_redis_the_announcement_wakes_the_wait(settings, user, monkeypatch):
    from tests.processes import redis_server

    # Re-reading the row only every 60 s: a wait that ends within the margin below was woken.
    monkeypatch.setattr(events, "WAIT_RECHECK_SECONDS", 60.0)
    pending = DetectionFactory(owner=user)
    with redis_server() as redis:
        settings.REDIS_URL = redis.url
        thread = _finish_later(pending.id, delay=0.3, announce=True)
        started = time.monotonic()
        got = selectors.detection_get_finished(user=user, detection_id=pending.id, wait=40)
        waited = time.monotonic() - started
        thread.join()
    assert got.status == Detection.Status.DONE
    assert waited < 20, f"not woken by the announcement (waited {waited:.1f} s)"


@pytest.mark.services
def test_with_redis_gone_the_wait_falls_back_to_reading_the_row(settings, user):
    from tests.processes import redis_server

    pending = DetectionFactory(owner=user)
    with redis_server() as redis:
        settings.REDIS_URL = redis.url
        redis.kill()
        thread = _finish_later(pending.id, delay=0.3, announce=True)  # the announce fails too
        got = selectors.detection_get_finished(user=user, detection_id=pending.id, wait=20)
        thread.join()
    assert got.status == Detection.Status.DONE


def test_an_upload_waits_until_every_one_of_its_detections_is_finished(settings, user):
    settings.REDIS_URL = ""
    first, second = DetectionFactory(owner=user), DetectionFactory(owner=user)
    threads = [_finish_later(first.id, delay=0.1, announce=False),
               _finish_later(second.id, delay=0.4, announce=False)]
    got = selectors.detection_list_finished(
        user=user, detection_ids=[second.id, first.id], wait=20
    )
    for thread in threads:
        thread.join()
    assert [(d.id, d.status) for d in got] == [(second.id, "done"), (first.id, "done")]


@pytest.mark.services
def test_with_redis_any_of_an_uploads_announcements_wakes_the_wait(settings, user, monkeypatch):
    from tests.processes import redis_server

    monkeypatch.setattr(events, "WAIT_RECHECK_SECONDS", 60.0)
    first, second = DetectionFactory(owner=user), DetectionFactory(owner=user)
    with redis_server() as redis:
        settings.REDIS_URL = redis.url
        threads = [_finish_later(first.id, delay=0.2, announce=True),
                   _finish_later(second.id, delay=0.5, announce=True)]
        started = time.monotonic()
        got = selectors.detection_list_finished(
            user=user, detection_ids=[first.id, second.id], wait=40
        )
        waited = time.monotonic() - started
        for thread in threads:
            thread.join()
    assert [d.status for d in got] == ["done", "done"]
    assert waited < 20, f"not woken by the announcements (waited {waited:.1f} s)"


def test_an_uploads_wait_leaves_out_other_users_rows(user, other_user):
    mine, theirs = DetectionFactory(owner=user, done=True), DetectionFactory(owner=other_user)
    got = selectors.detection_list_finished(
        user=user, detection_ids=[mine.id, theirs.id], wait=5
    )
    assert [d.id for d in got] == [mine.id]
