"""The inference engine used by the Celery workers (TensorFlow is imported lazily).

    engine = Engine.load(max_pixels=settings.DETECTION_MAX_PIXELS)  # once per process, after fork
    pred = engine.predict(image_bytes)     # -> Prediction
    preds = engine.predict_batch([...])

One compiled call (``tf.function`` with a fixed input signature) serves every request; the
Keras ``model.predict`` loop is never used per image.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import WEIGHTS_NAME, calibration, model_version, read_card, resolve_model_dir
from .preprocess import ImageDecodeError, check_max_pixels, fit, load_image

__all__ = ["Engine", "ImageDecodeError", "Prediction", "compiled_model_fn"]


@dataclass(frozen=True)
class Prediction:
    fake_probability: float  # calibrated, 0..1
    label: str  # "real" | "fake" | "uncertain"
    model_name: str
    model_version: str
    face_found: bool
    face_box: tuple[int, int, int, int] | None  # (x, y, w, h), original pixels after EXIF
    inference_ms: float

    def as_dict(self) -> dict:
        d = asdict(self)
        d["face_box"] = list(self.face_box) if self.face_box is not None else None
        return d


def compiled_model_fn(model, image_size: int):
    """A traced call of ``model`` on uint8 batches (None, S, S, 3) -> float32 (None, 1)."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.uint8)],
        reduce_retracing=True,
    )
    def fn(images):
        return model(tf.cast(images, tf.float32), training=False)

    return fn


_THREADS_LOCK = threading.Lock()


def _configure_threads(intra: int | None, inter: int | None) -> None:
    import tensorflow as tf

    with _THREADS_LOCK:
        try:
            if intra:
                tf.config.threading.set_intra_op_parallelism_threads(int(intra))
            if inter:
                tf.config.threading.set_inter_op_parallelism_threads(int(inter))
        except RuntimeError:
            # TF's runtime is already initialised in this process: settings are fixed now.
            logging.getLogger(__name__).warning(
                "TensorFlow already initialised; thread settings (%s, %s) not applied", intra,
                inter)


class Engine:
    """Loads a model directory once and serves predictions. Create it after forking."""

    def __init__(self, model, card: dict, model_dir: Path, *, max_pixels: int):
        self._model = model
        self.max_pixels: int = check_max_pixels(max_pixels)  # larger images: ImageDecodeError
        self.card = card
        self.model_dir = model_dir
        self.name: str = str(card.get("name", model_dir.name))
        self.version: str = model_version(card)
        self.image_size: int = int(card["image_size"])
        self.threshold: float = float(card["threshold"])
        self.uncertain_low: float = float(card["uncertain_low"])
        self.uncertain_high: float = float(card["uncertain_high"])
        self._calib = card.get("calibration")
        self._fn = compiled_model_fn(model, self.image_size)
        self._local = threading.local()

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None, *,
             intra_threads: int | None = None, inter_threads: int | None = None,
             max_pixels: int) -> Engine:
        """Load ``model_dir`` (default: the shipped model). ``max_pixels`` is required: the
        caller's own limit (the service: ``settings.DETECTION_MAX_PIXELS``; stand-alone tools:
        ``preprocess.DEFAULT_MAX_PIXELS``); a larger image raises ``ImageDecodeError``."""
        max_pixels = check_max_pixels(max_pixels)
        _configure_threads(intra_threads, inter_threads)
        from .model import load_model

        model_dir = resolve_model_dir(model_dir)
        card = read_card(model_dir)
        model = load_model(model_dir / card.get("weights_file", WEIGHTS_NAME))
        engine = cls(model, card, model_dir, max_pixels=max_pixels)
        engine._warm_up()
        return engine

    # -- internals -------------------------------------------------------------------------
    def _warm_up(self) -> None:
        s = self.image_size
        self._fn(np.zeros((1, s, s, 3), np.uint8)).numpy()
        self._fn(np.zeros((2, s, s, 3), np.uint8)).numpy()

    def _detector(self):
        det = getattr(self._local, "detector", None)
        if det is None:
            from .faces import FaceDetector

            det = self._local.detector = FaceDetector()
        return det

    def _prepare(self, image):
        """-> (uint8 (S, S, 3), face_found, face_box)."""
        from .faces import crop_box_for

        img = load_image(image, max_pixels=self.max_pixels)
        rgb = np.asarray(img)
        faces = self._detector().detect(rgb)
        face_box = None
        if faces:
            face = faces[0]
            crop = crop_box_for(face, img.width, img.height)
            if crop is not None:
                x, y, w, h = crop
                img = img.crop((x, y, x + w, y + h))
                face_box = tuple(int(v) for v in face)
        return fit(img, self.image_size), face_box is not None, face_box

    def _make(self, p_raw: float, face_found: bool, face_box, ms: float) -> Prediction:
        p = float(calibration.apply(np.array([p_raw]), self._calib)[0])
        return Prediction(
            fake_probability=p,
            label=calibration.label_for(p, self.threshold, self.uncertain_low,
                                        self.uncertain_high),
            model_name=self.name,
            model_version=self.version,
            face_found=bool(face_found),
            face_box=face_box,
            inference_ms=float(ms),
        )

    def predict_array(self, arr: np.ndarray) -> float:
        """Uncalibrated P(fake) for one already-prepared uint8 (S, S, 3) array."""
        return float(self._fn(arr[None]).numpy().reshape(-1)[0])

    # -- public API ------------------------------------------------------------------------
    def predict(self, image) -> Prediction:
        t0 = time.perf_counter()
        arr, found, box = self._prepare(image)
        p_raw = self.predict_array(arr)
        return self._make(p_raw, found, box, (time.perf_counter() - t0) * 1000.0)

    def predict_batch(self, images: list) -> list[Prediction]:
        if not images:
            return []
        t0 = time.perf_counter()
        prepared = [self._prepare(im) for im in images]
        batch = np.stack([a for a, _, _ in prepared])
        raw = self._fn(batch).numpy().reshape(-1)
        ms = (time.perf_counter() - t0) * 1000.0 / len(images)
        return [self._make(float(r), f, b, ms) for r, (_, f, b) in zip(raw, prepared, strict=True)]
