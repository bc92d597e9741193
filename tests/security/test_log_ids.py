"""Structured JSON logs carry the request id through the web request, the published message and
the worker's task run, and the worker's lines carry the detection id too."""

from __future__ import annotations

import copy
import io
import json
import logging.config

import pytest
from django.conf import settings as django_settings
from kombu import Connection

from deepfake_site.celery import app
from detection.models import Detection
from detection.publish import RUN_TASK
from detection.tests import hostile
from detection.tests.helpers import FakeEngine
from detection.worker.tasks import detection_run_task

from .conftest import API_LIST

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """The configured logging (settings.LOGGING) with LOG_JSON on, its handler writing here."""
    stream = io.StringIO()
    config = copy.deepcopy(django_settings.LOGGING)
    config["handlers"]["console"]["formatter"] = "json"  # what LOG_JSON=true selects
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        logging.config.dictConfig(django_settings.LOGGING)


# transaction=True: the message is published at the real commit, inside the request, as in
# production (captured on_commit callbacks would run after the request, without its id).
@pytest.mark.django_db(transaction=True)
def test_request_and_detection_ids_reach_web_and_worker_log_lines(
    token_client, json_log, monkeypatch
):
    request_id = "sec-trace-42"
    queue = app.conf.task_default_queue
    with Connection("memory://") as broker:
        app.amqp.queues[queue](broker.default_channel).declare()
        # Publish for real (before_task_publish runs), into an in-memory broker.
        monkeypatch.setattr(
            "detection.publish.detection_run_publish",
            lambda *, detection_id: app.send_task(
                RUN_TASK, args=[detection_id], connection=broker
            ),
        )

        # 1. The web request.
        response = token_client.post(
            API_LIST,
            {"image": hostile.upload(hostile.jpeg(), "face.jpg")},
            format="multipart",
            HTTP_X_REQUEST_ID=request_id,
        )
        assert response.status_code == 202
        assert response["X-Request-ID"] == request_id
        detection_id = str(response.json()["detections"][0]["id"])

        # 2. The message carries the request id in its headers.
        message = broker.SimpleQueue(queue).get(timeout=2)
        assert message.headers["request_id"] == request_id

        # 3. The worker's execution path (celery.worker.request.Request -> trace -> signals).
        from celery.worker.request import Request

        monkeypatch.setattr("detection.worker.engine.engine_get", lambda: FakeEngine())
        Request(message, app=app, task=app.tasks[message.headers["task"]]).execute()

    assert Detection.objects.get(id=detection_id).status == "done"
    lines = json_log()
    web = [ln for ln in lines if ln["name"] == "detection.shared"]
    assert web and all(ln["request_id"] == request_id for ln in web), lines
    assert any(ln["detection_id"] == detection_id for ln in web)
    worker = [ln for ln in lines if ln["name"] == "detection.worker.services"]
    assert worker, lines
    assert all(ln["request_id"] == request_id for ln in worker)
    assert all(ln["detection_id"] == detection_id for ln in worker)
    # After the task, the worker process is back to no ids.
    from deepfake_site.logging import detection_id_var, request_id_var

    assert request_id_var.get() == "-" and detection_id_var.get() == "-"


def test_eager_apply_with_a_request_id_header_binds_both_ids(json_log, user, monkeypatch):
    from detection.tests.factories import DetectionFactory

    detection = DetectionFactory(owner=user)
    monkeypatch.setattr("detection.worker.engine.engine_get", lambda: FakeEngine())
    detection_run_task.apply(args=[detection.id], headers={"request_id": "sec-eager-1"})
    worker = [ln for ln in json_log() if ln["name"] == "detection.worker.services"]
    assert worker
    assert all(ln["request_id"] == "sec-eager-1" for ln in worker)
    assert all(ln["detection_id"] == str(detection.id) for ln in worker)
