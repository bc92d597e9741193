"""Test-only: a real Celery worker whose model misbehaves on marked images.

    python -m tests.faults.worker_launcher worker -Q queue ...   (arguments as for `celery worker`)

The production code has no test hooks; instead this launcher patches `ml.inference.Engine.predict`
in the worker's main process before the pool forks, so every prefork child inherits the patch:

- an image FAULTS_SLOW_WIDTH pixels wide sleeps FAULTS_SLOW_SECONDS before the real prediction
  (time to kill -9 the child mid-inference);
- an image FAULTS_POISON_WIDTH pixels wide raises, like a model that chokes on it.

Every predict() call appends "<pid> <width>" to FAULTS_CALLS_FILE (the model calls, counted across
processes), and each pool child writes "<pid> <model version>" to FAULTS_READY_FILE once its model
is loaded (the test waits for it, and reads the child's pid to kill it).
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path


class PoisonImageError(RuntimeError):
    """What the patched model raises on a poison image."""


def _width(image: object) -> int:
    from PIL import Image

    if isinstance(image, bytes | bytearray):
        with Image.open(io.BytesIO(image)) as img:
            return img.width
    return getattr(image, "width", 0)


def _record(path: str, line: str) -> None:
    if path:
        # O_APPEND writes of a short line are atomic between processes.
        with open(path, "a") as fh:
            fh.write(line + "\n")


def patch_engine() -> None:
    from ml.inference import Engine

    original = Engine.predict
    slow_width = int(os.environ.get("FAULTS_SLOW_WIDTH", "0"))
    slow_seconds = float(os.environ.get("FAULTS_SLOW_SECONDS", "0"))
    poison_width = int(os.environ.get("FAULTS_POISON_WIDTH", "0"))
    calls_file = os.environ.get("FAULTS_CALLS_FILE", "")

    def predict(self, image, *args, **kwargs):
        width = _width(image)
        _record(calls_file, f"{os.getpid()} {width}")
        if poison_width and width == poison_width:
            raise PoisonImageError(f"the model chokes on this {width}px image (test)")
        if slow_width and width == slow_width:
            time.sleep(slow_seconds)
        return original(self, image, *args, **kwargs)

    Engine.predict = predict


def _announce_ready(**kwargs: object) -> None:
    """worker_process_init, in each pool child: load the model, then say so with the pid."""
    from detection.worker.engine import engine_get

    path = os.environ.get("FAULTS_READY_FILE", "")
    engine = engine_get()
    if path:
        tmp = Path(f"{path}.{os.getpid()}")
        tmp.write_text(f"{os.getpid()} {engine.version}")
        tmp.replace(path)


def main(argv: list[str]) -> None:
    from celery.signals import worker_process_init

    patch_engine()
    worker_process_init.connect(_announce_ready, weak=False)

    from deepfake_site.celery import app

    app.worker_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
