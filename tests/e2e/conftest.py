"""A real Celery worker process on the real broker, against the pytest test database.

The worker is started once per session, after the test database exists, with:
- DATABASE_URL pointing at that test database (rows must be committed: tests use
  `transactional_db` or `live_server`);
- the broker this test process publishes to (Redis: TEST_REDIS_URL / REDIS_URL);
- a queue of its own for this session, so messages left by an earlier run never reach it;
- MEDIA_ROOT shared with the tests (the e2e tests point settings.MEDIA_ROOT at it);
- the shipped model (ml/models/default), or, while that is missing, a throwaway model trained on
  generated images in a temporary folder (slow: about a minute).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

BASE_DIR = Path(django_settings.BASE_DIR)
WORKER_START_TIMEOUT = 240  # TensorFlow import and model load on a busy 2-core machine


def _generated_dataset(root: Path) -> None:
    """Tiny labelled images: enough for `python -m ml train` to produce a loadable model."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    for split in ("train", "val", "test"):
        for label in ("real", "fake"):
            folder = root / "generated" / split / label
            folder.mkdir(parents=True)
            for i in range(12):
                base = rng.integers(0, 255, size=(48, 48, 3), dtype=np.uint8)
                if label == "fake":
                    base[::2, ::2] = 255 - base[::2, ::2]  # a visible artefact pattern
                Image.fromarray(base).save(folder / f"{label}-{i}.jpg", quality=90)


@pytest.fixture(scope="session")
def e2e_model_dir(tmp_path_factory) -> Path:
    from ml import DEFAULT_MODEL_DIR

    if (DEFAULT_MODEL_DIR / "card.json").exists():
        return DEFAULT_MODEL_DIR
    # The shipped model is not there yet: train a throwaway one (report this to the lead).
    root = tmp_path_factory.mktemp("e2e-model")
    _generated_dataset(root / "data")
    out = root / "model"
    result = subprocess.run(
        [sys.executable, "-m", "ml", "train", "--data", str(root / "data"), "--out", str(out),
         "--epochs", "1", "--image-size", "32", "--no-robustness", "--no-augment"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _database_url(settings_dict: dict) -> str:
    assert settings_dict["ENGINE"] == "django.db.backends.postgresql", (
        "The end-to-end tests need PostgreSQL: run them with DATABASE_URL set "
        "(see scripts/test.sh)."
    )
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def e2e_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-media")


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, django_db_blocker, e2e_model_dir, e2e_media_root, tmp_path_factory
):
    from django.db import connection

    from deepfake_site.celery import app
    from detection.models import WorkerHeartbeat

    broker_url = app.conf.broker_url
    assert broker_url.startswith("redis"), (
        f"The end-to-end tests need Redis as the broker (REDIS_URL), not {broker_url!r}."
    )
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    var_dir = tmp_path_factory.mktemp("e2e-var")
    log_path = var_dir / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DJANGO_MEDIA_ROOT": str(e2e_media_root),
        "DJANGO_VAR_DIR": str(var_dir),
        "ML_MODEL_DIR": str(e2e_model_dir),
        "ML_INTRA_OP_THREADS": "1",
        "ML_INTER_OP_THREADS": "1",
        "DATABASE_CONN_MAX_AGE": "0",
        "LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(log_path, "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "deepfake_site", "worker",
         "--concurrency", "1", "--pool", "prefork", "-l", "info", "-Q", queue,
         "-n", f"{queue}@%h", "--without-gossip", "--without-mingle"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # This process publishes to the same session queue (the router reads this at send time).
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue

    def _log_tail() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while True:
            assert process.poll() is None, f"worker exited:\n{_log_tail()}"
            with django_db_blocker.unblock():
                beat = (
                    WorkerHeartbeat.objects.exclude(model_version="").order_by("-last_seen").first()
                )
                connection.close()
            if beat is not None:
                break
            assert time.monotonic() < deadline, f"no worker heartbeat with a model:\n{_log_tail()}"
            time.sleep(1)
        yield {"process": process, "queue": queue, "model_version": beat.model_version,
               "log": log_path}
    finally:
        app.conf.task_default_queue = previous_queue
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


@pytest.fixture
def e2e(celery_worker_process, e2e_media_root, settings, transactional_db):
    """Per test: the shared media folder and committed rows, with the worker running."""
    settings.MEDIA_ROOT = e2e_media_root
    return celery_worker_process


@pytest.fixture(scope="session")
def _live_server_media_url():
    # Settings have MEDIA_URL = None (uploads are private, served only by an owner-checked view),
    # but Django's live server wraps the app in a media handler that parses MEDIA_URL and fails on
    # None with "startswith first arg must be str ... not bytes". A path nothing links to keeps
    # the handler working; the pages still load images through the owner-checked view.
    from django.test import override_settings

    with override_settings(MEDIA_URL="/__live-server-media-unused__/"):
        yield


@pytest.fixture(scope="session")
def live_server(_live_server_media_url, live_server):
    return live_server
