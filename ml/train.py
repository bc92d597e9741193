"""Training: fit on `train`, early-stop/calibrate/threshold on `val`, report on `test`."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from . import CARD_JSON, PACKAGE_VERSION, WEIGHTS_NAME, calibration, model_version
from .augment import AugmentConfig
from .card import write_card
from .data import discover, select, summarize
from .faces import FACE_MARGIN, SMALL_FACE_FRACTION

SPLIT_RULE = ("folder names train/val/test where present (faces128: fixed split by hash of the "
              "file name, ~75/10/15 %); otherwise sha1(file name) -> 75/10/15 %")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inference_note() -> str:
    return (
        "The engine (ml.inference.Engine) decodes JPEG/PNG/WebP only (Pillow, at most 40 MP), "
        "applies EXIF orientation, converts to RGB, then looks for a frontal face with OpenCV's "
        f"Haar cascade. It crops only when the largest face is small (face width < "
        f"{SMALL_FACE_FRACTION} x the shorter image side): a square of {FACE_MARGIN} x the face "
        "width around it (the framing of the training crops). Otherwise (no face, or a face "
        "already filling the frame like the training images) it uses the centre square of the "
        "whole image. Then the same preprocessing as training: Lanczos resize to the input "
        "size. `evaluate` feeds the data set's images through that same preprocessing without "
        "the face step (they are face crops already). Face detection needs an OpenCV build that "
        "ships the Haar cascade (opencv-python-headless 4.x, tested with 4.14.0.94); OpenCV 5.x "
        "wheels dropped it, and with them the engine reports face_found false and always uses "
        "the whole image."
    )


def train(data_roots, out_dir, *, arch="nprnet", epochs=30, image_size=128, batch_size=32,
          learning_rate=None, patience=4, max_minutes=None, exclude_sources=(),
          augment: AugmentConfig | None = None, seed=1234, uncertain_width=None,
          robustness=True, plots=True, name=None, command=None, verbose=None) -> dict:
    import keras
    import tensorflow as tf

    from .evaluate import evaluate_records, raw_probabilities, write_plots
    from .model import DEFAULT_LR, build_model, load_model

    augment = augment if augment is not None else AugmentConfig()
    uncertain_width = (calibration.DEFAULT_UNCERTAIN_WIDTH if uncertain_width is None
                       else uncertain_width)
    lr = learning_rate or DEFAULT_LR.get(arch, 1e-3)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)

    records = discover(data_roots, exclude_sources=exclude_sources)
    tr, va, te = (select(records, s) for s in ("train", "val", "test"))
    if not tr or not va:
        raise SystemExit(f"need train and val images; found train={len(tr)} val={len(va)}")
    if len({r.label for r in tr}) < 2:
        raise SystemExit("training data must contain both real and fake images")
    print(f"data: train {len(tr)}, val {len(va)}, test {len(te)} images from "
          f"{len({r.source for r in records})} source(s)", flush=True)

    model = build_model(arch, image_size)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc"), "accuracy"])
    from .data import make_dataset

    ds_tr = make_dataset(tr, image_size, batch_size=batch_size, training=True,
                         augment_config=augment, seed=seed)
    ds_va = make_dataset(va, image_size, batch_size=64)

    state = {"best": math.inf, "best_epoch": 0, "weights": None, "stopped_by": "epochs"}
    t_start = time.time()

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
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    hist = model.fit(ds_tr, validation_data=ds_va, epochs=epochs, callbacks=callbacks,
                     verbose=verbose, shuffle=False)  # tf.data shuffles already
    train_seconds = time.time() - t_start
    if state["weights"] is not None:
        model.set_weights(state["weights"])

    weights = out_dir / WEIGHTS_NAME
    tmp = out_dir / (WEIGHTS_NAME + ".tmp.keras")
    bare = build_model(arch, image_size)  # uncompiled twin: no optimizer state in the file
    bare.set_weights(model.get_weights())
    bare.save(tmp)
    os.replace(tmp, weights)
    model = load_model(weights)  # evaluate exactly what was saved

    # calibration, threshold and band on val
    raw_va = raw_probabilities(model, va, image_size)
    y_va = np.array([r.label for r in va])
    calib = calibration.fit_platt(raw_va, y_va)
    p_va = calibration.apply(raw_va, calib)
    thr = calibration.choose_threshold(p_va, y_va)
    low, high = calibration.uncertain_band(thr, uncertain_width)

    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    card = {
        "name": name or f"deepfake-{arch}",
        "architecture": arch,
        "image_size": int(image_size),
        "parameters": int(model.count_params()),
        "created": created,
        "package_version": PACKAGE_VERSION,
        "weights_file": WEIGHTS_NAME,
        "weights_sha256": sha256_file(weights),
        "weights_bytes": weights.stat().st_size,
        "output": "P(fake), calibrated",
        "calibration": calib,
        "threshold": thr,
        "uncertain_low": low,
        "uncertain_high": high,
        "uncertain_rule": f"uncertain when |P(fake) - threshold| <= {uncertain_width} "
                          "(band clipped to [0.01, 0.99])",
        "reproduce_command": command or "",
        "training": {
            "data_roots": [str(d) for d in data_roots],
            "exclude_sources": list(exclude_sources),
            "split_rule": SPLIT_RULE,
            "counts": summarize(records),
            "epochs_max": int(epochs),
            "epochs_run": len(hist.history.get("loss", [])),
            "best_epoch": state["best_epoch"],
            "stopped_by": state["stopped_by"],
            "train_seconds": round(train_seconds, 1),
            "learning_rate": lr,
            "batch_size": batch_size,
            "patience": patience,
            "max_minutes": max_minutes,
            "seed": seed,
            "augmentation": augment.as_dict(),
            "history": {k: [round(float(v), 5) for v in vals]
                        for k, vals in hist.history.items()},
            "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores visible, "
                        f"TensorFlow {tf.__version__}, Keras {keras.__version__}",
        },
        "inference_note": inference_note(),
    }
    card["version"] = model_version(card)
    val_res, _, _ = evaluate_records(model, card, va)
    card["val_metrics"] = val_res
    write_card(out_dir, card)
    if te:
        test_res, y_te, p_te = evaluate_records(model, card, te)
        card["test_metrics"] = test_res
        if plots:
            write_plots(y_te, p_te, thr, out_dir / "plots", title="(test)")
        if robustness:
            card["robustness"] = {}
            for kind in ("jpeg70", "half"):
                r, _, _ = evaluate_records(model, card, te, perturbation=kind)
                r["auc_drop"] = test_res["roc_auc"] - r["roc_auc"]
                card["robustness"][kind] = r
    write_card(out_dir, card)
    for leftover in out_dir.glob("*.tmp.keras"):
        leftover.unlink()
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    print(f"wrote {out_dir / CARD_JSON}; train {train_seconds / 60:.1f} min", flush=True)
    return card
