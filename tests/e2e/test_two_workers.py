"""Two workers, one broker: every detection is done exactly once, by one of them (docs/scaling.md).

Two separate `celery worker` processes, each with its own node name as on two hosts, read one
queue on a private redis-server, against the pytest test database, with the shared model and one
shared media folder (the shared filesystem of docs/scaling.md; an S3-compatible bucket is the
same to this code, through the storage API). Every detection gets its run message, and a third
of them a second one right behind it, as a sweeper or an operator might send. The row's
conditional claim must turn each duplicate into a no-op: one verdict, one model call, on one
worker.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from detection import publish, services
from detection.models import Detection, DetectionFace
from detection.tests.helpers import upload
from tests.face_images import face_image_bytes
from tests.faults.conftest import app_broker
from tests.processes import (
    RedisServer,
    WorkerProcess,
    redis_server,
    wait_for,
    worker_env,
    worker_running,
)

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]

DETECTIONS = 24
PER_UPLOAD = 12  # under DETECTION_MAX_FILES_PER_REQUEST
DUPLICATE_EVERY = 3  # detections 0, 3, 6 ... get a second run message

DONE_LINE = re.compile(r"Detection (\d+) done:")
NOT_CLAIMED_LINE = re.compile(r"Detection (\d+) not claimed")


@dataclass
class TwoWorkers:
    redis: RedisServer
    queue: str
    media_root: Path
    workers: dict[str, WorkerProcess]


@pytest.fixture
def two_workers(
    django_db_setup, django_db_blocker, e2e_model_dir, tmp_path_factory
) -> Iterator[TwoWorkers]:
    from django.db import connection

    queue = f"two-workers-{uuid.uuid4().hex[:12]}"
    media_root = tmp_path_factory.mktemp("two-workers-media")
    with redis_server() as redis, contextlib.ExitStack() as stack:
        workers = {}
        for name in ("alpha", "beta"):
            # Its own folder (log, cache) per worker; the uploads folder is shared.
            var_dir = tmp_path_factory.mktemp(f"two-workers-{name}")
            env = worker_env(
                database=connection.settings_dict,
                broker_url=redis.url,
                queue=queue,
                media_root=media_root,
                var_dir=var_dir,
                model_dir=e2e_model_dir,
            )
            workers[name] = stack.enter_context(
                worker_running(
                    env=env,
                    queue=queue,
                    var_dir=var_dir,
                    django_db_blocker=django_db_blocker,
                    node_name=f"{name}@%h",
                )
            )
        yield TwoWorkers(redis=redis, queue=queue, media_root=media_root, workers=workers)


def _ids_in_log(worker: WorkerProcess, pattern: re.Pattern[str]) -> list[int]:
    return [int(m.group(1)) for m in pattern.finditer(worker.log.read_text(errors="replace"))]


def _logs(two_workers: TwoWorkers) -> str:
    return "\n".join(f"--- {n}:\n{w.log_tail()}" for n, w in two_workers.workers.items())


def test_each_detection_is_done_exactly_once_by_one_of_two_workers(two_workers, user, settings):
    settings.MEDIA_ROOT = two_workers.media_root
    redis = two_workers.redis.client()

    # The uploads' own messages go to a queue no worker reads, so that the test sets the order
    # below; the rows are stored exactly as an upload stores them.
    with app_broker(two_workers.redis.url, f"{two_workers.queue}-parked"):
        detections: list[Detection] = []
        for start in range(0, DETECTIONS, PER_UPLOAD):
            # Real faces (the detector judges faces only), each image a little different.
            uploads = [
                upload(f"face-{i}.jpg", face_image_bytes(size=(160 + i, 120)))
                for i in range(start, start + PER_UPLOAD)
            ]
            detections += services.detection_create_many(user=user, uploads=uploads)
    ids = [d.id for d in detections]

    # Each run message, and for every third detection a duplicate right behind it, so that the
    # two workers (one message at a time each) often take such a pair at the same moment.
    duplicated = ids[::DUPLICATE_EVERY]
    messages: dict[int, set[str]] = {}
    with app_broker(two_workers.redis.url, two_workers.queue):
        for detection_id in ids:
            copies = 2 if detection_id in duplicated else 1
            messages[detection_id] = {
                publish.detection_run_publish(detection_id=detection_id) for _ in range(copies)
            }

    def all_finished_and_acknowledged() -> bool:
        finished = Detection.objects.filter(
            id__in=ids, status__in=(Detection.Status.DONE, Detection.Status.FAILED)
        ).count()
        # Every message, duplicates included, taken and acknowledged (kombu's unacked hash).
        return (finished == len(ids) and redis.llen(two_workers.queue) == 0
                and redis.hlen("unacked") == 0)

    try:
        wait_for(all_finished_and_acknowledged, timeout=150, interval=0.5,
                 what="every detection done and every message acknowledged")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_logs(two_workers)}") from None

    # The database: one verdict per detection, from one claim by one of our messages.
    for row in Detection.objects.filter(id__in=ids):
        assert row.status == Detection.Status.DONE, (row.id, row.status, row.error)
        assert row.attempts == 1, (row.id, row.attempts)
        assert row.claim_token in messages[row.id]  # claimed by one of its live messages
        assert row.label in ("real", "fake", "uncertain"), (row.id, row.label)
    faces = Counter(
        DetectionFace.objects.filter(detection_id__in=ids).values_list("detection_id", flat=True)
    )
    assert faces == dict.fromkeys(ids, 1)  # one face each, saved once

    # The workers' own words: who made each verdict, who was turned away by the claim.
    done = {n: _ids_in_log(w, DONE_LINE) for n, w in two_workers.workers.items()}
    refused = {n: _ids_in_log(w, NOT_CLAIMED_LINE) for n, w in two_workers.workers.items()}
    assert done["alpha"] and done["beta"], f"one worker did it all: {done}\n{_logs(two_workers)}"
    assert not set(done["alpha"]) & set(done["beta"]), done
    assert sorted(done["alpha"] + done["beta"]) == sorted(ids)  # each exactly once
    # Every duplicate message was delivered, and refused by the claim: no second model call.
    assert sorted(refused["alpha"] + refused["beta"]) == sorted(duplicated)
