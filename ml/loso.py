"""Leave-one-source-out (LOSO): how a training recipe does on a source it never saw.

For each held-out source S, a model is trained with the recipe on every other source (their
train split; their val split for early stopping) and then scores:

- every image of S (all splits: none of them was seen), when S has both classes;
- when S has one class only (``utkface_real`` is real only), its images against the *test*
  split images of the other class from the other sources (unseen as well, since the fold model
  trained on their train split only).

The mean and the worst per-source AUC are the figures a recipe is chosen by. Every fold keeps
its raw predictions (``fold-<source>.json``, with a horizontally flipped twin of each image for
test-time flips), so the summary, the calibration on held-out predictions and the ablation
table can be recomputed without training again. Folds already on disk are reused: a run that
was stopped resumes where it was.

Budgets are fixed in images (``steps_per_epoch`` x ``epochs`` x ``batch_size``), not minutes,
so every recipe in an ablation gets the same training however busy the machine is.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import calibration, metrics
from .data import DataError, Record, discover

FOLD_PREFIX = "fold-"


def sources_of(records) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for r in records:
        out.setdefault(r.source, set()).add(r.label)
    return out


def scoring_set(records, held_out: str) -> tuple[list[Record], list[Record]]:
    """(the held-out source's images, the other-class test images it is paired with)."""
    own = [r for r in records if r.source == held_out]
    labels = {r.label for r in own}
    if len(labels) == 2:
        return own, []
    missing = 1 - next(iter(labels))
    partners = [r for r in records
                if r.source != held_out and r.split == "test" and r.label == missing]
    return own, partners


def fold_training_sources(all_sources, held_out: str, never_train=()) -> tuple[str, ...]:
    """Sources excluded from a fold's training: the held-out one plus ``never_train``."""
    return tuple(sorted({held_out, *never_train} & set(all_sources)))


def _flip_dataset_probabilities(model, records, image_size, max_pixels):
    """Raw P(fake) of each record and of its mirror image, one compiled call each."""
    import tensorflow as tf

    from .data import make_dataset
    from .inference import compiled_model_fn

    fn = compiled_model_fn(model, image_size)
    ds = make_dataset(records, image_size, max_pixels=max_pixels, batch_size=64)
    plain, flipped = [], []
    for x, _ in ds:
        plain.append(fn(x).numpy().reshape(-1))
        flipped.append(fn(tf.reverse(x, axis=[2])).numpy().reshape(-1))
    if not plain:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(plain), np.concatenate(flipped)


def run_fold(data_roots, held_out: str | list[str], config, out_dir, *, records=None,
             never_train=(), progress: Callable[[str], None] | None = None) -> list[dict]:
    """Train ``config`` without the held-out source(s) (and ``never_train``), score each
    held-out set, write ``fold-<source>.json`` per source into ``out_dir`` and return them.

    Several held-out sources are given together only when they share one training set (sources
    the recipe never trains on): one model then serves all of their folds."""
    from .train import calibrate, fit_model, prepare_data

    say = progress or (lambda _l: None)
    group = [held_out] if isinstance(held_out, str) else list(held_out)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = records if records is not None else discover(data_roots)
    all_sources = sources_of(records)
    excluded = fold_training_sources(all_sources, group[0], never_train)
    if any(fold_training_sources(all_sources, s, never_train) != excluded for s in group):
        raise ValueError(f"held-out sources {group} do not share one training set")
    cfg = replace(config, exclude_sources=excluded).resolved()
    data = prepare_data(data_roots, exclude_sources=excluded, max_pixels=cfg.max_pixels,
                        max_undecodable_share=cfg.max_undecodable_share)
    name = "+".join(group)
    say(f"[{name}] training on {len(data.train)} images without {', '.join(excluded)}")
    work = out_dir / f"work-{group[0]}"
    t0 = time.time()
    fit = fit_model(data, cfg, work)
    cal = calibrate(fit.model, data.val, cfg.image_size, uncertain_width=cfg.uncertain_width,
                    max_pixels=cfg.max_pixels)
    train_seconds = round(time.time() - t0, 1)
    folds = []
    for s in group:
        own, partners = scoring_set(records, s)
        scored = own + partners
        plain, flipped = _flip_dataset_probabilities(fit.model, scored, cfg.image_size,
                                                     cfg.max_pixels)
        fold = {
            "held_out": s,
            "excluded_from_training": list(excluded),
            "train_images": len(data.train),
            "train_seconds": train_seconds,
            "best_epoch": fit.best_epoch,
            "stopped_by": fit.stopped_by,
            "fold_calibration": cal["calibration"],
            "fold_threshold": cal["threshold"],
            "images": [
                {"path": r.path, "source": r.source, "label": r.label, "split": r.split,
                 "partner": i >= len(own), "raw": round(float(p), 6),
                 "raw_flip": round(float(q), 6)}
                for i, (r, p, q) in enumerate(zip(scored, plain, flipped, strict=True))
            ],
        }
        tmp = out_dir / f".{FOLD_PREFIX}{s}.json.tmp"
        tmp.write_text(json.dumps(fold) + "\n")
        os.replace(tmp, out_dir / f"{FOLD_PREFIX}{s}.json")
        folds.append(fold)
        say(f"[{s}] AUC {fold_auc(fold):.4f} (model trained in {train_seconds / 60:.1f} min)")
    for f in work.glob("*"):
        f.unlink()
    work.rmdir()
    return folds


def fold_scores(fold: dict, *, flips: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(labels, raw scores) of a fold; with ``flips`` the mean of image and mirror logits."""
    y = np.array([im["label"] for im in fold["images"]], np.int64)
    raw = np.array([im["raw"] for im in fold["images"]], np.float64)
    if flips:
        both = np.array([im["raw_flip"] for im in fold["images"]], np.float64)
        raw = calibration.sigmoid((calibration.logit(raw) + calibration.logit(both)) / 2)
    return y, raw


def fold_auc(fold: dict, *, flips: bool = False) -> float:
    y, s = fold_scores(fold, flips=flips)
    return metrics.roc_auc(y, s)


def load_folds(out_dir) -> dict[str, dict]:
    out = {}
    for path in sorted(Path(out_dir).glob(f"{FOLD_PREFIX}*.json")):
        fold = json.loads(path.read_text())
        out[fold["held_out"]] = fold
    return out


def run(data_roots, config, out_dir, *, held_out=(), never_train=(),
        progress: Callable[[str], None] | None = None) -> dict:
    """Every fold (reusing those already written), then ``summary.json``; returns the summary."""
    records = discover(data_roots)
    all_sources = sorted(sources_of(records))
    wanted = list(held_out) or all_sources
    unknown = sorted(set(wanted) - set(all_sources))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; the data has {all_sources}")
    done = load_folds(out_dir)
    todo = [s for s in wanted if s not in done]
    groups: list[list[str]] = []
    shared = [s for s in todo if s in set(never_train)]
    if shared:
        groups.append(shared)  # one training set for every never-trained source
    groups += [[s] for s in todo if s not in set(never_train)]
    for group in groups:
        for fold in run_fold(data_roots, group, config, out_dir, records=records,
                             never_train=never_train, progress=progress):
            done[fold["held_out"]] = fold
    summary = summarize({s: done[s] for s in wanted})
    summary["recipe"] = _recipe(config, never_train)
    Path(out_dir, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _recipe(config, never_train) -> dict:
    cfg = config.resolved()
    return {
        "arch": cfg.arch, "image_size": cfg.image_size, "epochs": cfg.epochs,
        "steps_per_epoch": cfg.steps_per_epoch, "batch_size": cfg.batch_size,
        "images_seen": (cfg.steps_per_epoch or 0) * cfg.epochs * cfg.batch_size,
        "self_blended_share": cfg.blend.share, "never_trained_on": list(never_train),
        "init_weights": cfg.init_weights,
        "augmentation": cfg.augment.as_dict(), "learning_rate": cfg.learning_rate,
        "seed": cfg.seed,
    }


def summarize(folds: dict[str, dict]) -> dict:
    """Per-source held-out metrics, mean and worst AUC, with and without test-time flips."""
    per = {}
    for s, fold in sorted(folds.items()):
        y, raw = fold_scores(fold)
        _, raw_f = fold_scores(fold, flips=True)
        p = calibration.apply(raw, fold["fold_calibration"])
        thr = float(fold["fold_threshold"])
        m = metrics.binary_metrics(y, p, thr)
        own = np.array([not im["partner"] for im in fold["images"]])
        real_own = own & (y == 0)
        fake_own = own & (y == 1)
        per[s] = {
            "roc_auc": m["roc_auc"],
            "roc_auc_flips": metrics.roc_auc(y, raw_f),
            "accuracy": m["accuracy"], "precision": m["precision"], "recall": m["recall"],
            "f1": m["f1"],
            "false_fake_rate": float(np.mean(p[real_own] >= thr)) if real_own.any() else None,
            "fake_caught_rate": float(np.mean(p[fake_own] >= thr)) if fake_own.any() else None,
            "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
            "paired_with_other_sources": bool((~own).any()),
            "train_seconds": fold["train_seconds"],
        }
    aucs = [v["roc_auc"] for v in per.values()]
    aucs_f = [v["roc_auc_flips"] for v in per.values()]
    return {
        "per_source": per,
        "mean_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "worst_auc": float(np.min(aucs)) if aucs else float("nan"),
        "worst_source": min(per, key=lambda s: per[s]["roc_auc"]) if per else None,
        "mean_auc_flips": float(np.mean(aucs_f)) if aucs_f else float("nan"),
        "worst_auc_flips": float(np.min(aucs_f)) if aucs_f else float("nan"),
    }


def ablation_row(name: str, description: str, folds: dict[str, dict], *,
                 flips: bool = False) -> dict:
    """One row of a card's ablation table: per held-out source AUC, mean and worst."""
    if not folds:
        raise ValueError(f"ablation row {name!r}: no folds")
    per = {s: fold_auc(f, flips=flips) for s, f in sorted(folds.items())}
    worst = min(per, key=per.get)
    return {"name": name, "description": description, "per_source": per,
            "mean_auc": float(np.mean(list(per.values()))), "worst_auc": per[worst],
            "worst_source": worst, "folds": len(per), "flips": flips}


def held_out_predictions(folds: dict[str, dict], *, flips: bool = False):
    """(labels, raw scores, sources) of every held-out source's own images, over all folds
    (the paired other-source images are left out: each is scored in its own fold)."""
    ys, ss, src = [], [], []
    for s, fold in sorted(folds.items()):
        y, raw = fold_scores(fold, flips=flips)
        own = np.array([not im["partner"] for im in fold["images"]])
        ys.append(y[own])
        ss.append(raw[own])
        src += [s] * int(own.sum())
    if not ys:
        return np.zeros(0, np.int64), np.zeros(0), []
    return np.concatenate(ys), np.concatenate(ss), src


def calibration_inputs(out_dir) -> dict:
    """What ``train`` needs from a finished LOSO folder: the summary, the held-out predictions
    and whether test-time flips are on (kept when they raise the mean held-out AUC: chosen on
    unseen sources, not on the pooled split)."""
    folds = load_folds(out_dir)
    if not folds:
        raise DataError(f"no leave-one-source-out folds in {out_dir}")
    summary = summarize(folds)
    written = Path(out_dir, "summary.json")
    if written.is_file():  # the recipe the folds were trained with (written by ``run``)
        summary["recipe"] = json.loads(written.read_text()).get("recipe", {})
    flips = bool(summary["mean_auc_flips"] > summary["mean_auc"])
    return {"summary": summary, "held_out": held_out_predictions(folds, flips=flips),
            "flips": flips}


def format_summary(summary: dict) -> str:
    lines = [f"{'held-out source':<34} {'real':>5} {'fake':>5} {'AUC':>7} {'AUC+flip':>8} "
             f"{'false fake':>10} {'caught':>7}"]
    for s, m in summary["per_source"].items():
        ff = "" if m["false_fake_rate"] is None else f"{m['false_fake_rate']:.3f}"
        ca = "" if m["fake_caught_rate"] is None else f"{m['fake_caught_rate']:.3f}"
        lines.append(f"{s:<34} {m['n_real']:>5} {m['n_fake']:>5} {m['roc_auc']:>7.4f} "
                     f"{m['roc_auc_flips']:>8.4f} {ff:>10} {ca:>7}")
    lines.append(f"mean AUC {summary['mean_auc']:.4f} (flips {summary['mean_auc_flips']:.4f}), "
                 f"worst {summary['worst_auc']:.4f} ({summary['worst_source']})")
    return "\n".join(lines)
