"""Stages: time per image in each step of the pipeline, so the slowest one is visible.

    python -m bench.stages --json OUT [--quick]

One process plays both sides, with the real code of each step and the same faces as the other
sections: the web's upload gate (validate + re-encode), the API requests a client makes (upload
one face, ask for its verdict), the broker round trip (publish a message, a consumer receives it),
the worker's steps (decode, face detection, preprocessing, the model call) and its database
writes (claim the row, save the verdict and faces). The database is a throwaway one: SQLite, or a
private database on the PostgreSQL server named by ``BENCH_DATABASE_URL``. The broker is a
private ``redis-server`` on a spare port when one can be started, and the embedded SQLite broker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import section_args, section_result, section_write, timed_ms
from bench.images import bench_images


def _row(stage: str, side: str, times: list[float], note: str = "") -> list[object]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return [stage, side, round(statistics.median(times), 2), round(p95, 2), len(times), note]


def _django(tmp: Path, database_url: str, broker_url: str) -> None:
    os.environ["DJANGO_VAR_DIR"] = str(tmp / "var")
    os.environ["DJANGO_MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_BROKER_URL"] = broker_url
    os.environ.pop("REDIS_URL", None)
    os.environ["API_THROTTLE_UPLOADS"] = "1000000/min"
    os.environ["API_THROTTLE_UPLOADS_DAILY"] = "1000000/day"
    os.environ["API_THROTTLE_READS"] = "1000000/min"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def _broker_round_trip(url: str, n: int) -> list[float]:
    """Publish a message and time until a consumer on the same broker has it."""
    from kombu import Connection

    from deepfake_site.celery import broker_transport_options

    options = broker_transport_options(url)
    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue(f"bench-{os.getpid()}")
        try:
            times = []
            for i in range(n + 3):
                t0 = time.perf_counter()
                queue.put({"i": i})
                message = queue.get(block=True, timeout=10)
                message.ack()
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1000.0)
            return times
        finally:
            with contextlib.suppress(Exception):
                queue.clear()
            queue.close()


def run(*, n: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from accounts.services import api_token_create
    from detection.models import Detection
    from detection.uploads.validate import image_validate
    from detection.worker import services as worker_services
    from ml.inference import Engine
    from ml.preprocess import fit, load_image

    images = bench_images(n)
    rows = []

    # --- web side ---------------------------------------------------------------------------
    rows.append(_row("upload gate: validate + re-encode", "web", timed_ms(
        lambda b: image_validate(upload=SimpleUploadedFile("f.jpg", b, "image/jpeg")), images)))
    user = get_user_model().objects.create_user(username="bench", password=None)
    _, key = api_token_create(user=user, name="bench")
    client = Client(headers={"Authorization": f"Token {key}"}, HTTP_HOST="127.0.0.1")
    created: list[int] = []

    def api_upload(content: bytes) -> None:
        response = client.post("/api/v1/detections/",
                               {"image": SimpleUploadedFile("f.jpg", content, "image/jpeg")})
        assert response.status_code == 202, response.content[:300]
        created.append(response.json()["detections"][0]["id"])

    rows.append(_row("API: upload one face (POST, all of it)", "web", timed_ms(api_upload, images),
                     "gate + file write + row insert + publish"))
    rows.append(_row("API: ask for a verdict (GET)", "web", timed_ms(
        lambda i: client.get(f"/api/v1/detections/{i}/"), created[:n]), "one client poll"))

    # --- worker side ------------------------------------------------------------------------
    from django.conf import settings

    # The worker's own settings: its threads and limits.
    engine = Engine.load(settings.ML_MODEL_DIR or None, intra_threads=settings.ML_INTRA_OP_THREADS,
                         inter_threads=settings.ML_INTER_OP_THREADS,
                         max_pixels=settings.DETECTION_MAX_PIXELS,
                         max_faces=settings.DETECTION_MAX_FACES)
    detector = engine._detector()
    decoded = [load_image(b, max_pixels=engine.max_pixels) for b in images]
    rows.append(_row("decode (Pillow)", "worker",
                     timed_ms(lambda b: load_image(b, max_pixels=engine.max_pixels), images)))
    import numpy as np

    pixels = [np.asarray(img) for img in decoded]
    rows.append(_row("face detection (MTCNN)", "worker", timed_ms(detector.detect, pixels)))
    rows.append(_row("preprocessing (crop + resize)", "worker",
                     timed_ms(lambda img: fit(img, engine.image_size), decoded)))
    arrays = [fit(img, engine.image_size) for img in decoded]
    rows.append(_row("model call (one face)", "worker", timed_ms(engine.predict_array, arrays)))
    rows.append(_row("engine.predict (all of the above)", "worker",
                     timed_ms(engine.predict, images)))
    prediction = engine.predict(images[0])


    def db_writes(_: object) -> None:
        detection_id = next(ids)
        token = f"bench-{detection_id}"
        from django.utils import timezone

        assert worker_services._claim(detection_id=detection_id, claim_token=token,
                                      now=timezone.now())
        mine = Detection.objects.filter(id=detection_id, status="running", claim_token=token)
        mine.first()
        assert worker_services._verdict_save(detection_id=detection_id, mine=mine,
                                             engine=engine, result=prediction)

    first = len(created)
    for content in images:  # fresh pending rows for the writes (nobody consumes the queue)
        api_upload(content)
    ids = iter(created[first:])
    rows.append(_row("database: claim + verdict + faces", "worker",
                     timed_ms(db_writes, images, warm=0), "the worker's queries for one image"))
    return {"rows": rows, "model": f"{engine.name} {engine.version}"}


def main() -> None:
    args = section_args(__doc__.splitlines()[0]).parse_args()
    n = 20 if args.quick else 100
    from tests.processes import RedisServer, free_port

    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp, \
            contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        server = os.environ.get("BENCH_DATABASE_URL", "")
        if server:
            from bench.e2e import _postgres_database

            database_url = _postgres_database(server, "bench_stages")
            stack.callback(_postgres_database, server, "bench_stages", drop_only=True)
        else:
            database_url = f"sqlite:///{tmp / 'db.sqlite3'}"
        redis_url = ""
        if shutil.which("redis-server"):
            redis = RedisServer(port=free_port())
            redis.start()
            stack.callback(redis.kill)
            redis_url = redis.url
        embedded_url = f"sqla+sqlite:///{tmp / 'broker.sqlite3'}"
        # The web's publishes go to Redis when there is one, else to the embedded broker.
        _django(tmp, database_url, redis_url or embedded_url)
        result = run(n=n)
        rows = result["rows"]
        if redis_url:
            rows.append(_row("broker round trip (Redis)", "both",
                             _broker_round_trip(redis_url, n), "publish -> consumer has it"))
        rows.append(_row("broker round trip (embedded SQLite)", "both",
                         _broker_round_trip(embedded_url, min(n, 30)),
                         "publish -> consumer has it"))
        from django.db import connection

        database = connection.vendor
    slowest = max((r for r in rows if r[1] == "worker" and not r[0].startswith("engine")),
                  key=lambda r: r[2])
    section_write(args.json, section_result(
        section="stages",
        title="Stages: time per image in each step (ms)",
        columns=["stage", "side", "median ms", "p95 ms", "n", "what"],
        rows=rows,
        data={"model": result["model"], "database": database, "slowest_worker_stage": slowest[0]},
        notes=[f"Database: {database}. The slowest worker stage is {slowest[0]} "
               f"({slowest[2]} ms median)."],
    ))


if __name__ == "__main__":
    main()
