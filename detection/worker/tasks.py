"""Celery tasks: thin, receive ids, call one service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

# Imported for its signal handlers: every worker process loads the model after the fork.
from detection import worker  # noqa: F401


# acks_late + reject_on_worker_lost: a message whose worker died is delivered again; that is safe
# because detection_run claims the row conditionally (one verdict, one model call per claim).
@shared_task(
    bind=True,
    name="detection.run",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the row's attempts counter (DETECTION_MAX_ATTEMPTS) is the limit
)
def detection_run_task(self, detection_id: int) -> None:
    from detection.services import DetectionRetry, detection_run

    try:
        # The task id is the claim token: only a redelivery of this same message may take back
        # a row left running by a killed worker.
        detection_run(detection_id=detection_id, claim_token=self.request.id or None)
    except DetectionRetry as exc:
        raise self.retry(exc=exc, countdown=min(5 * (self.request.retries + 1), 60)) from exc


@shared_task(name="detection.sweep", ignore_result=True)
def detection_sweep_task() -> None:
    from detection.services import detection_sweep

    detection_sweep(older_than=dt.timedelta(seconds=settings.DETECTION_STALE_AFTER))


@shared_task(name="detection.purge_expired", ignore_result=True)
def detection_purge_expired_task() -> None:
    from detection.services import detection_purge_expired

    detection_purge_expired()
