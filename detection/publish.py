"""Publishing work for the workers, by task name: the web never imports the worker's modules
(nor, through them, TensorFlow). The tasks themselves are in detection.worker.tasks."""

from __future__ import annotations

from deepfake_site.celery import app

RUN_TASK = "detection.run"
SWEEP_TASK = "detection.sweep"
PURGE_TASK = "detection.purge_expired"
ORPHAN_FILES_TASK = "detection.orphan_files_delete"


def detection_run_publish(*, detection_id: int) -> None:
    """Send the run message for one detection; broker errors are the caller's to handle."""
    app.send_task(RUN_TASK, args=[detection_id])
