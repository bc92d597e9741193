"""End to end: the processes `make run` starts, driven by API clients, and the worker's memory.

    python -m bench.e2e --json OUT [--quick] [--setups redis,embedded] [--clients 1,4,8,16]

For each setup it starts, in a throwaway folder, exactly the web and worker lines of
``Procfile.dev`` (gunicorn and the Celery worker with its beat), plus what the setup needs:

- ``redis``: a private ``redis-server`` on a spare port (never the machine's own), and
  PostgreSQL when ``BENCH_DATABASE_URL`` names a server (a private database ``bench_e2e`` is
  created there and dropped after), else SQLite;
- ``embedded``: the first-run setup, SQLite and the embedded SQLite broker.

Then 1, 4, 8 and 16 concurrent clients (one user and API token each, loopback only) each upload
single faces and poll their verdict, one image at a time. Per level: upload-to-verdict p50 / p95 /
p99 as the client saw it (upload sent to the poll that saw the verdict), the same from the row's
own times (created_at to finished_at: no polling delay), images per second, errors and lost
uploads (accepted, never finished). Every level is bounded in images and in time.

Memory (the redis setup): resident memory of the worker's processes once the model is loaded,
and again after at least 1,000 detections.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import BASE_DIR, section_args, section_result, section_write
from bench.images import bench_images
from tests.processes import RedisServer, child_pids, free_port, wait_for

# How a client gets its verdict (BENCH_CLIENT):
# - "upload-wait" (default): the upload itself waits for the verdict (POST ...?wait=), one request;
# - "wait": upload, then one GET ...?wait= (asked again after a timed-out wait);
# - "poll": upload, then a GET every BENCH_POLL seconds, as clients did before the API could wait.
CLIENT = os.environ.get("BENCH_CLIENT", "upload-wait")
WAIT_SECONDS = 30
POLL_SECONDS = float(os.environ.get("BENCH_POLL", "0.05"))
CLIENT_NOTES = {
    "upload-wait": f"each client's upload waits for its verdict (POST ?wait={WAIT_SECONDS})",
    "wait": f"each client uploads, then waits in one GET ?wait={WAIT_SECONDS}",
    "poll": f"each client uploads, then polls every {int(POLL_SECONDS * 1000)} ms",
}
LEVEL_SECONDS = 150  # no level runs longer than this
GRACE_SECONDS = 60  # after a level, how long an accepted upload may still take before it is lost
START_SECONDS = 300  # TensorFlow import and model load on a busy 2-core machine
MEMORY_DETECTIONS = 1000


# --- the stack ------------------------------------------------------------------------------


def procfile_commands() -> dict[str, str]:
    """The Procfile.dev lines (name -> command), the same ones `make run` starts."""
    commands = {}
    for line in (BASE_DIR / "Procfile.dev").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def _postgres_database(server_url: str, name: str, *, drop_only: bool = False) -> str:
    """(Re)create database `name` on the server of `server_url`; returns its URL."""
    import psycopg

    parts = urlsplit(server_url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')
    return parts._replace(path=f"/{name}").geturl()


@dataclass
class Stack:
    setup: str
    root: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def worker_rss_mb(self) -> dict[str, float]:
        """Resident memory of the Celery main process and of each pool child (MB)."""
        main = self.processes["worker"].pid
        out = {"main": _rss_mb(main)}
        for i, pid in enumerate(child_pids(main), start=1):
            out[f"child{i}"] = _rss_mb(pid)
        return out


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time used so far by the web's processes, the worker's and this client process."""
    tick = os.sysconf("SC_CLK_TCK")

    def tree(pid: int) -> float:
        total = 0.0
        for p in [pid, *child_pids(pid)]:
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return total

    own = os.times()
    return {"web": tree(stack.processes["web"].pid),
            "worker": tree(stack.processes["worker"].pid),
            "clients": own.user + own.system}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=600,
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


@contextlib.contextmanager
def stack_running(setup: str, *, clients: int) -> Iterator[Stack]:
    """Web and worker from Procfile.dev (+ a private Redis for "redis"), ready to serve."""
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "DJANGO_VAR_DIR": str(root / "var"),
            "DJANGO_MEDIA_ROOT": str(root / "media"),
            # Clients upload far more than a person would; the budget is not what is measured.
            "API_THROTTLE_UPLOADS": "1000000/min",
            "API_THROTTLE_UPLOADS_DAILY": "1000000/day",
            "API_THROTTLE_READS": "1000000/min",
            "LOG_JSON": "false",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            env.pop(name, None)
        if setup == "redis":
            redis = RedisServer(port=free_port())
            redis.start()
            stack.callback(redis.kill)
            env["REDIS_URL"] = redis.url
            server = os.environ.get("BENCH_DATABASE_URL", "")
            if server:
                env["DATABASE_URL"] = _postgres_database(server, "bench_e2e")
                stack.callback(_postgres_database, server, "bench_e2e", drop_only=True)
        elif setup != "embedded":
            raise SystemExit(f"unknown setup {setup!r}")
        _manage(env, "migrate", "--noinput", "-v", "0")
        keys = subprocess.run(
            [sys.executable, "-m", "bench.users", str(clients)], cwd=BASE_DIR, env=env,
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout
        result = Stack(setup=setup, root=root, env=env, port=free_port(),
                       tokens=json.loads(keys))
        commands = procfile_commands()
        for name in ("web", "worker"):
            log = open(root / f"{name}.log", "w")
            stack.callback(log.close)
            process = subprocess.Popen(
                ["bash", "-c", f"exec {commands[name]}"], cwd=BASE_DIR,
                env={**env, "PORT": str(result.port)}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            result.processes[name] = process
            stack.callback(_stop, process)

        def healthy() -> bool:
            for name, process in result.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited:\n{result.log_tail(name)}")
            try:
                status, _ = _request(result, "GET", "/health/")
            except OSError:
                return False
            return status == 200

        try:
            wait_for(healthy, timeout=START_SECONDS, interval=1, what="/health/ to answer 200")
        except AssertionError as exc:
            raise SystemExit(f"{exc}\n{result.log_tail('worker')}") from None
        try:
            yield result
        finally:
            for name in result.processes:
                _stop(result.processes[name])
                logs = BASE_DIR / "var" / "bench" / "logs"
                logs.mkdir(parents=True, exist_ok=True)
                log = root / f"{name}.log"
                if log.exists():  # kept for a look after the run; the folder is deleted
                    shutil.copyfile(log, logs / f"{setup}-{name}.log")


def _stop(process: subprocess.Popen) -> None:
    import signal

    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- clients --------------------------------------------------------------------------------


def _request(stack: Stack, method: str, path: str, *, token: str | None = None,
             body: bytes | None = None, content_type: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(stack.host, stack.port, timeout=60)
    try:
        headers = {"Authorization": f"Token {token}"} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _unique(jpeg: bytes) -> bytes:
    """The JPEG with a random comment segment after its start marker: other bytes, the same
    pixels. The service reuses the verdict of bytes a user checked before, and a benchmark that
    sends its faces again and again must measure the model, not that shortcut."""
    body = uuid.uuid4().hex.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def _multipart(images: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for i, content in enumerate(map(_unique, images)):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="face{i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            + content + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}")


def upload(stack: Stack, token: str, images: list[bytes], *, wait: int = 0) -> list[dict]:
    """Upload images in one request (waiting up to `wait` s for the verdicts); returns the
    detections as the API answered, each with its API `path` (empty: refused)."""
    body, content_type = _multipart(images)
    query = f"?wait={wait}" if wait else ""
    status, raw = _request(stack, "POST", f"/api/v1/detections/{query}", token=token,
                           body=body, content_type=content_type)
    if status not in (200, 202):
        return []
    items = json.loads(raw)["detections"]
    return [{**d, "path": urlsplit(d["url"]).path} for d in items]


@dataclass
class Outcome:
    client_ms: float | None = None  # upload sent -> the poll that saw the verdict
    row_ms: float | None = None  # the row's created_at -> finished_at
    status: str = ""
    error: str = ""


def _seconds(value: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _one(stack: Stack, token: str, image: bytes, deadline: float) -> Outcome:
    t0 = time.perf_counter()
    try:
        items = upload(stack, token, [image],
                       wait=WAIT_SECONDS if CLIENT == "upload-wait" else 0)
    except OSError as exc:
        return Outcome(error=f"upload: {type(exc).__name__}")
    if not items:
        return Outcome(error="upload refused")
    row = items[0]
    query = f"?wait={WAIT_SECONDS}" if CLIENT != "poll" else ""
    while row.get("status") not in ("done", "failed"):
        if time.monotonic() > deadline:
            return Outcome(status="accepted", error="lost")
        if CLIENT == "poll":
            time.sleep(POLL_SECONDS)
        try:
            status, raw = _request(stack, "GET", items[0]["path"] + query, token=token)
        except OSError as exc:
            return Outcome(error=f"poll: {type(exc).__name__}", status="accepted")
        if status != 200:
            return Outcome(error=f"poll answered {status}", status="accepted")
        row = json.loads(raw)
    return Outcome(
        client_ms=(time.perf_counter() - t0) * 1000.0,
        row_ms=(_seconds(row["finished_at"]) - _seconds(row["created_at"])) * 1000.0,
        status=row["status"],
        error="" if row["status"] == "done" else "verdict failed",
    )


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def level_run(stack: Stack, *, clients: int, per_client: int, images: list[bytes]) -> dict:
    """`clients` threads, each uploading `per_client` single faces one after another."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop_uploading = time.monotonic() + LEVEL_SECONDS

    def client(i: int) -> None:
        for j in range(per_client):
            if time.monotonic() > stop_uploading:
                return
            image = images[(i * per_client + j) % len(images)]
            out = _one(stack, stack.tokens[i], image, stop_uploading + GRACE_SECONDS)
            with lock:
                outcomes.append(out)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    cpu0 = cpu_seconds(stack)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu1 = cpu_seconds(stack)
    done = [o for o in outcomes if o.status == "done"]
    cpu_ms = {k: round((cpu1[k] - cpu0[k]) * 1000.0 / max(1, len(done)), 1) for k in cpu0}
    client_ms = [o.client_ms for o in done]
    row_ms = [o.row_ms for o in done]
    return {
        "clients": clients,
        "images": len(outcomes),
        "verdicts": len(done),
        "wall_s": round(wall, 2),
        "images_per_s": round(len(done) / wall, 2) if wall else None,
        "p50_ms": _percentile(client_ms, 0.50),
        "p95_ms": _percentile(client_ms, 0.95),
        "p99_ms": _percentile(client_ms, 0.99),
        "row_p50_ms": _percentile(row_ms, 0.50),
        "row_p99_ms": _percentile(row_ms, 0.99),
        "mean_ms": round(statistics.fmean(client_ms), 1) if client_ms else None,
        "errors": sum(1 for o in outcomes if o.error and o.error != "lost"),
        "lost": sum(1 for o in outcomes if o.error == "lost"),
        "error_kinds": sorted({o.error for o in outcomes if o.error}),
        "cpu_ms_per_image": cpu_ms,
    }


def batch_run(stack: Stack, images: list[bytes], *, size: int = 10) -> dict:
    """One request with `size` faces (a first user's batch), each verdict awaited the way the
    clients wait: the time from sending the upload to the last verdict."""
    token = stack.tokens[-1]
    t0 = time.perf_counter()
    items = upload(stack, token, images[:size],
                   wait=WAIT_SECONDS if CLIENT == "upload-wait" else 0)
    if not items:
        return {"images": size, "error": "upload refused"}
    statuses = []
    query = f"?wait={WAIT_SECONDS}" if CLIENT != "poll" else ""
    for item in items:
        row, deadline = item, time.monotonic() + 120
        while row.get("status") not in ("done", "failed") and time.monotonic() < deadline:
            if CLIENT == "poll":
                time.sleep(POLL_SECONDS)
            status, raw = _request(stack, "GET", item["path"] + query, token=token)
            row = json.loads(raw) if status == 200 else {}
        if row.get("status") in ("done", "failed"):
            statuses.append(row["status"])
    return {"images": size, "to_last_verdict_ms": round((time.perf_counter() - t0) * 1000, 1),
            "done": statuses.count("done"), "unfinished": size - len(statuses)}


def memory_run(stack: Stack, images: list[bytes], *, already: int) -> dict:
    """Worker RSS after the model loaded (now), then after MEMORY_DETECTIONS detections in all."""
    before = stack.worker_rss_mb()
    token = stack.tokens[0]
    paths: list[dict] = []
    want = max(0, MEMORY_DETECTIONS - already)
    batch = 20  # DETECTION_MAX_FILES_PER_REQUEST: the fastest honest way to queue a thousand
    while len(paths) < want:
        chunk = [images[(len(paths) + k) % len(images)] for k in range(batch)]
        got = upload(stack, token, chunk)
        if not got:
            raise SystemExit(f"memory run: upload refused\n{stack.log_tail('web')}")
        paths.extend(got)
    deadline = time.monotonic() + 600
    unfinished = len(paths)
    while unfinished and time.monotonic() < deadline:
        time.sleep(2)
        unfinished = sum(_count(stack, token, status) for status in ("pending", "running"))
    after = stack.worker_rss_mb()
    return {"detections": already + len(paths), "unfinished": unfinished,
            "rss_mb_loaded": before, "rss_mb_after": after}


def _count(stack: Stack, token: str, status: str) -> int:
    code, raw = _request(stack, "GET", f"/api/v1/detections/?status={status}", token=token)
    if code != 200:
        raise SystemExit(f"memory run: the API list answered {code}")
    return int(json.loads(raw)["count"])


# --- the section ----------------------------------------------------------------------------


def setup_run(setup: str, levels: list[int], *, per_client: int, memory: bool) -> dict:
    images = bench_images(200)
    with stack_running(setup, clients=max(levels)) as stack:
        # Warm-up: every code path once (first requests import, first model calls trace).
        for token in stack.tokens[:2]:
            _one(stack, token, images[0], time.monotonic() + 60)
        results = []
        for clients in levels:
            n = per_client if clients > 1 else per_client * 2
            results.append(level_run(stack, clients=clients, per_client=n, images=images))
            print(f"  {setup}: {results[-1]}", file=sys.stderr, flush=True)
        out = {"setup": setup, "database": _database_kind(stack.env), "levels": results,
               "batch10": batch_run(stack, images)}
        print(f"  {setup}: batch of 10: {out['batch10']}", file=sys.stderr, flush=True)
        if memory:
            done = sum(r["images"] for r in results) + 2
            out["memory"] = memory_run(stack, images, already=done)
        return out


def _database_kind(env: dict[str, str]) -> str:
    return "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite"


def main() -> None:
    parser = section_args(__doc__.splitlines()[0])
    parser.add_argument("--setups", default="redis,embedded")
    parser.add_argument("--clients", default="1,4,8,16")
    parser.add_argument("--per-client", type=int, default=0,
                        help="images per client per level (default 12; --quick 4)")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    per_client = args.per_client or (4 if args.quick else 12)
    runs = []
    notes = []
    setups = args.setups.split(",")
    if "redis" in setups and not shutil.which("redis-server"):
        setups.remove("redis")  # a fresh machine may not have it; the embedded setup still runs
        notes.append("The Redis setup was not run: no redis-server on this machine "
                     "(apt-get install redis-server).")
    for setup in setups:
        runs.append(setup_run(setup, levels, per_client=per_client,
                              memory=setup == "redis"))
    rows = [
        [r["setup"], r["database"], lv["clients"], lv["verdicts"], lv["images_per_s"],
         lv["p50_ms"], lv["p95_ms"], lv["p99_ms"], lv["row_p50_ms"], lv["errors"], lv["lost"],
         "/".join(str(lv["cpu_ms_per_image"][k]) for k in ("web", "worker", "clients"))]
        for r in runs for lv in r["levels"]
    ]
    sections = [section_result(
        section="e2e",
        title="End to end: API clients upload single faces and wait for each verdict",
        columns=["setup", "database", "clients", "verdicts", "images/s", "p50 ms", "p95 ms",
                 "p99 ms", "row p50 ms", "errors", "lost", "CPU ms/image web/worker/clients"],
        rows=rows,
        data={"runs": runs, "client": CLIENT, "wait_seconds": WAIT_SECONDS,
              "poll_seconds": POLL_SECONDS if CLIENT == "poll" else None},
        notes=[
            "Web and worker are the Procfile.dev lines `make run` starts, on one 2-core box "
            "with the clients. p50/p95/p99: upload sent to the answer with the verdict ("
            + CLIENT_NOTES[CLIENT]
            + "); row p50: the row's own created_at to finished_at, without the upload's "
            "transfer or the answer.",
            *notes,
        ],
    )]
    batches = "; ".join(f"{r['setup']} {r['batch10'].get('to_last_verdict_ms')} ms" for r in runs)
    sections[0]["notes"].append(f"A batch of ten faces in one upload, to its last verdict: "
                                f"{batches}.")
    memory = [r["memory"] for r in runs if "memory" in r]
    if memory:
        m = memory[0]
        loaded = m["rss_mb_loaded"]
        after = m["rss_mb_after"]
        sections.append(section_result(
            section="memory",
            title="Memory: worker resident memory (MB)",
            columns=["process", "model loaded", f"after {m['detections']} detections",
                     "growth"],
            rows=[[name, loaded.get(name), after.get(name),
                   None if loaded.get(name) is None or after.get(name) is None
                   else round(after[name] - loaded[name], 1)]
                  for name in sorted(set(loaded) | set(after))],
            data=m,
        ))
    section_write(args.json, {"sections": sections})


if __name__ == "__main__":
    main()
