"""The heartbeat's writes: one row per live worker process (its reads: detection.selectors)."""

from __future__ import annotations

import os
import socket

from django.utils import timezone

from detection.models import WorkerHeartbeat


def worker_heartbeat_beat(*, model_name: str = "", model_version: str = "") -> None:
    """This process is alive (and serves this model): upsert its row."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        defaults={"model_name": model_name, "model_version": model_version, "last_seen": now},
        create_defaults={
            "model_name": model_name,
            "model_version": model_version,
            "last_seen": now,
            "started_at": now,
        },
    )


def worker_heartbeat_delete(*, hostname: str | None = None, pid: int | None = None) -> int:
    """Remove a process's row (this one by default), so /health/ stops counting it at once."""
    deleted, _ = WorkerHeartbeat.objects.filter(
        hostname=hostname or socket.gethostname(), pid=pid or os.getpid()
    ).delete()
    return deleted
