"""Fixtures for the fault tests: a private Redis per module, one misbehaving worker per module.

The shared Redis and PostgreSQL are never stopped or flushed: a test that needs the broker to die
kills its own redis-server (tests.processes.RedisServer) on a port of its own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import (
    RedisServer,
    WorkerProcess,
    model_dir_get,
    redis_server,
    worker_env,
    worker_running,
)

# Image widths the launcher's patched model reacts to (tests/faults/worker_launcher.py).
SLOW_WIDTH = 71
SLOW_SECONDS = 4
POISON_WIDTH = 73

# The fault worker's settings: short limits, still soft < hard < visibility timeout. The long
# visibility timeout proves a redelivery came from reject_on_worker_lost, not from the timeout.
WORKER_SETTINGS = {
    "CELERY_TASK_SOFT_TIME_LIMIT": "20",
    "CELERY_TASK_TIME_LIMIT": "25",
    "CELERY_BROKER_VISIBILITY_TIMEOUT": "300",
    "DETECTION_MAX_ATTEMPTS": "3",
    # Beat runs inside the worker, as in production (Procfile.dev, docker-compose.yml).
    "DETECTION_SWEEP_INTERVAL": "2",
    "DETECTION_STALE_AFTER": "5",
    "REDIS_SOCKET_TIMEOUT": "1",
}


@contextlib.contextmanager
def app_broker(url: str, queue: str) -> Iterator[None]:
    """Point this process's Celery app (what detection_enqueue publishes with) at `url`/`queue`."""
    from deepfake_site.celery import app

    def reset_pools() -> None:
        # The app caches its connection and producer pools per broker URL.
        app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            app.__dict__["amqp"]._producer_pool = None

    previous = (app.conf.broker_url, app.conf.task_default_queue)
    app.conf.broker_url = url
    app.conf.task_default_queue = queue
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_default_queue = previous
        reset_pools()


@dataclass
class QueuedMessage:
    task_id: str
    task: str
    args: list


def queued_messages(redis: RedisServer, queue: str) -> list[QueuedMessage]:
    """The messages waiting in a queue (kombu keeps a Redis list named after the queue)."""
    messages = []
    for raw in redis.client().lrange(queue, 0, -1):
        payload = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(payload["body"]))
        headers = payload["headers"]
        messages.append(QueuedMessage(task_id=headers["id"], task=headers["task"], args=args))
    return messages


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def faults_model_dir(tmp_path_factory) -> Path:
    return model_dir_get(tmp_path_factory)


@pytest.fixture(scope="module")
def faults_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults-media")


@dataclass
class FaultWorker:
    worker: WorkerProcess
    redis: RedisServer
    calls_file: Path
    ready_file: Path
    max_attempts: int

    @property
    def queue(self) -> str:
        return self.worker.queue

    def model_calls(self) -> list[tuple[int, int]]:
        """(pid, image width) per predict() call, in every process of this worker."""
        if not self.calls_file.exists():
            return []
        return [
            (int(pid), int(width))
            for pid, width in (line.split() for line in self.calls_file.read_text().splitlines())
        ]

    def child_pid(self) -> int:
        return int(self.ready_file.read_text().split()[0])


@pytest.fixture(scope="module")
def fault_worker(
    django_db_setup, django_db_blocker, private_redis, faults_model_dir, faults_media_root,
    tmp_path_factory,
) -> Iterator[FaultWorker]:
    """One worker for a module, started through the launcher, on the module's private Redis."""
    from django.db import connection

    queue = f"faults-{uuid.uuid4().hex[:12]}"
    var_dir = tmp_path_factory.mktemp("faults-worker")
    calls_file = var_dir / "model-calls.txt"
    ready_file = var_dir / "ready.txt"
    env = worker_env(
        database=connection.settings_dict,
        broker_url=private_redis.url,
        queue=queue,
        media_root=faults_media_root,
        var_dir=var_dir,
        model_dir=faults_model_dir,
        extra={
            **WORKER_SETTINGS,
            "FAULTS_SLOW_WIDTH": str(SLOW_WIDTH),
            "FAULTS_SLOW_SECONDS": str(SLOW_SECONDS),
            "FAULTS_POISON_WIDTH": str(POISON_WIDTH),
            "FAULTS_CALLS_FILE": str(calls_file),
            "FAULTS_READY_FILE": str(ready_file),
        },
    )
    with worker_running(
        env=env,
        queue=queue,
        var_dir=var_dir,
        django_db_blocker=django_db_blocker,
        module="tests.faults.worker_launcher",
        extra_args=("--beat", "--schedule", str(var_dir / "celerybeat-schedule")),
        ready_file=ready_file,
    ) as worker:
        yield FaultWorker(
            worker=worker,
            redis=private_redis,
            calls_file=calls_file,
            ready_file=ready_file,
            max_attempts=int(WORKER_SETTINGS["DETECTION_MAX_ATTEMPTS"]),
        )


@pytest.fixture
def on_fault_worker(fault_worker, faults_media_root, settings, transactional_db):
    """Per test: committed rows, the worker's media folder and settings, its broker and queue."""
    settings.MEDIA_ROOT = faults_media_root
    settings.DETECTION_MAX_ATTEMPTS = fault_worker.max_attempts
    with app_broker(fault_worker.redis.url, fault_worker.queue):
        yield fault_worker
