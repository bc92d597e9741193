"""``python -m ml evaluate-video``: the video path (ml.video) on folders of labelled clips.

Clips are found like the image tools find images: below each root, every .mp4/.webm/.mov file
whose nearest labelled ancestor folder names ``real`` or ``fake`` (any depth; the source is
the first-level folder). Each clip goes through ``analyze_video`` exactly as the worker runs it;
the clip's P(fake) is its most suspicious track's aggregate. Clips where no face was found are
reported apart and left out of the metrics (there is no real/fake verdict without a face), as
are clips that cannot be decoded.

The figures are only as good as the clips: the project holds no labelled deepfake videos yet,
so no video figure has been measured on real deepfake videos, and the per-track aggregation is
not calibrated on video.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import metrics
from .data import DataError, discover
from .preprocess import DEFAULT_MAX_PIXELS
from .video import AGGREGATE_METHOD, VIDEO_SUFFIXES, VideoDecodeError, analyze_video

NOTE = ("Video figures are not yet measured on real deepfake videos; the per-track aggregation "
        "is not calibrated on video.")


def _clean(value):
    """JSON without NaN: a metric that cannot be computed (one class only) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def evaluate_video(model_dir=None, data=(), *, sample_fps: float = 2.0, max_samples: int = 120,
                   json_out=None, engine=None, max_pixels: int = DEFAULT_MAX_PIXELS,
                   progress: Callable[[str], None] | None = None) -> dict:
    """Verdicts per clip and metrics over the clips with a face; raises DataError when no
    labelled clip is found."""
    records = discover(data, suffixes=VIDEO_SUFFIXES)
    if not records:
        raise DataError(f"no labelled clips ({', '.join(VIDEO_SUFFIXES)}) below real/ or fake/ "
                        f"folders in {[str(d) for d in data]}")
    if engine is None:
        from .inference import Engine

        engine = Engine.load(model_dir, max_pixels=max_pixels)
    clips, no_face, undecodable = [], [], []
    frames_judged, seconds = 0, 0.0
    for i, r in enumerate(records, start=1):
        truth = "fake" if r.label else "real"
        t0 = time.perf_counter()
        try:
            pred = analyze_video(engine, r.path, sample_fps=sample_fps, max_samples=max_samples,
                                 max_pixels=max_pixels)
        except VideoDecodeError as exc:
            undecodable.append({"path": r.path, "label": truth, "error": str(exc)})
            if progress:
                progress(f"{i}/{len(records)} {r.path}: undecodable")
            continue
        elapsed = time.perf_counter() - t0
        frames_judged += pred.frames_total
        seconds += elapsed
        row = {"path": r.path, "label": truth, "source": r.source, "verdict": pred.label,
               "fake_probability": pred.fake_probability, "tracks": len(pred.tracks),
               "deciding_track": pred.deciding_track, "frames": pred.frames_total,
               "duration_s": round(pred.info.duration_s, 3), "seconds": round(elapsed, 3)}
        (clips if pred.face_found else no_face).append(row)
        if progress:
            progress(f"{i}/{len(records)} {r.path}: {pred.label}")

    res: dict = {
        "n_clips": len(records),
        "n_scored": len(clips),
        "n_no_face": len(no_face),
        "n_undecodable": len(undecodable),
        "sample_fps": float(sample_fps),
        "max_samples": int(max_samples),
        "model_name": engine.name,
        "model_version": engine.version,
        "aggregate_method": AGGREGATE_METHOD,
        "frames_per_second": frames_judged / seconds if seconds else None,
        "note": NOTE,
    }
    if clips:
        y = np.array([c["label"] == "fake" for c in clips])
        p = np.array([c["fake_probability"] for c in clips], np.float64)
        res.update(metrics.binary_metrics(y, p, float(engine.threshold)))
        res["uncertain_rate"] = float(np.mean((p >= engine.uncertain_low)
                                              & (p <= engine.uncertain_high)))
        res["uncertain_low"] = float(engine.uncertain_low)
        res["uncertain_high"] = float(engine.uncertain_high)
        if y.all() or not y.any():
            res["metrics_note"] = "one class only among the scored clips: no ROC AUC"
    res["clips"] = clips
    res["no_face"] = no_face
    res["undecodable"] = undecodable
    res = _clean(res)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(res, indent=2) + "\n")
    return res


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_summary(res: dict) -> str:
    lines = [f"{'clip':<48} {'label':<5} {'verdict':<9} {'P(fake)':>7} {'tracks':>6} "
             f"{'frames':>6}"]
    for c in res["clips"] + res["no_face"]:
        name = c["path"] if len(c["path"]) <= 48 else "..." + c["path"][-45:]
        lines.append(f"{name:<48} {c['label']:<5} {c['verdict']:<9} "
                     f"{_num(c['fake_probability'], '7.4f'):>7} {c['tracks']:>6} "
                     f"{c['frames']:>6}")
    for c in res["undecodable"]:
        lines.append(f"undecodable: {c['path']}: {c['error']}")
    lines.append("")
    lines.append(f"clips {res['n_clips']}: scored {res['n_scored']}, no face {res['n_no_face']} "
                 f"(left out), undecodable {res['n_undecodable']} (left out)")
    if res["n_scored"]:
        cm = res["confusion_matrix"]
        lines.append(
            f"{'real':>5} {'fake':>5} {'AUC':>7} {'acc':>6} {'prec':>6} {'rec':>6} {'F1':>6} "
            f"{'ECE':>6}  confusion [[tn fp] [fn tp]]")
        lines.append(
            f"{res['n_real']:>5} {res['n_fake']:>5} {_num(res['roc_auc'], '7.4f'):>7} "
            f"{res['accuracy']:>6.4f} {res['precision']:>6.4f} {res['recall']:>6.4f} "
            f"{res['f1']:>6.4f} {_num(res['ece'], '6.4f'):>6}  {cm}")
        lines.append(f"threshold {res['threshold']:.4f}, uncertain rate "
                     f"{res['uncertain_rate']:.3f}")
    fps = res.get("frames_per_second")
    lines.append(f"sampling {res['sample_fps']:g} frames/s, at most {res['max_samples']}; "
                 f"{_num(fps, '.1f')} sampled frames judged per second")
    lines.append(f"aggregation: {res['aggregate_method']}")
    lines.append(res["note"])
    return "\n".join(lines)
