"""Celery tasks: thin, receive ids, call one service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import close_old_connections

from detection import services
from detection.publish import ORPHAN_FILES_TASK, PURGE_TASK, RUN_TASK, SWEEP_TASK

# Imported for its signal handlers: every worker process loads the model after the fork.
from detection.worker import engine  # noqa: F401
from detection.worker.services import DetectionRetry, detection_run


@task_prerun.connect
@task_postrun.connect
def _database_connections_checked(task: object = None, **kwargs: object) -> None:
    # Like a web request's start and end: reuse the connection while it is young and healthy,
    # drop it when it is too old or broken (Celery's own closing is limited by
    # CELERY_DB_REUSE_MAX: it opened a new connection for every detection). Not for a task run
    # eagerly inside another process's request or transaction, as Celery's fix-up skips them.
    if task is None or getattr(getattr(task, "request", None), "is_eager", False):
        return
    close_old_connections()


# acks_late + reject_on_worker_lost: a message whose worker died is delivered again; that is safe
# because detection_run claims the row conditionally (one verdict, one model call per claim).
@shared_task(
    bind=True,
    name=RUN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the row's attempts counter (DETECTION_MAX_ATTEMPTS) is the limit
)
def detection_run_task(self, detection_id: int) -> None:
    try:
        # The task id is the claim token: only a redelivery of this same message may take back
        # a row left running by a killed worker.
        detection_run(detection_id=detection_id, claim_token=self.request.id or None)
    except DetectionRetry as exc:
        raise self.retry(exc=exc, countdown=min(5 * (self.request.retries + 1), 60)) from exc


@shared_task(name=SWEEP_TASK, ignore_result=True)
def detection_sweep_task() -> None:
    older_than = dt.timedelta(seconds=settings.DETECTION_STALE_AFTER)
    services.detection_sweep(older_than=older_than)


@shared_task(name=PURGE_TASK, ignore_result=True)
def detection_purge_expired_task() -> None:
    services.detection_purge_expired()


@shared_task(name=ORPHAN_FILES_TASK, ignore_result=True)
def detection_orphan_files_delete_task() -> None:
    older_than = dt.timedelta(seconds=settings.DETECTION_ORPHAN_FILES_AFTER)
    services.detection_orphan_files_delete(older_than=older_than)
