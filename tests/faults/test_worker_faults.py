"""Faults with a real worker: kill -9 mid-inference, a poison image, the broker down at upload.

One worker for the whole module (tests/faults/worker_launcher.py: its model sleeps on images
SLOW_WIDTH wide and raises on images POISON_WIDTH wide), on a private redis-server this module may
kill, against the pytest test database. Celery beat runs inside it, as in production, and sweeps
every 2 seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from detection.models import Detection
from detection.tests.helpers import image_bytes, upload
from detection.worker.services import ERROR_GAVE_UP
from tests.faults.conftest import POISON_WIDTH, SLOW_WIDTH, queued_messages
from tests.processes import child_pids, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services]

Status = Detection.Status


def _upload(client: APIClient, width: int, name: str = "face.jpg") -> int:
    image = upload(name, image_bytes(size=(width, 48)))
    response = client.post("/api/v1/detections/", {"image": [image]}, format="multipart")
    assert response.status_code == 202, response.content
    [item] = response.json()["detections"]
    return item["id"]


def _final(detection_id: int, timeout: float) -> Detection:
    def final() -> Detection | None:
        row = Detection.objects.get(id=detection_id)
        return row if row.is_final else None

    return wait_for(final, timeout=timeout, what=f"detection {detection_id} to finish")


def _queue_drained(fault_worker) -> bool:
    """No message waiting, none delivered but unacknowledged (kombu's "unacked" hash)."""
    client = fault_worker.redis.client()
    return client.llen(fault_worker.queue) == 0 and client.hlen("unacked") == 0


def test_the_worker_runs_with_one_message_at_a_time_and_ordered_time_limits(on_fault_worker):
    from deepfake_site.celery import app

    name = f"{on_fault_worker.queue}@{socket.gethostname()}"
    # Remote control over the broker; limit=1: return as soon as this one worker answered.
    inspect = app.control.inspect(destination=[name], timeout=10, limit=1)
    stats = inspect.stats()[name]
    # What the worker really asked the broker for: prefetch multiplier 1 x concurrency 1.
    assert stats["prefetch_count"] == 1
    conf = inspect.conf(with_defaults=True)[name]
    soft, hard = conf["task_soft_time_limit"], conf["task_time_limit"]
    visibility = conf["broker_transport_options"]["visibility_timeout"]
    assert (soft, hard, visibility) == (20, 25, 300)  # this worker's settings, really applied
    assert soft < hard < visibility
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True


def test_kill_9_of_the_worker_child_mid_inference_redelivers_once(on_fault_worker, token_client):
    worker = on_fault_worker
    child = worker.child_pid()
    assert child in child_pids(worker.worker.process.pid)
    detection_id = _upload(token_client, SLOW_WIDTH, "slow.jpg")

    # The child has claimed the row and sits in the (slow) model call: kill it there.
    wait_for(
        lambda: (SLOW_WIDTH in [w for pid, w in worker.model_calls() if pid == child]),
        timeout=60,
        what="the model call",
    )
    row = Detection.objects.get(id=detection_id)
    assert (row.status, row.attempts) == (Status.RUNNING, 1)
    message_id = row.claim_token  # the task id of the message being processed
    os.kill(child, signal.SIGKILL)

    # The master forks a new child; reject_on_worker_lost puts the message back at once. Not
    # the visibility timeout (300 s), nor the sweeper (it takes back rows running for longer
    # than the hard limit + 30 s = 55 s): this waits less than either.
    detection = _final(detection_id, timeout=45)
    assert detection.status == Status.DONE, detection.error
    assert detection.attempts == 2
    assert detection.claim_token == message_id  # the same message, delivered again
    # The test image may hold no face the detector accepts: "no face" is a verdict too.
    assert detection.label in ("real", "fake", "uncertain", "no_face")
    assert detection.model_version == worker.worker.model_version
    calls = [(pid, w) for pid, w in worker.model_calls() if w == SLOW_WIDTH]
    assert len(calls) == 2
    assert calls[0][0] == child and calls[1][0] != child
    assert worker.child_pid() != child
    # Exactly one verdict: nothing else pending for this row, and the message is acknowledged.
    wait_for(lambda: _queue_drained(worker), timeout=15, what="an empty queue")
    assert Detection.objects.get(id=detection_id).finished_at == detection.finished_at


def test_poison_image_fails_visibly_after_max_attempts(on_fault_worker, token_client, client,
                                                       user):
    worker = on_fault_worker
    detection_id = _upload(token_client, POISON_WIDTH, "poison.jpg")

    # Retries wait 5 s, then 10 s.
    detection = _final(detection_id, timeout=60)
    assert detection.status == Status.FAILED
    assert detection.attempts == worker.max_attempts
    assert detection.error == ERROR_GAVE_UP.format(attempts=worker.max_attempts)
    assert detection.label == "" and detection.fake_probability is None

    # Shown to the user: the API and the result page.
    data = token_client.get(f"/api/v1/detections/{detection_id}/").json()
    assert (data["status"], data["error"]) == ("failed", detection.error)
    client.force_login(user)
    page = client.get(reverse("detection:detail", args=[detection_id])).content.decode()
    assert detection.error in page

    # No endless redelivery: the queue drains, and the row stays as it is.
    wait_for(lambda: _queue_drained(worker), timeout=30, what="an empty queue")
    time.sleep(3)  # a sweep or two later
    assert _queue_drained(worker)
    again = Detection.objects.get(id=detection_id)
    assert (again.status, again.attempts, again.finished_at) == (
        Status.FAILED, worker.max_attempts, detection.finished_at
    )
    assert [w for _, w in worker.model_calls()].count(POISON_WIDTH) == worker.max_attempts


def test_upload_while_the_broker_is_down_is_kept_and_run_later(on_fault_worker, token_client):
    worker = on_fault_worker
    redis = worker.redis
    redis.kill()
    try:
        # In a thread, so a publish that hangs fails this test instead of hanging it (restarting
        # Redis below lets such a publish finish).
        result: dict[str, object] = {}

        def post() -> None:
            try:
                result["id"] = _upload(token_client, 64, "while-down.jpg")
            except BaseException as exc:  # noqa: BLE001 - reported below
                result["error"] = exc
            finally:
                connection.close()

        started = time.monotonic()
        thread = threading.Thread(target=post)
        thread.start()
        # Bounded: the publish gives up after a 1 s connect timeout and one retry (about 2 s).
        thread.join(timeout=6)
        assert not thread.is_alive(), "the upload still waits for the dead broker after 6 s"
        assert time.monotonic() - started < 6
        assert "error" not in result, result["error"]
        detection_id = result["id"]
        row = Detection.objects.get(id=detection_id)
        assert row.status == Status.PENDING
        time.sleep(2)  # the worker's consumer and beat see the broker gone
    finally:
        redis.start()  # the same port: the worker reconnects
        thread.join(timeout=30)

    # Nothing was queued; beat (in the worker) sweeps the stale row into the queue again.
    detection = _final(detection_id, timeout=60)
    assert detection.status == Status.DONE, detection.error
    assert detection.attempts == 1
    assert detection.model_version == worker.worker.model_version
    assert "Sweeper queued" in worker.worker.log_tail(200_000)
    assert queued_messages(redis, worker.queue) == []
