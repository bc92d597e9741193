"""Real processes for tests: a Celery worker on the pytest test database, a private Redis.

Shared by tests/e2e (the happy path) and tests/faults (kill -9, broker down, poison images).
Everything started here is stopped by the context managers, also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT = 240  # TensorFlow import and model load on a busy 2-core machine

_model_dir: Path | None = None


# --- the model ------------------------------------------------------------------------------


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


def model_dir_get(tmp_path_factory) -> Path:
    """The shipped model, or (while it is missing) a throwaway one, trained once per session."""
    global _model_dir
    from ml import DEFAULT_MODEL_DIR

    if (DEFAULT_MODEL_DIR / "card.json").exists():
        return DEFAULT_MODEL_DIR
    if _model_dir is not None:
        return _model_dir
    root = tmp_path_factory.mktemp("test-model")
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
    _model_dir = out
    return out


# --- helpers --------------------------------------------------------------------------------


def database_url(settings_dict: dict) -> str:
    """A URL for the pytest test database, for processes the tests start."""
    assert settings_dict["ENGINE"] == "django.db.backends.postgresql", (
        "Tests with a real worker need PostgreSQL: run them with DATABASE_URL set "
        "(see scripts/test.sh)."
    )
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """Direct children of a process, from /proc (no psutil)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def wait_for(predicate, *, timeout: float, interval: float = 0.3, what: str = "condition"):
    """Poll until `predicate()` is truthy; returns its value, fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


def _stop(process: subprocess.Popen, *, grace: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- a private Redis ------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A throwaway redis-server on its own port: tests may kill it, never the shared one."""

    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        assert shutil.which("redis-server"), "redis-server is needed for the fault tests"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def answers() -> bool:
            assert self.process.poll() is None, "redis-server exited"
            try:
                return bool(self.client().ping())
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_for(answers, timeout=20, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """kill -9: no shutdown, no save, like a crashed or unreachable broker."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


# --- a Celery worker ------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    queue: str
    log: Path
    env: dict[str, str] = field(repr=False)
    model_version: str = ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def worker_env(
    *,
    database: dict,
    broker_url: str,
    queue: str,
    media_root: Path,
    var_dir: Path,
    model_dir: Path,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(database),
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DJANGO_MEDIA_ROOT": str(media_root),
        "DJANGO_VAR_DIR": str(var_dir),
        "ML_MODEL_DIR": str(model_dir),
        "ML_INTRA_OP_THREADS": "1",
        "ML_INTER_OP_THREADS": "1",
        "DATABASE_CONN_MAX_AGE": "0",
        "LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


@contextlib.contextmanager
def worker_running(
    *,
    env: dict[str, str],
    queue: str,
    var_dir: Path,
    django_db_blocker,
    module: str | None = None,
    extra_args: tuple[str, ...] = (),
    ready_file: Path | None = None,
    node_name: str | None = None,
) -> Iterator[WorkerProcess]:
    """One prefork worker (concurrency 1) reading `queue`; yields once a child of THIS worker
    has written a heartbeat with a loaded model (or, when given, once `ready_file` exists: a
    launcher may write it sooner than the next heartbeat). `module` runs a launcher module
    instead of `celery -A deepfake_site`; `node_name` (-n) tells several workers on one queue
    apart, as on several hosts."""
    from django.db import connection

    from detection.models import WorkerHeartbeat

    log_path = var_dir / "worker.log"
    args = ["worker", "--concurrency", "1", "--pool", "prefork", "-l", "info", "-Q", queue,
            "-n", node_name or f"{queue}@%h", "--without-gossip", "--without-mingle", *extra_args]
    command = [sys.executable, "-m", module] if module else [
        sys.executable, "-m", "celery", "-A", "deepfake_site"
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*command, *args],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = WorkerProcess(process=process, queue=queue, log=log_path, env=env)
        try:

            def loaded_heartbeat() -> str:
                assert process.poll() is None, f"worker exited:\n{worker.log_tail()}"
                if ready_file is not None:
                    # "<pid> <model version>", written by the launcher after the model loaded.
                    text = ready_file.read_text() if ready_file.exists() else ""
                    return text.split()[1] if len(text.split()) == 2 else ""
                with django_db_blocker.unblock():
                    beat = (
                        WorkerHeartbeat.objects.filter(pid__in=child_pids(process.pid))
                        .exclude(model_version="")
                        .first()
                    )
                    connection.close()
                return beat.model_version if beat else ""

            try:
                worker.model_version = wait_for(
                    loaded_heartbeat, timeout=WORKER_START_TIMEOUT, interval=1,
                    what="a worker heartbeat with a model",
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{worker.log_tail()}") from None
            yield worker
        finally:
            _stop(process, grace=30)


# --- a web server ---------------------------------------------------------------------------


@dataclass
class WebServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def handler_pids(self) -> list[int]:
        """The processes that handle requests: gunicorn's workers, or the server itself when it
        has no children (runserver --noreload)."""
        return child_pids(self.process.pid) or [self.process.pid]


def http_get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 30):
    """(status, headers, body) of one GET; error statuses are returned, not raised."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@contextlib.contextmanager
def web_server_running(
    *, command: str, env: dict[str, str], log_path: Path, port: int | None = None
) -> Iterator[WebServer]:
    """A web server started from a shell command line, as honcho runs a Procfile line ($PORT is
    set); yields once it answers HTTP on 127.0.0.1:$PORT."""
    import urllib.error

    port = port or free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=BASE_DIR,
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = WebServer(process=process, port=port, log=log_path)
        try:

            def answers() -> bool:
                assert process.poll() is None, f"web server exited:\n{server.log_tail()}"
                try:
                    http_get(f"{server.url}/privacy/", timeout=5)
                except (OSError, urllib.error.URLError):
                    return False
                return True

            wait_for(answers, timeout=60, interval=0.3, what=f"a web server on port {port}")
            yield server
        finally:
            _stop(process, grace=15)
