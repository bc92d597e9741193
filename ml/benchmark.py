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
from pathlib import Path

import numpy as np

from .preprocess import DEFAULT_MAX_PIXELS


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


def run(model_dir=None, *, n: int = 100, images=None, threads=None,
        max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Time both paths; returns the figures (``format_report`` turns them into lines)."""
    from .inference import Engine
    from .preprocess import prepare

    engine = Engine.load(model_dir, intra_threads=threads, inter_threads=threads,
                         max_pixels=max_pixels)
    raw = [Path(p).read_bytes() for p in images] if images else _synthetic_jpegs(n)
    raw = (raw * (n // max(1, len(raw)) + 1))[:n]
    arrays = [prepare(b, engine.image_size, max_pixels=max_pixels) for b in raw]
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
    return res


def format_report(res: dict) -> str:
    keras_ms = res["keras_model_predict_ms_per_image"]
    compiled_ms = res["engine_compiled_call_ms_per_image"]
    return "\n".join([
        f"model.predict per image:          {keras_ms:8.2f} ms (median of {res['n_images']})",
        f"engine compiled call per image:   {compiled_ms:8.2f} ms",
        f"ratio (model.predict / engine):   {res['speedup_compiled_vs_model_predict']:8.1f}x",
        f"engine.predict end to end:        "
        f"{res['engine_predict_end_to_end_ms_per_image']:8.2f} ms "
        "(decode + face detection + resize + model)",
        json.dumps(res),
    ])
