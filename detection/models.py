from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per live worker process: proves a worker answers and which model it serves.

    Kept in the database rather than asked over the broker, because the embedded SQLite broker
    has no broadcast channel for `celery inspect ping`.
    """

    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hostname", "pid"], name="heartbeat_unique_process")
        ]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"
