"""Per-image latency: the engine's compiled call vs Keras ``model.predict`` on the same model.

``python -m ml benchmark [--model DIR] [--n 100] [--images FILE...]`` prints, in one run:
  - model.predict(x[None]) per image (the slow Keras path the engine avoids),
  - the engine's compiled tf.function per image (same prepared pixels, same model),
  - the ratio of the two (the target is >= 6x),
  - the engine's full ``predict`` (decode + face detection + preprocessing + model) per image.
Medians over n images after warm-up.
"""

from __future__ import annotations

import io
import json
import statistics
import time

import numpy as np


def _synthetic_jpegs(n: int, size: int = 256) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _median_ms(fn, items) -> float:
    times = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def run(model_dir=None, *, n: int = 100, images=None, threads=None) -> dict:
    from .inference import Engine
    from .preprocess import prepare

    engine = Engine.load(model_dir, intra_threads=threads, inter_threads=threads)
    raw = [open(p, "rb").read() for p in images] if images else _synthetic_jpegs(n)
    raw = (raw * (n // max(1, len(raw)) + 1))[:n]
    arrays = [prepare(b, engine.image_size) for b in raw]
    model = engine._model

    for a in arrays[:3]:  # warm both paths
        model.predict(a[None], verbose=0)
        engine.predict_array(a)
    keras_ms = _median_ms(lambda a: model.predict(a[None].astype(np.float32), verbose=0),
                          arrays)
    compiled_ms = _median_ms(engine.predict_array, arrays)
    engine_ms = _median_ms(engine.predict, raw)
    res = {
        "model": engine.version,
        "n_images": n,
        "keras_model_predict_ms_per_image": round(keras_ms, 3),
        "engine_compiled_call_ms_per_image": round(compiled_ms, 3),
        "speedup_compiled_vs_model_predict": round(keras_ms / compiled_ms, 2),
        "engine_predict_end_to_end_ms_per_image": round(engine_ms, 3),
        "speedup_end_to_end_vs_model_predict": round(keras_ms / engine_ms, 2),
    }
    print(f"model.predict per image:          {keras_ms:8.2f} ms (median of {n})")
    print(f"engine compiled call per image:   {compiled_ms:8.2f} ms")
    print(f"ratio (model.predict / engine):   {keras_ms / compiled_ms:8.1f}x")
    print(f"engine.predict end to end:        {engine_ms:8.2f} ms "
          "(decode + face detection + resize + model)")
    print(json.dumps(res))
    return res
