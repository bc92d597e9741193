"""The heartbeat's writes: one row per live worker process (its reads: detection.selectors)."""

from __future__ import annotations

import os
import socket

from django.utils import timezone

from detection.model_cards import model_version_cache_clear
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
    # This process's own answer to "which version serves?" (model_cards) is read again now;
    # other processes notice within their cache time.
    model_version_cache_clear()


def worker_heartbeat_delete_dead() -> int:
    """Remove the rows of this host's processes that are gone (a child killed with SIGKILL never
    runs its shutdown hook), so /health/ stops counting them at once rather than after they go
    stale. Returns how many were removed."""
    hostname = socket.gethostname()
    dead = [
        pid
        for pid in WorkerHeartbeat.objects.filter(hostname=hostname).values_list("pid", flat=True)
        if not _process_alive(pid)
    ]
    if not dead:
        return 0
    deleted, _ = WorkerHeartbeat.objects.filter(hostname=hostname, pid__in=dead).delete()
    model_version_cache_clear()
    return deleted


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process with that pid: not ours to judge
    return True


def worker_heartbeat_delete(*, hostname: str | None = None, pid: int | None = None) -> int:
    """Remove a process's row (this one by default), so /health/ stops counting it at once."""
    deleted, _ = WorkerHeartbeat.objects.filter(
        hostname=hostname or socket.gethostname(), pid=pid or os.getpid()
    ).delete()
    model_version_cache_clear()
    return deleted
