"""Worker-process life cycle: the model is loaded once per process, after the fork.

Loading TensorFlow in the parent and forking afterwards hangs the children
(tensorflow/tensorflow#5448, #27074), so nothing here runs at import time: the engine is built on
`worker_process_init`, in each child, or lazily on first use in a process that never forked.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from celery.signals import worker_process_init, worker_process_shutdown
from django.conf import settings
from django.db import close_old_connections

from detection.models import WORKER_HEARTBEAT_SECONDS
from detection.worker.heartbeat import (
    worker_heartbeat_beat,
    worker_heartbeat_delete,
    worker_heartbeat_delete_dead,
)

if TYPE_CHECKING:
    from ml.inference import Engine

logger = logging.getLogger(__name__)

_engine: Engine | None = None
_engine_lock = threading.Lock()
_heartbeat_stop = threading.Event()


def engine_get() -> Engine:
    """The process's inference engine, loaded on first use."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                from ml.inference import Engine

                _engine = Engine.load(
                    settings.ML_MODEL_DIR or None,
                    intra_threads=settings.ML_INTRA_OP_THREADS,
                    inter_threads=settings.ML_INTER_OP_THREADS,
                    # One pixel limit for the upload gate and the model's decoder.
                    max_pixels=settings.DETECTION_MAX_PIXELS,
                    max_faces=settings.DETECTION_MAX_FACES,
                )
                logger.info("Model loaded: %s %s", _engine.name, _engine.version)
    return _engine


def _heartbeat_loop() -> None:
    while not _heartbeat_stop.is_set():
        try:
            engine = _engine
            worker_heartbeat_beat(
                model_name=engine.name if engine else "",
                model_version=engine.version if engine else "",
            )
            worker_heartbeat_delete_dead()
        except Exception:  # a database blip must not kill the worker; the next beat retries
            logger.warning("Heartbeat failed", exc_info=True)
        finally:
            close_old_connections()
        _heartbeat_stop.wait(WORKER_HEARTBEAT_SECONDS)


@worker_process_init.connect
def _on_process_init(**kwargs: object) -> None:
    # Celery's Django fix-up has already dropped the database connections inherited from the
    # parent; each thread here opens its own.
    _heartbeat_stop.clear()
    threading.Thread(target=_heartbeat_loop, name="heartbeat", daemon=True).start()
    try:
        engine_get()
    except Exception:
        # The worker stays up and reports "model not loaded" in /health/; tasks fail visibly.
        logger.exception("Could not load the model")


@worker_process_shutdown.connect
def _on_process_shutdown(**kwargs: object) -> None:
    _heartbeat_stop.set()
    try:
        worker_heartbeat_delete()
    except Exception:  # noqa: BLE001 - shutting down; the row goes stale by itself
        logger.debug("Could not remove heartbeat", exc_info=True)
