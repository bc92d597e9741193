"""Training: fit on `train`, early-stop/calibrate/threshold on `val`, report on `test`.

``train`` runs four steps, each usable on its own: ``prepare_data`` (discover, check that every
file decodes, split), ``fit_model`` (fit, keep the best epoch, save the weights),
``calibrate`` (Platt scaling, threshold and uncertain band on val) and ``write_model_card``
(val/test/robustness metrics, plots, card.json + card.md). Library code returns values or
raises (``DataError``, ``UndecodableImagesError``, ``ValueError`` for bad options); only the CLI
prints or exits.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import CARD_JSON, PACKAGE_VERSION, WEIGHTS_NAME, calibration, model_version
from .augment import AugmentConfig
from .blend import BlendConfig
from .card import data_licence_note, write_card
from .data import (
    DataError,
    Record,
    UndecodableImagesError,
    discover,
    find_undecodable,
    select,
    summarize,
)
from .model import DEFAULT_ARCH, get_architecture
from .preprocess import DEFAULT_MAX_PIXELS, check_max_pixels

SPLIT_RULE = ("folder names train/val/test where present (the data set's own split); "
              "otherwise sha1(file name) -> 75/10/15 %")
MAX_UNDECODABLE_SHARE = 0.01  # default: more than 1 % undecodable files stops training
EXAMPLES = 5  # undecodable paths named in errors and in the card
ROBUSTNESS = ("jpeg70", "half", "blur")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inference_note() -> str:
    from . import faces

    return (
        "The engine (ml.inference.Engine) decodes JPEG/PNG/WebP only (Pillow), refusing any "
        "image above the pixel limit it was loaded with (Engine.load(max_pixels=...); the "
        "service passes its DETECTION_MAX_PIXELS setting), applies EXIF orientation, converts "
        "to RGB, then finds every face with MTCNN (the mtcnn package, weights inside its "
        f"wheel, MIT licence): on a copy at most {faces.DETECT_MAX_SIDE} px long, padded by "
        f"{faces.PAD_FRACTION:.0%} so that a tight face crop is still found, keeping faces "
        f"with confidence >= {faces.MIN_CONFIDENCE} and a side >= "
        f"{faces.MIN_FACE_FRACTION:.0%} of the shorter image side and >= {faces.MIN_FACE_PX} "
        f"px, at most {faces.MAX_FACES}. "
        "One face filling the frame (width >= "
        f"{faces.SMALL_FACE_FRACTION} x the shorter side, as in the training images) is "
        "judged on the centre square of the whole image, exactly the training preprocessing; "
        f"a smaller face, or each of several, on a square of {faces.FACE_MARGIN} x its box. "
        "Then Lanczos resize to the input size, the model (with test-time flips when the card "
        "says so) and the calibration. The image's verdict is its most suspicious face; with "
        "no face the verdict is 'no face', never 'real'. `evaluate` feeds the data set's "
        "images through the training preprocessing (they are face crops already); the "
        "serving-path table measures the product's own path on the same test images."
    )


def hardware_note() -> str:
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores visible"
            f"{f', {len(gpus)} GPU(s)' if gpus else ''}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}")


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainConfig:
    """Every training option. ``None`` for ``image_size`` / ``learning_rate`` means the
    architecture's default (``ml.model.ARCHITECTURES``); ``resolved()`` fills them in."""

    arch: str = DEFAULT_ARCH
    epochs: int = 30
    image_size: int | None = None
    batch_size: int = 32
    learning_rate: float | None = None
    patience: int = 4
    max_minutes: float | None = None
    exclude_sources: tuple[str, ...] = ()
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)  # self-blended fakes (off: 0)
    # With steps_per_epoch the training stream repeats and every epoch is that many batches:
    # configurations compared in an ablation then see the same number of images.
    steps_per_epoch: int | None = None
    # Start from these weights (a model file of the same architecture and size) instead of a
    # random initialisation: fine-tuning an earlier model.
    init_weights: str | None = None
    seed: int = 1234
    uncertain_width: float | None = None  # None: calibration.DEFAULT_UNCERTAIN_WIDTH
    robustness: bool = True
    plots: bool = True
    name: str | None = None
    command: str | None = None
    max_undecodable_share: float = MAX_UNDECODABLE_SHARE
    max_pixels: int = DEFAULT_MAX_PIXELS
    verbose: int = 0  # Keras fit progress: 0 silent, 1 bar, 2 a line per epoch

    def resolved(self) -> TrainConfig:
        """A copy with the architecture defaults filled in; ValueError for bad options."""
        spec = get_architecture(self.arch)
        size = int(self.image_size or spec.default_size)
        spec.check_image_size(size)
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError("steps per epoch must be at least 1")
        if not 0.0 <= self.blend.share < 1.0:
            raise ValueError(f"the self-blended share must be within 0..1, not {self.blend.share}")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("epochs, batch size and patience must be at least 1")
        if not 0.0 <= self.max_undecodable_share <= 1.0:
            raise ValueError("the allowed share of undecodable images must be within 0..1, "
                             f"not {self.max_undecodable_share}")
        width = (calibration.DEFAULT_UNCERTAIN_WIDTH if self.uncertain_width is None
                 else float(self.uncertain_width))
        if width < 0:
            raise ValueError(f"uncertain width must be >= 0, not {width}")
        return replace(self, image_size=size, uncertain_width=width,
                       learning_rate=float(self.learning_rate or spec.learning_rate),
                       exclude_sources=tuple(self.exclude_sources),
                       augment=self.augment if self.augment is not None else AugmentConfig(),
                       max_pixels=check_max_pixels(self.max_pixels))


# ----------------------------------------------------------------------------- 1. data


@dataclass
class PreparedData:
    records: list[Record]  # every decodable record in use, all splits
    train: list[Record]
    val: list[Record]
    test: list[Record]
    undecodable: list[tuple[Record, str]]  # (record, reason), left out of every split
    found: int  # labelled files discovered, decodable or not

    def undecodable_report(self, max_share: float) -> dict:
        n = len(self.undecodable)
        return {
            "count": n,
            "of": self.found,
            "share": n / self.found if self.found else 0.0,
            "max_share": max_share,
            "per_split": dict(sorted(Counter(r.split for r, _ in self.undecodable).items())),
            "examples": [f"{r.path}: {why}" for r, why in self.undecodable[:EXAMPLES]],
            "action": "left out of train, val and test",
        }


def prepare_data(data_roots, *, exclude_sources=(), max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_undecodable_share: float = MAX_UNDECODABLE_SHARE) -> PreparedData:
    """Discover labelled images, decode each once and split them.

    Files that do not decode are left out (and listed in the result) as long as they are at most
    ``max_undecodable_share`` of all files found; above that ``UndecodableImagesError``.
    ``DataError`` when train or val is empty or train lacks one of the classes.
    """
    records = discover(data_roots, exclude_sources=exclude_sources)
    if not records:
        raise DataError(f"no labelled images found in {[str(d) for d in data_roots]}")
    bad = find_undecodable(records, max_pixels=max_pixels)
    share = len(bad) / len(records)
    if share > max_undecodable_share:
        names = "; ".join(f"{r.path} ({why})" for r, why in bad[:EXAMPLES])
        more = f" and {len(bad) - EXAMPLES} more" if len(bad) > EXAMPLES else ""
        raise UndecodableImagesError(
            f"{len(bad)} of {len(records)} images ({share:.1%}) cannot be decoded, more than "
            f"the allowed {max_undecodable_share:.1%}: {names}{more}",
            count=len(bad), total=len(records), examples=[r.path for r, _ in bad[:EXAMPLES]])
    skip = {r.path for r, _ in bad}
    kept = [r for r in records if r.path not in skip]
    tr, va, te = (select(kept, s) for s in ("train", "val", "test"))
    if not tr or not va:
        raise DataError(f"need train and val images; found train={len(tr)} val={len(va)}")
    if len({r.label for r in tr}) < 2:
        raise DataError("training data must contain both real and fake images")
    return PreparedData(records=kept, train=tr, val=va, test=te, undecodable=bad,
                        found=len(records))


# ----------------------------------------------------------------------------- 2. fit


@dataclass
class FitResult:
    model: object  # the keras.Model loaded back from the saved weights file
    weights_path: Path
    history: dict[str, list[float]]
    best_epoch: int
    stopped_by: str
    train_seconds: float


def fit_model(data: PreparedData, config: TrainConfig, out_dir) -> FitResult:
    """Fit on train with early stopping on val loss (best weights kept), save the weights
    (no optimizer state) atomically to ``out_dir`` and load them back."""
    import keras

    from .data import make_dataset
    from .model import build_model, load_model

    cfg = config.resolved()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    lr = cfg.learning_rate
    model = build_model(cfg.arch, cfg.image_size)
    if cfg.init_weights:
        model.set_weights(load_model(cfg.init_weights).get_weights())
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc"), "accuracy"])
    ds_tr = make_dataset(data.train, cfg.image_size, max_pixels=cfg.max_pixels,
                         batch_size=cfg.batch_size, training=True, augment_config=cfg.augment,
                         seed=cfg.seed, blend_config=cfg.blend,
                         repeat=cfg.steps_per_epoch is not None)
    ds_va = make_dataset(data.val, cfg.image_size, max_pixels=cfg.max_pixels, batch_size=64)

    state = {"best": math.inf, "best_epoch": 0, "weights": None, "stopped_by": "epochs"}
    t_start = time.time()
    patience, max_minutes = cfg.patience, cfg.max_minutes

    class Guard(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            v = (logs or {}).get("val_loss", math.inf)
            if v < state["best"]:
                state.update(best=v, best_epoch=epoch + 1, weights=self.model.get_weights())
            elif epoch + 1 - state["best_epoch"] >= patience:
                state["stopped_by"] = f"early stopping (patience {patience})"
                self.model.stop_training = True
            if max_minutes and (time.time() - t_start) / 60 > max_minutes:
                state["stopped_by"] = f"time limit ({max_minutes} min)"
                self.model.stop_training = True

    callbacks = [Guard(), keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5,
                                                            patience=1, min_lr=lr / 32)]
    hist = model.fit(ds_tr, validation_data=ds_va, epochs=cfg.epochs, callbacks=callbacks,
                     steps_per_epoch=cfg.steps_per_epoch, verbose=cfg.verbose,
                     shuffle=False)  # tf.data shuffles already
    train_seconds = time.time() - t_start
    if state["weights"] is not None:
        model.set_weights(state["weights"])

    weights = out_dir / WEIGHTS_NAME
    tmp = out_dir / (WEIGHTS_NAME + ".tmp.keras")
    bare = build_model(cfg.arch, cfg.image_size)  # uncompiled twin: no optimizer state
    bare.set_weights(model.get_weights())
    bare.save(tmp)
    os.replace(tmp, weights)
    return FitResult(
        model=load_model(weights),  # evaluate exactly what was saved
        weights_path=weights,
        history={k: [round(float(v), 5) for v in vals] for k, vals in hist.history.items()},
        best_epoch=state["best_epoch"],
        stopped_by=state["stopped_by"],
        train_seconds=train_seconds,
    )


# ----------------------------------------------------------------------------- 3. calibrate


def calibrate(model, val_records, image_size: int, *,
              uncertain_width: float = calibration.DEFAULT_UNCERTAIN_WIDTH,
              max_pixels: int = DEFAULT_MAX_PIXELS, held_out=None, flips: bool = False) -> dict:
    """Platt scaling, decision threshold and uncertain band.

    Without ``held_out``: all chosen on the val split. With ``held_out`` = ``(labels, raw
    scores, sources)`` of leave-one-source-out predictions (``loso.held_out_predictions``), on
    val and those together, half the weight each (every held-out source weighted alike), so
    that a probability means about the same on a source the model never saw. The result then
    also says how well calibrated the held-out predictions are: in-sample, and with each
    source's calibration fitted without that source (the honest figure).

    Returns the card fields: calibration, threshold, uncertain_low/high, uncertain_rule and,
    with ``held_out``, calibration_data.
    """
    from .evaluate import raw_probabilities

    raw_val = raw_probabilities(model, val_records, image_size, max_pixels=max_pixels,
                                flips=flips)
    y_val = np.array([r.label for r in val_records])
    extra = {}
    if held_out is None or not len(held_out[0]):
        calib = calibration.fit_platt(raw_val, y_val)
        thr = calibration.choose_threshold(calibration.apply(raw_val, calib), y_val)
        rule_data = "the validation split"
    else:
        y_ho, raw_ho, src_ho = (np.asarray(held_out[0]), np.asarray(held_out[1]),
                                np.asarray(held_out[2]))
        calib, thr = _fit_with_held_out(raw_val, y_val, raw_ho, y_ho, src_ho)
        extra = {"calibration_data": _held_out_calibration_report(
            raw_val, y_val, raw_ho, y_ho, src_ho, calib, thr)}
        rule_data = ("the validation split and the leave-one-source-out predictions, "
                     "half the weight each")
    low, high = calibration.uncertain_band(thr, uncertain_width)
    return {
        "calibration": calib,
        "threshold": thr,
        "uncertain_low": low,
        "uncertain_high": high,
        "uncertain_width": float(uncertain_width),
        "uncertain_rule": f"uncertain when |P(fake) - threshold| <= {uncertain_width} "
                          "(band clipped to [0.01, 0.99])",
        "calibrated_on": rule_data,
        **extra,
    }


def _weights(n_val: int, sources) -> np.ndarray:
    sources = np.asarray(sources)
    names = np.unique(sources)
    w_ho = np.zeros(len(sources))
    for s in names:
        m = sources == s
        w_ho[m] = 0.5 / len(names) / m.sum()
    return np.concatenate([np.full(n_val, 0.5 / max(1, n_val)), w_ho])


def _fit_with_held_out(raw_val, y_val, raw_ho, y_ho, src_ho):
    raw = np.concatenate([raw_val, raw_ho])
    y = np.concatenate([y_val, y_ho])
    w = _weights(len(raw_val), src_ho)
    calib = calibration.fit_platt(raw, y, weights=w)
    thr = calibration.choose_threshold(calibration.apply(raw, calib), y, weights=w)
    return calib, thr


def _held_out_calibration_report(raw_val, y_val, raw_ho, y_ho, src_ho, calib, thr) -> dict:
    from . import metrics

    p_in = calibration.apply(raw_ho, calib)
    p_cv = np.zeros(len(raw_ho))
    per = {}
    for s in np.unique(src_ho):
        m = src_ho == s
        c_s, t_s = _fit_with_held_out(raw_val, y_val, raw_ho[~m], y_ho[~m], src_ho[~m])
        p_cv[m] = calibration.apply(raw_ho[m], c_s)
        reals = m & (y_ho == 0)
        fakes = m & (y_ho == 1)
        per[str(s)] = {
            "ece_cross_validated": metrics.expected_calibration_error(p_cv[m], y_ho[m]),
            "false_fake_rate": float(np.mean(p_in[reals] >= thr)) if reals.any() else None,
            "fake_caught_rate": float(np.mean(p_in[fakes] >= thr)) if fakes.any() else None,
            "n": int(m.sum()),
        }
    return {
        "held_out_images": int(len(raw_ho)),
        "val_images": int(len(raw_val)),
        "ece_held_out_in_sample": metrics.expected_calibration_error(p_in, y_ho),
        "ece_held_out_cross_validated": metrics.expected_calibration_error(p_cv, y_ho),
        "ece_val": metrics.expected_calibration_error(calibration.apply(raw_val, calib), y_val),
        "per_source": per,
        "note": "held-out predictions come from the leave-one-source-out fold models (each "
                "source scored by a model that never saw it); cross-validated: each source's "
                "probabilities calibrated by a fit made without that source",
    }


# ----------------------------------------------------------------------------- 4. card


def build_card(config: TrainConfig, data_roots, data: PreparedData, fit: FitResult,
               calibrated: dict, *, hardware: str | None = None) -> dict:
    """The card.json fields known after training (metrics are added by write_model_card)."""
    cfg = config.resolved()
    weights = Path(fit.weights_path)
    roots = [str(d) for d in data_roots]
    card = {
        "name": cfg.name or f"deepfake-{cfg.arch}",
        "architecture": cfg.arch,
        "image_size": int(cfg.image_size),
        "parameters": int(fit.model.count_params()),
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "package_version": PACKAGE_VERSION,
        "weights_file": weights.name,
        "weights_sha256": sha256_file(weights),
        "weights_bytes": weights.stat().st_size,
        "output": "P(fake), calibrated",
        **calibrated,
        "reproduce_command": cfg.command or "",
        "training": {
            "data_roots": roots,
            "exclude_sources": list(cfg.exclude_sources),
            "split_rule": SPLIT_RULE,
            "counts": summarize(data.records),
            "undecodable": data.undecodable_report(cfg.max_undecodable_share),
            "max_pixels": cfg.max_pixels,
            "epochs_max": int(cfg.epochs),
            "epochs_run": len(fit.history.get("loss", [])),
            "best_epoch": fit.best_epoch,
            "stopped_by": fit.stopped_by,
            "train_seconds": round(fit.train_seconds, 1),
            "learning_rate": cfg.learning_rate,
            "batch_size": cfg.batch_size,
            "patience": cfg.patience,
            "max_minutes": cfg.max_minutes,
            "seed": cfg.seed,
            "augmentation": cfg.augment.as_dict(),
            "self_blended": cfg.blend.as_dict(),
            "steps_per_epoch": cfg.steps_per_epoch,
            "init_weights": cfg.init_weights,
            "history": fit.history,
            "hardware": hardware if hardware is not None else hardware_note(),
        },
        "inference_note": inference_note(),
        "data_licence": data_licence_note(roots),
    }
    card["version"] = model_version(card)
    return card


def write_model_card(out_dir, card: dict, model, data: PreparedData, *,
                     robustness: bool = True, plots: bool = True,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Add val, test and robustness metrics to ``card``, write plots and card.json/card.md into
    ``out_dir`` (card first written without the test figures, so a crash leaves a usable
    card), remove temporary files; returns the card."""
    from .evaluate import evaluate_records, write_plots

    out_dir = Path(out_dir)
    card["val_metrics"], _, _ = evaluate_records(model, card, data.val, max_pixels=max_pixels)
    write_card(out_dir, card)
    if data.test:
        test_res, y_te, p_te = evaluate_records(model, card, data.test, max_pixels=max_pixels)
        card["test_metrics"] = test_res
        if plots:
            write_plots(y_te, p_te, float(card["threshold"]), out_dir / "plots",
                        title="(test)")
        if robustness:
            card["robustness"] = {}
            for kind in ROBUSTNESS:
                r, _, _ = evaluate_records(model, card, data.test, perturbation=kind,
                                           max_pixels=max_pixels)
                r["auc_drop"] = test_res["roc_auc"] - r["roc_auc"]
                card["robustness"][kind] = r
            write_card(out_dir, card)
            # The product's own path: stored re-encode, face step, per-face verdicts.
            from .evaluate import evaluate_serving
            from .inference import Engine

            engine = Engine.load(out_dir, max_pixels=max_pixels)
            card["serving_path"] = evaluate_serving(engine, data.test, training_path_p=p_te)
    write_card(out_dir, card)
    for leftover in out_dir.glob("*.tmp.keras"):
        leftover.unlink()
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    return card


# ----------------------------------------------------------------------------- all four


def train(data_roots, out_dir, config: TrainConfig | None = None, *,
          progress: Callable[[str], None] | None = None, loso: dict | None = None,
          **options) -> dict:
    """Train a model directory (model.keras, card.json, card.md, plots/) and return its card.

    ``config`` and/or keyword ``options`` (the ``TrainConfig`` fields, e.g. ``arch``,
    ``epochs``, ``image_size``, ``max_undecodable_share``) set the options; ``progress``, when
    given, receives a line of text at each step. ``loso`` (``ml.loso.calibration_inputs``): the
    same recipe's leave-one-source-out results, for the calibration and the card.
    """
    cfg = replace(config or TrainConfig(), **options).resolved()
    say = progress or (lambda _line: None)

    data = prepare_data(data_roots, exclude_sources=cfg.exclude_sources,
                        max_pixels=cfg.max_pixels,
                        max_undecodable_share=cfg.max_undecodable_share)
    say(f"data: train {len(data.train)}, val {len(data.val)}, test {len(data.test)} images "
        f"from {len({r.source for r in data.records})} source(s)")
    if data.undecodable:
        report = data.undecodable_report(cfg.max_undecodable_share)
        say(f"left out {report['count']} undecodable file(s) of {report['of']}: "
            + "; ".join(report["examples"]))
    say(f"fitting {cfg.arch} at {cfg.image_size} px, lr {cfg.learning_rate}, "
        f"at most {cfg.epochs} epochs")
    fit = fit_model(data, cfg, out_dir)
    say(f"fitted: {len(fit.history.get('loss', []))} epochs in {fit.train_seconds / 60:.1f} "
        f"min, best epoch {fit.best_epoch}, stopped by {fit.stopped_by}")
    loso_summary, held_out, flips = None, None, False
    if loso is not None:
        loso_summary, held_out, flips = loso["summary"], loso["held_out"], loso["flips"]
        say(f"calibrating on val and {len(held_out[0])} held-out predictions from "
            f"{len(loso_summary['per_source'])} folds (test-time flips: "
            f"{'on' if flips else 'off'})")
    calibrated = calibrate(fit.model, data.val, cfg.image_size,
                           uncertain_width=cfg.uncertain_width, max_pixels=cfg.max_pixels,
                           held_out=held_out, flips=flips)
    card = build_card(cfg, data_roots, data, fit, calibrated)
    card["test_time_flips"] = bool(flips)
    if loso_summary is not None:
        card["loso"] = loso_summary
    card = write_model_card(out_dir, card, fit.model, data, robustness=cfg.robustness,
                            plots=cfg.plots, max_pixels=cfg.max_pixels)
    say(f"wrote {Path(out_dir) / CARD_JSON}")
    return card


# ----------------------------------------------------------------------------- recalibrate


def serving_path_update(model_dir, data_roots, *, command: str | None = None,
                        max_pixels: int = DEFAULT_MAX_PIXELS, threads: int | None = 1,
                        progress: Callable[[str], None] | None = None) -> dict:
    """Measure the product's own path (stored re-encode, face step, per-face verdicts) on the
    test split again and write it, with the inference note, into the model's card: after a
    change to the face step, which training does not see. Threads: the worker's default."""
    from . import read_card
    from .evaluate import evaluate_records, evaluate_serving
    from .inference import Engine
    from .model import load_model

    model_dir = Path(model_dir)
    check_max_pixels(max_pixels)
    card = read_card(model_dir)
    tr = card.get("training", {})
    data = prepare_data(data_roots, exclude_sources=tuple(tr.get("exclude_sources", [])),
                        max_pixels=max_pixels)
    model = load_model(model_dir / card.get("weights_file", WEIGHTS_NAME))
    _, _, p_te = evaluate_records(model, card, data.test, max_pixels=max_pixels)
    engine = Engine.load(model_dir, max_pixels=max_pixels, intra_threads=threads,
                         inter_threads=threads)
    card["serving_path"] = evaluate_serving(engine, data.test, training_path_p=p_te,
                                            progress=progress)
    card["inference_note"] = inference_note()
    if command:
        card["reproduce_command"] = f"{card.get('reproduce_command', '')}\n{command}".strip()
    write_card(model_dir, card)
    return card


def recalibrate(model_dir, data_roots, *, loso: dict, command: str | None = None,
                robustness: bool = True, plots: bool = True,
                max_pixels: int = DEFAULT_MAX_PIXELS,
                progress: Callable[[str], None] | None = None) -> dict:
    """Calibrate a trained model directory again with its recipe's leave-one-source-out
    results (``loso.calibration_inputs``) and rewrite every figure of its card; the weights
    are untouched. For a model trained while its recipe's folds were still running."""
    from . import read_card
    from .model import load_model

    say = progress or (lambda _line: None)
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    tr = card.get("training", {})
    data = prepare_data(data_roots, exclude_sources=tuple(tr.get("exclude_sources", [])),
                        max_pixels=max_pixels)
    model = load_model(model_dir / card.get("weights_file", WEIGHTS_NAME))
    summary, held_out, flips = loso["summary"], loso["held_out"], loso["flips"]
    say(f"calibrating on val and {len(held_out[0])} held-out predictions from "
        f"{len(summary['per_source'])} folds (test-time flips: {'on' if flips else 'off'})")
    calibrated = calibrate(model, data.val, int(card["image_size"]),
                           uncertain_width=float(card.get(
                               "uncertain_width", calibration.DEFAULT_UNCERTAIN_WIDTH)),
                           max_pixels=max_pixels, held_out=held_out, flips=flips)
    for stale in ("val_metrics", "test_metrics", "robustness", "serving_path"):
        card.pop(stale, None)
    card.update(calibrated)
    card["test_time_flips"] = bool(flips)
    card["loso"] = summary
    card["inference_note"] = inference_note()
    if command:
        card["reproduce_command"] = f"{card.get('reproduce_command', '')}\n{command}".strip()
    return write_model_card(model_dir, card, model, data, robustness=robustness, plots=plots,
                            max_pixels=max_pixels)
