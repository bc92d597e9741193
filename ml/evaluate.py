"""Evaluate a model directory on labelled folders: metrics overall and per source, plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import calibration, card_sources, metrics, read_card, resolve_model_dir
from .data import DataError, discover, find_undecodable, select
from .preprocess import DEFAULT_MAX_PIXELS

EXAMPLES = 5  # undecodable paths named in a result

METRIC_KEYS = ("roc_auc", "accuracy", "precision", "recall", "f1", "ece", "confusion_matrix",
               "n_real", "n_fake", "threshold")


def raw_probabilities(model, records, image_size, *, perturbation=None, batch_size=64,
                      max_pixels=DEFAULT_MAX_PIXELS, flips: bool = False):
    """Uncalibrated P(fake) for each record, streamed through tf.data and a compiled call.
    With ``flips`` (a card's ``test_time_flips``), the mean logit of image and mirror image,
    as the engine computes it."""
    import tensorflow as tf

    from .data import make_dataset
    from .inference import compiled_model_fn

    fn = compiled_model_fn(model, image_size)
    ds = make_dataset(records, image_size, max_pixels=max_pixels, batch_size=batch_size,
                      training=False, perturbation=perturbation)
    out = []
    for x, _ in ds:
        p = fn(x).numpy().reshape(-1)
        if flips:
            q = fn(tf.reverse(x, axis=[2])).numpy().reshape(-1)
            p = calibration.sigmoid((calibration.logit(p) + calibration.logit(q)) / 2)
        out.append(p)
    return np.concatenate(out) if out else np.zeros(0)


def group_metrics(y, p, sources, threshold, low, high) -> dict:
    res = metrics.binary_metrics(y, p, threshold)
    res["uncertain_rate"] = float(np.mean((p >= low) & (p <= high))) if len(p) else 0.0
    per = {}
    for s in sorted(set(sources)):
        m = np.asarray(sources) == s
        per[s] = metrics.binary_metrics(y[m], p[m], threshold)
        per[s]["uncertain_rate"] = float(np.mean((p[m] >= low) & (p[m] <= high)))
    res["per_source"] = per
    return res


def evaluate_records(model, card, records, *, perturbation=None, batch_size=64,
                     max_pixels=DEFAULT_MAX_PIXELS):
    """Metrics of ``model`` (calibrated as its card says) on records known to decode."""
    size = int(card["image_size"])
    raw = raw_probabilities(model, records, size, perturbation=perturbation,
                            batch_size=batch_size, max_pixels=max_pixels,
                            flips=bool(card.get("test_time_flips", False)))
    p = calibration.apply(raw, card.get("calibration"))
    y = np.array([r.label for r in records])
    res = group_metrics(y, p, [r.source for r in records], float(card["threshold"]),
                        float(card["uncertain_low"]), float(card["uncertain_high"]))
    res["raw_roc_auc"] = metrics.roc_auc(y, raw)
    res["perturbation"] = perturbation or "none"
    return res, y, p


def write_plots(y, p, threshold, out_dir, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cm = metrics.binary_metrics(y, p, threshold)["confusion_matrix"]
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=90)
    ax.imshow(np.array(cm), cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cm[i][j]), ha="center", va="center", fontsize=12)
    ax.set_xticks([0, 1], ["real", "fake"])
    ax.set_yticks([0, 1], ["real", "fake"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix {title}".strip(), fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png")
    plt.close(fig)

    fpr, tpr, _ = metrics.roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(3.6, 3.4), dpi=90)
    ax.plot(fpr, tpr, lw=1.5, label=f"AUC {metrics.roc_auc(y, p):.4f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.7)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC {title}".strip(), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "roc_curve.png")
    plt.close(fig)

    rows = metrics.reliability(p, y)
    fig, ax = plt.subplots(figsize=(3.6, 3.4), dpi=90)
    ax.plot([0, 1], [0, 1], "k--", lw=0.7)
    if rows:
        ax.bar([r[0] for r in rows], [r[2] for r in rows], width=1 / 15, alpha=0.5,
               edgecolor="k", label="fraction fake")
        ax.plot([r[1] for r in rows], [r[2] for r in rows], "o-", ms=3, label="per bin")
    ax.set_xlabel("predicted P(fake)")
    ax.set_ylabel("observed fraction fake")
    ax.set_title(f"Reliability, ECE {metrics.expected_calibration_error(p, y):.3f}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reliability_diagram.png")
    plt.close(fig)


def evaluate(model_dir=None, data=(), *, split="test", json_out=None, plots_dir=None,
             perturbation=None, batch_size=64, exclude_sources=(), only_sources=(),
             model_sources=False, model=None, max_pixels=DEFAULT_MAX_PIXELS) -> dict:
    """Evaluate a model directory on labelled folders; returns the metrics dict.

    ``only_sources`` / ``exclude_sources`` filter by source; ``model_sources=True`` keeps only
    the sources the model's card lists (what it was trained and reported on). Files that do not
    decode are left out and reported under ``undecodable``. Raises ``DataError`` when nothing
    is left to evaluate.
    """
    from .model import load_model

    model_dir = resolve_model_dir(model_dir)
    card = read_card(model_dir)
    only = set(only_sources)
    if model_sources:
        listed = card_sources(card)
        if not listed:
            raise DataError(f"the card in {model_dir} lists no sources")
        only = only & listed if only else listed
        if not only:
            raise DataError(f"none of the sources {sorted(only_sources)} is listed in the card")
    if model is None:
        model = load_model(model_dir / card.get("weights_file", "model.keras"))
    records = select(discover(data, exclude_sources=exclude_sources,
                              only_sources=sorted(only)), split)
    bad = find_undecodable(records, max_pixels=max_pixels)
    if bad:
        skip = {r.path for r, _ in bad}
        records = [r for r in records if r.path not in skip]
    if not records:
        raise DataError(f"no decodable labelled images found for split {split!r} in "
                        f"{[str(d) for d in data]}")
    res, y, p = evaluate_records(model, card, records, perturbation=perturbation,
                                 batch_size=batch_size, max_pixels=max_pixels)
    res["split"] = split
    res["model_dir"] = str(model_dir)
    res["undecodable"] = {"count": len(bad),
                          "examples": [f"{r.path}: {why}" for r, why in bad[:EXAMPLES]]}
    if plots_dir:
        write_plots(y, p, float(card["threshold"]), plots_dir,
                    title=f"({split}{'' if not perturbation else ', ' + perturbation})")
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(res, indent=2) + "\n")
    return res


def format_summary(res: dict) -> str:
    def row(name, m):
        cm = m["confusion_matrix"]
        return (f"{name:<34} {m['n_real']:>5} {m['n_fake']:>5} {m['roc_auc']:>7.4f} "
                f"{m['accuracy']:>6.4f} {m['precision']:>6.4f} {m['recall']:>6.4f} "
                f"{m['f1']:>6.4f} {m['ece']:>6.4f}  {cm}")

    lines = [f"{'source':<34} {'real':>5} {'fake':>5} {'AUC':>7} {'acc':>6} {'prec':>6} "
             f"{'rec':>6} {'F1':>6} {'ECE':>6}  confusion [[tn fp] [fn tp]]",
             row("OVERALL", res)]
    for s, m in res.get("per_source", {}).items():
        lines.append(row(s, m))
    lines.append(f"threshold {res['threshold']:.4f}, uncertain rate {res['uncertain_rate']:.3f}, "
                 f"perturbation {res.get('perturbation', 'none')}")
    bad = res.get("undecodable") or {}
    if bad.get("count"):
        lines.append(f"left out {bad['count']} undecodable file(s): "
                     + "; ".join(bad.get("examples", [])))
    return "\n".join(lines)


# The web side stores every upload re-encoded from its pixels (detection/uploads/reencode.py,
# JPEG quality 95 for JPEG uploads; tests/test_serving_path.py keeps the two in step), and the
# worker then runs the engine, face step included, on the stored file.
SERVING_JPEG_QUALITY = 95


def serving_bytes(path: str) -> bytes:
    """The file the worker would read for an uploaded JPEG: its pixels re-encoded at
    ``SERVING_JPEG_QUALITY`` with no metadata."""
    import io

    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=SERVING_JPEG_QUALITY)
    return buf.getvalue()


def evaluate_serving(engine, records, *, training_path_p=None,
                     progress=None) -> dict:
    """Every record through the product's path: re-encoded as stored, then ``engine.predict``
    (face detection, per-face crops, flips, calibration). Returns AUC over the images where a
    face was found, the no-face rate, per source, the time per image and, given the training
    path's probabilities for the same records, how far the two paths differ."""
    import time

    y, p, found, ms, sources, n_faces = [], [], [], [], [], []
    for i, r in enumerate(records):
        data = serving_bytes(r.path)
        t0 = time.perf_counter()
        pred = engine.predict(data)
        ms.append((time.perf_counter() - t0) * 1000.0)
        y.append(r.label)
        sources.append(r.source)
        found.append(pred.face_found)
        n_faces.append(len(pred.faces))
        p.append(pred.fake_probability if pred.face_found else np.nan)
        if progress and (i + 1) % 500 == 0:
            progress(f"serving path: {i + 1}/{len(records)} images")
    y, p, found = np.array(y), np.array(p, np.float64), np.array(found)
    sources = np.array(sources)

    def block(m):
        f = m & found
        res = {
            "n": int(m.sum()),
            "no_face_rate": float(np.mean(~found[m])) if m.any() else float("nan"),
            "multi_face_rate": float(np.mean(np.array(n_faces)[m] > 1)) if m.any() else 0.0,
            "roc_auc": metrics.roc_auc(y[f], p[f]) if f.any() else float("nan"),
        }
        if training_path_p is not None:
            tp = np.asarray(training_path_p, np.float64)
            res["mean_abs_diff_vs_training_path"] = (float(np.mean(np.abs(p[f] - tp[f])))
                                                     if f.any() else float("nan"))
            res["roc_auc_training_path"] = metrics.roc_auc(y[m], tp[m])
        return res

    out = block(np.ones(len(y), bool))
    out["per_source"] = {s: block(sources == s) for s in sorted(set(sources.tolist()))}
    ms_arr = np.array(ms)
    out["ms_per_image"] = {"median": float(np.median(ms_arr)),
                           "p95": float(np.percentile(ms_arr, 95)),
                           "mean": float(ms_arr.mean())}
    out["note"] = (f"each test image re-encoded as stored (JPEG q{SERVING_JPEG_QUALITY}, no "
                   "metadata), then Engine.predict: face detection, crop rule, model, "
                   "calibration; AUC over the images where a face was found")
    return out
