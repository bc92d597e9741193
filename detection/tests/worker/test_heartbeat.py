"""The heartbeat's writes: a live process upserts its row; a dead one's row is cleared."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from django.utils import timezone

from detection.models import WorkerHeartbeat
from detection.selectors import worker_heartbeats_fresh
from detection.worker.heartbeat import (
    worker_heartbeat_beat,
    worker_heartbeat_delete,
    worker_heartbeat_delete_dead,
)

pytestmark = pytest.mark.django_db


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_beat_upserts_this_processes_row():
    worker_heartbeat_beat(model_name="m", model_version="m-1")
    worker_heartbeat_beat(model_name="m", model_version="m-2")
    [row] = WorkerHeartbeat.objects.all()
    assert (row.pid, row.model_version) == (os.getpid(), "m-2")
    assert worker_heartbeats_fresh() == [row]
    assert worker_heartbeat_delete() == 1


def test_the_row_of_a_killed_process_on_this_host_is_cleared_at_the_next_beat():
    now = timezone.now()
    host = socket.gethostname()
    dead = WorkerHeartbeat.objects.create(
        hostname=host, pid=_dead_pid(), started_at=now, last_seen=now
    )
    elsewhere = WorkerHeartbeat.objects.create(
        hostname="another-host", pid=dead.pid, started_at=now, last_seen=now
    )
    worker_heartbeat_beat()
    assert worker_heartbeat_delete_dead() == 1
    assert set(WorkerHeartbeat.objects.values_list("id", flat=True)) == {
        elsewhere.id,
        WorkerHeartbeat.objects.get(pid=os.getpid()).id,
    }
