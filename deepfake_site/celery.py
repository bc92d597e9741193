"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")

logger = logging.getLogger("deepfake_site.celery")

# "sqla+sqlite://" URLs (the embedded broker) get our transport: the same one, polling faster.
TRANSPORT_ALIASES["sqla"] = "deepfake_site.broker:EmbeddedTransport"

app = Celery("deepfake_site")
app.config_from_object("django.conf:settings", namespace="CELERY")


def broker_transport_options(url: str) -> dict[str, object]:
    """The transport options for a broker URL (also used by the benchmark's round trip)."""
    from django.conf import settings

    if not url.startswith(("redis://", "rediss://")):
        # kombu's SQLAlchemy transport hands its options to create_engine(), which accepts none
        # of the Redis ones (its polling interval is set in deepfake_site.broker).
        return {"max_retries": 1}
    return {
        "visibility_timeout": settings.CELERY_BROKER_VISIBILITY_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "max_retries": 1,
    }


def _configure() -> None:
    from django.conf import settings

    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Verdicts live in the Detection row; no result backend to run or to fill up.
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        broker_connection_retry_on_startup=True,
        # A publish must fail fast when the broker is down: the row stays pending and the
        # sweeper queues it again later. The publish path is bounded by the connect timeout and
        # the transport's max_retries (kombu Connection.default_channel reads it).
        broker_connection_timeout=settings.REDIS_SOCKET_TIMEOUT,
        broker_transport_options=broker_transport_options(str(settings.CELERY_BROKER_URL)),
        # The worker's consumer and beat, though, wait for the broker to come back: this limit
        # is only theirs, and with 1 a Redis restart of a few seconds shut the worker down
        # (tests/faults/test_worker_faults.py). None: keep retrying, backing off up to 30 s.
        broker_connection_max_retries=None,
        task_publish_retry=False,
        # Celery's Django fix-up closed the database connection before and after every task, so
        # every detection opened a new PostgreSQL connection (a new server process). With a
        # reuse limit it closes them only every 2 x N task signals; between those, the worker's
        # own task_prerun/task_postrun handlers (detection.worker.tasks) apply Django's rules
        # (DATABASE_CONN_MAX_AGE, health checks, a connection broken by an error), as a web
        # request does.
        CELERY_DB_REUSE_MAX=settings.CELERY_DB_REUSE_MAX,
        worker_hijack_root_logger=False,
        beat_schedule={
            "detection-sweep": {
                "task": "detection.sweep",
                "schedule": float(settings.DETECTION_SWEEP_INTERVAL),
            },
            "detection-purge-expired": {
                "task": "detection.purge_expired",
                "schedule": 3600.0,
            },
            "detection-orphan-files": {
                "task": "detection.orphan_files_delete",
                "schedule": 3600.0,
            },
        },
    )


_configure()
# By name: the web process never imports the worker's modules (it publishes by task name); the
# worker's loader imports this one at start-up.
app.conf.imports = ("detection.worker.tasks",)


def broker_description(url: str) -> str:
    """The broker URL without credentials, for logs and /health/."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


@app.on_after_finalize.connect
def _log_broker(sender: Celery, **kwargs: object) -> None:
    logger.info("Celery broker: %s", broker_description(sender.conf.broker_url))


# Detection ids travel in a message header, so worker log lines carry the same ids as the web's.
@before_task_publish.connect
def _propagate_ids(headers: dict | None = None, **kwargs: object) -> None:
    from deepfake_site.logging import request_id_var

    if headers is not None:
        headers.setdefault("request_id", request_id_var.get())


@task_prerun.connect
def _bind_ids(task: object = None, args: tuple | None = None, **kwargs: object) -> None:
    from deepfake_site.logging import detection_id_var, request_id_var

    request = getattr(task, "request", None)
    # A worker turns custom message headers into request attributes; Task.apply() (eager runs)
    # keeps them in request.headers only.
    headers = getattr(request, "headers", None) or {}
    request_id_var.set(getattr(request, "request_id", None) or headers.get("request_id") or "-")
    detection_id_var.set(str(args[0]) if args else "-")


@task_postrun.connect
def _unbind_ids(**kwargs: object) -> None:
    from deepfake_site.logging import detection_id_var, request_id_var

    request_id_var.set("-")
    detection_id_var.set("-")
