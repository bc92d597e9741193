"""Model: the same model file in one process, called the seeds' way and the engine's ways.

    python -m bench.model --json OUT [--quick] [--threads 1]

- the seeds' pattern: per request, decode and resize one image, then Keras ``model.predict`` on
  a batch of one;
- the engine's compiled call on one prepared face, and on batches of 8 and 32 (per image);
- the same compiled call through XLA (``jit_compile``), measured to decide whether to use it;
- the compute floor: the model's floating-point operations per image (TensorFlow's graph
  profiler) divided by the dense matrix-multiply rate measured in this run with the same
  threads, and each call's ratio to it;
- the bare engine: ``Engine.predict`` end to end (decode, face detection, crops, model,
  calibration) per image and images per second, on the same faces the end-to-end section
  uploads: the yardstick of the pipeline's throughput target.

Threads: the worker's default (``ML_INTRA_OP_THREADS`` / ``ML_INTER_OP_THREADS`` = 1).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench import section_args, section_result, section_write, timed_ms
from bench.images import bench_images


def _median_ms(fn, items, *, per: int = 1) -> float:
    return statistics.median(timed_ms(fn, items, per=per))


def model_flops(model, image_size: int) -> int:
    """Floating-point operations of one image through ``model`` (graph profiler count)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, image_size, image_size, 3], tf.float32))
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(model_analyzer.profile(fn.graph, options=options).total_float_ops)


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """Dense float32 matrix-multiply rate of this process (GFLOP/s), median of ``repeats``."""
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    mm = tf.function(tf.matmul)
    for _ in range(3):
        mm(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a, b).numpy()
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9


def run(*, n: int, threads: int) -> dict:
    from PIL import Image

    from ml.inference import Engine, compiled_model_fn
    from ml.preprocess import DEFAULT_MAX_PIXELS, prepare

    engine = Engine.load(None, intra_threads=threads, inter_threads=threads,
                         max_pixels=DEFAULT_MAX_PIXELS)
    size = engine.image_size
    model = engine._model
    raw = bench_images(n)
    arrays = [prepare(b, size, max_pixels=DEFAULT_MAX_PIXELS) for b in raw]

    def seeds_request(content: bytes) -> float:
        import io

        img = Image.open(io.BytesIO(content)).convert("RGB").resize((size, size))
        x = np.expand_dims(np.asarray(img, np.float32), 0)
        return float(model.predict(x, verbose=0)[0, 0])

    def batches(b: int) -> list[np.ndarray]:
        return [np.stack([arrays[(i + k) % n] for k in range(b)]) for i in range(0, n, b)]

    figures: dict[str, float] = {}
    figures["seeds_model_predict"] = _median_ms(seeds_request, raw[: min(n, 60)])
    figures["engine_single"] = _median_ms(engine.predict_array, arrays)
    for b in (8, 32):
        figures[f"engine_batch{b}"] = _median_ms(engine.predict_arrays, batches(b) * 4, per=b)
    xla = compiled_model_fn(model, size, jit_compile=True)
    figures["xla_single"] = _median_ms(lambda a: xla(a[None]).numpy(), arrays)
    for b in (8, 32):
        figures[f"xla_batch{b}"] = _median_ms(lambda x: xla(x).numpy(), batches(b) * 4, per=b)
    figures["engine_predict_end_to_end"] = _median_ms(engine.predict, raw)

    flops = model_flops(model, size)
    gflops = matmul_gflops()
    floor_ms = flops / (gflops * 1e9) * 1000.0
    return {"figures": figures, "flops": flops, "matmul_gflops": gflops, "floor_ms": floor_ms,
            "model": f"{engine.name} {engine.version}", "threads": threads, "n": n}


def main() -> None:
    parser = section_args(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    res = run(n=40 if args.quick else 200, threads=args.threads)
    f, floor = res["figures"], res["floor_ms"]
    seeds = f["seeds_model_predict"]
    labels = {
        "seeds_model_predict": "seeds' pattern: decode + resize + model.predict, per request",
        "engine_single": "engine compiled call, one face",
        "engine_batch8": "engine compiled call, batch of 8 (per image)",
        "engine_batch32": "engine compiled call, batch of 32 (per image)",
        "xla_single": "XLA compiled call, one face",
        "xla_batch8": "XLA compiled call, batch of 8 (per image)",
        "xla_batch32": "XLA compiled call, batch of 32 (per image)",
        "engine_predict_end_to_end": "Engine.predict end to end (decode + faces + model)",
    }
    rows = [[labels[k], round(v, 3), round(seeds / v, 1), round(v / floor, 2),
             round(1000.0 / v, 1)] for k, v in f.items()]
    rows.append(["compute floor: FLOPs / measured matmul rate", round(floor, 3),
                 round(seeds / floor, 1), 1.0, round(1000.0 / floor, 1)])
    best_batched = min(f["engine_batch8"], f["engine_batch32"])
    targets = [
        {"target": "engine >= 12x faster per image than the seeds' model.predict pattern",
         "measured": f"{seeds / f['engine_single']:.1f}x (compiled call, one face)",
         "met": seeds / f["engine_single"] >= 12},
        {"target": "model call within 1.3x of the compute floor, one image",
         "measured": f"{f['engine_single'] / floor:.2f}x", "met": f["engine_single"] / floor
         <= 1.3},
        {"target": "model call within 1.1x of the compute floor, batched",
         "measured": f"{best_batched / floor:.2f}x", "met": best_batched / floor <= 1.1},
    ]
    section_write(args.json, section_result(
        section="model",
        title=f"Model: {res['model']}, one process, {res['threads']} thread(s)",
        columns=["path", "ms per image", "x faster than seeds", "x compute floor", "images/s"],
        rows=rows,
        targets=targets,
        data=res,
        notes=[
            f"The model does {res['flops'] / 1e6:.0f} MFLOPs per image; this run's dense "
            f"float32 matmul rate was {res['matmul_gflops']:.0f} GFLOP/s, so the floor is "
            f"{floor:.2f} ms. The bare engine's images/s (Engine.predict end to end) is the "
            "yardstick of the end-to-end throughput target.",
        ],
    ))


if __name__ == "__main__":
    main()
