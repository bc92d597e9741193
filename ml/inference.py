"""The inference engine used by the Celery workers (TensorFlow is imported lazily).

    engine = Engine.load(max_pixels=settings.DETECTION_MAX_PIXELS)  # once per process, after fork
    pred = engine.predict(image_bytes)     # -> Prediction: a verdict per face, or "no face"
    preds = engine.predict_batch([...])    # one model call for every face of every image
    preds = engine.predict_frames([rgb, ...])  # the same for decoded video frames (arrays)
    maps = engine.heatmaps(pred)           # Grad-CAM per face, from the inputs pred kept

One compiled call (``tf.function`` with a fixed input signature) serves every request; the
Keras ``model.predict`` loop is never used per image.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import WEIGHTS_NAME, calibration, model_version, read_card, resolve_model_dir
from .faces import MAX_FACES
from .preprocess import ImageDecodeError, check_max_pixels, fit, load_image

__all__ = ["NO_FACE", "Engine", "FaceHeatmap", "FaceVerdict", "ImageDecodeError",
           "ModelInputs", "Prediction", "compiled_model_fn"]


NO_FACE = "no_face"


@dataclass(frozen=True)
class FaceVerdict:
    """The model's verdict on one face."""

    box: tuple[int, int, int, int]  # (x, y, w, h), original pixels after EXIF orientation
    fake_probability: float  # calibrated, 0..1
    label: str  # "real" | "fake" | "uncertain"
    detector_confidence: float

    def as_dict(self) -> dict:
        return {"box": list(self.box), "fake_probability": self.fake_probability,
                "label": self.label, "detector_confidence": self.detector_confidence}


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """What the model saw for each face of one image, kept with its prediction so that the
    heatmaps need no second pass of the face detector."""

    arrays: np.ndarray  # uint8 (faces, S, S, 3), as the model got them
    regions: tuple[tuple[int, int, int, int], ...]  # (x, y, w, h) in image pixels, per face


@dataclass(frozen=True)
class FaceHeatmap:
    """Grad-CAM of one face: an RGBA PNG to lay over ``region``, the square of the image the
    model saw for that face (its crop, or the image's centre square)."""

    png: bytes
    region: tuple[int, int, int, int]


@dataclass(frozen=True)
class Prediction:
    """The image's verdict: the most suspicious face decides; no face means no verdict."""

    fake_probability: float | None  # of the deciding face; None when no face was found
    label: str  # "real" | "fake" | "uncertain" | "no_face"
    model_name: str
    model_version: str
    faces: tuple[FaceVerdict, ...]  # largest first, numbered 1.. in this order
    inference_ms: float
    # The model inputs behind ``faces`` (Engine.heatmaps explains them); not part of the result.
    inputs: ModelInputs | None = field(default=None, repr=False, compare=False)

    @property
    def face_found(self) -> bool:
        return bool(self.faces)

    @property
    def deciding_face(self) -> int | None:
        """Index into ``faces`` of the face behind the verdict (highest P(fake))."""
        if not self.faces:
            return None
        return max(range(len(self.faces)), key=lambda i: self.faces[i].fake_probability)

    @property
    def face_box(self) -> tuple[int, int, int, int] | None:
        i = self.deciding_face
        return None if i is None else self.faces[i].box

    def as_dict(self) -> dict:
        return {
            "fake_probability": self.fake_probability,
            "label": self.label,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "faces": [f.as_dict() for f in self.faces],
            "deciding_face": self.deciding_face,
            "inference_ms": self.inference_ms,
        }


def compiled_model_fn(model, image_size: int, *, jit_compile: bool = False):
    """A traced call of ``model`` on uint8 batches (None, S, S, 3) -> float32 (None, 1).
    ``jit_compile``: through XLA (the benchmark measures it; the engine does not use it)."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.uint8)],
        reduce_retracing=True,
        jit_compile=jit_compile,
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

    def __init__(self, model, card: dict, model_dir: Path, *, max_pixels: int,
                 max_faces: int = MAX_FACES):
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
        self.flips: bool = bool(card.get("test_time_flips", False))
        if isinstance(max_faces, bool) or int(max_faces) != max_faces or max_faces < 1:
            raise ValueError(f"max_faces must be a whole number >= 1, not {max_faces!r}")
        self.max_faces: int = int(max_faces)
        self._fn = compiled_model_fn(model, self.image_size)
        self._local = threading.local()
        self._explainer = None  # ml.explain.GradCam, built on the first heatmap
        self._explainer_lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None, *,
             intra_threads: int | None = None, inter_threads: int | None = None,
             max_pixels: int, max_faces: int = MAX_FACES) -> Engine:
        """Load ``model_dir`` (default: the shipped model). ``max_pixels`` is required: the
        caller's own limit (the service: ``settings.DETECTION_MAX_PIXELS``; stand-alone tools:
        ``preprocess.DEFAULT_MAX_PIXELS``); a larger image raises ``ImageDecodeError``."""
        max_pixels = check_max_pixels(max_pixels)
        _configure_threads(intra_threads, inter_threads)
        from .model import load_model

        model_dir = resolve_model_dir(model_dir)
        card = read_card(model_dir)
        model = load_model(model_dir / card.get("weights_file", WEIGHTS_NAME))
        engine = cls(model, card, model_dir, max_pixels=max_pixels, max_faces=max_faces)
        engine._warm_up()
        return engine

    # -- internals -------------------------------------------------------------------------
    def _warm_up(self) -> None:
        s = self.image_size
        self._fn(np.zeros((1, s, s, 3), np.uint8)).numpy()
        self._fn(np.zeros((2, s, s, 3), np.uint8)).numpy()
        self._detector().detect(np.full((64, 64, 3), 127, np.uint8))  # builds MTCNN's graphs

    def _detector(self):
        det = getattr(self._local, "detector", None)
        if det is None:
            from .faces import FaceDetector

            det = self._local.detector = FaceDetector(max_faces=self.max_faces)
        return det

    def prepare(self, image) -> tuple[list[np.ndarray], list]:
        """The model inputs of one image: ``([uint8 (S, S, 3) per face], [faces.Face, ...])``.

        One face that fills the frame (the framing of every training image) is judged on the
        whole image, centre square, through exactly the training preprocessing
        (``preprocess.fit``); smaller faces, or several, each on its own square crop.
        """
        arrays, faces, _regions = self._prepare(image)
        return arrays, faces

    def _prepare(self, image) -> tuple[list[np.ndarray], list, list[tuple[int, int, int, int]]]:
        """``prepare``, plus the region of the image each input shows, (x, y, w, h)."""
        img = load_image(image, max_pixels=self.max_pixels)
        return self._prepare_decoded(img, np.asarray(img))

    def _prepare_decoded(self, img, rgb: np.ndarray):
        """``_prepare`` of a decoded RGB image, given as PIL (crops) and as its pixels (faces)."""
        from .faces import crop_box_for

        faces = self._detector().detect(rgb)
        arrays, regions = [], []
        for face in faces:
            # With several faces each gets its own crop, even a large one: the whole image
            # would show them all and give every face the same verdict.
            crop = crop_box_for(face, img.width, img.height, whole_image_ok=len(faces) == 1)
            if crop is None:
                arrays.append(fit(img, self.image_size))
                side = min(img.width, img.height)  # fit's centre square
                crop = ((img.width - side) // 2, (img.height - side) // 2, side, side)
            else:
                x, y, w, h = crop
                arrays.append(fit(img.crop((x, y, x + w, y + h)), self.image_size))
            regions.append(tuple(int(v) for v in crop))
        return arrays, faces, regions

    def _calibrated(self, raw) -> np.ndarray:
        return calibration.apply(np.asarray(raw, np.float64), self._calib)

    def _label(self, p: float) -> str:
        return calibration.label_for(p, self.threshold, self.uncertain_low, self.uncertain_high)

    def _raw(self, batch: np.ndarray) -> np.ndarray:
        """Uncalibrated P(fake) per row; with test-time flips the mean logit of each image and
        its mirror (the card's ``test_time_flips``)."""
        if not len(batch):
            return np.zeros(0)
        if not self.flips:
            return self._fn(batch).numpy().reshape(-1)
        both = self._fn(np.concatenate([batch, batch[:, :, ::-1]])).numpy().reshape(-1)
        n = len(batch)
        return calibration.sigmoid((calibration.logit(both[:n]) + calibration.logit(both[n:]))
                                   / 2)

    def _make(self, raw, faces, ms: float, inputs: ModelInputs | None = None) -> Prediction:
        verdicts = tuple(
            FaceVerdict(box=tuple(int(v) for v in f.box), fake_probability=float(p),
                        label=self._label(float(p)), detector_confidence=round(f.confidence, 4))
            for f, p in zip(faces, self._calibrated(raw), strict=True))
        if verdicts:
            top = max(verdicts, key=lambda v: v.fake_probability)
            p_img, label = top.fake_probability, top.label
        else:
            p_img, label = None, NO_FACE
        return Prediction(fake_probability=p_img, label=label, model_name=self.name,
                          model_version=self.version, faces=verdicts, inference_ms=float(ms),
                          inputs=inputs)

    def _stacked(self, arrays: list[np.ndarray]) -> np.ndarray:
        s = self.image_size
        return np.stack(arrays) if arrays else np.zeros((0, s, s, 3), np.uint8)

    def predict_array(self, arr: np.ndarray) -> float:
        """Uncalibrated P(fake) for one already-prepared uint8 (S, S, 3) array."""
        return float(self._raw(arr[None])[0])

    def predict_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Uncalibrated P(fake) per row of a prepared uint8 batch (N, S, S, 3): one model call."""
        return self._raw(np.asarray(batch, np.uint8))

    # -- public API ------------------------------------------------------------------------
    def predict(self, image) -> Prediction:
        t0 = time.perf_counter()
        arrays, faces, regions = self._prepare(image)
        batch = self._stacked(arrays)
        raw = self._raw(batch) if arrays else np.zeros(0)
        return self._make(raw, faces, (time.perf_counter() - t0) * 1000.0,
                          ModelInputs(batch, tuple(regions)))

    def predict_batch(self, images: list) -> list[Prediction]:
        """One model call for every face of every image."""
        if not images:
            return []
        t0 = time.perf_counter()
        return self._predict_prepared([self._prepare(im) for im in images], t0)

    def predict_frames(self, frames: list) -> list[Prediction]:
        """``predict_batch`` for decoded video frames: RGB uint8 arrays (H, W, 3) (or PIL RGB
        images), judged as they are, with no encoding round trip; one model call for every
        face of every frame. Boxes are in the frame's pixels."""
        if not frames:
            return []
        t0 = time.perf_counter()
        prepared = []
        for frame in frames:
            if isinstance(frame, Image.Image):
                img = load_image(frame, max_pixels=self.max_pixels)
                rgb = np.asarray(img)
            else:
                rgb = np.asarray(frame)
                if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                    raise ValueError(f"a frame must be uint8 (H, W, 3), not {rgb.dtype} "
                                     f"{rgb.shape}")
                if rgb.shape[0] * rgb.shape[1] > self.max_pixels:
                    raise ImageDecodeError(
                        f"The frame is too large ({rgb.shape[1]}x{rgb.shape[0]} pixels; at "
                        f"most {self.max_pixels:,} allowed).")
                img = Image.fromarray(np.ascontiguousarray(rgb))
            prepared.append(self._prepare_decoded(img, rgb))
        return self._predict_prepared(prepared, t0)

    def _predict_prepared(self, prepared: list, t0: float) -> list[Prediction]:
        """One model call for every face of the prepared images; the time since ``t0`` is
        shared out evenly."""
        arrays = [a for arrs, _, _ in prepared for a in arrs]
        batch = self._stacked(arrays)
        raw = self._raw(batch) if arrays else np.zeros(0)
        ms = (time.perf_counter() - t0) * 1000.0 / len(prepared)
        out, at = [], 0
        for arrs, faces, regions in prepared:
            n = len(arrs)
            out.append(self._make(raw[at:at + n], faces, ms,
                                  ModelInputs(batch[at:at + n], tuple(regions))))
            at += n
        return out

    def heatmaps(self, prediction: Prediction, *, size: int = 64) -> list[FaceHeatmap]:
        """Grad-CAM of every face of ``prediction`` (made by this engine), in its order: where
        the network found the evidence for that face's verdict (toward fake when it leans fake,
        toward real otherwise). One batched call; the face detector does not run again.

        About 3 ms per face for the shipped model on one CPU thread (median over 55 faces of
        faces128, Grad-CAM and PNG together), beside about 10 ms for ``predict`` per image.
        """
        from .explain import GradCam, heatmap_png

        inputs = prediction.inputs
        if inputs is None:
            raise ValueError("this prediction kept no model inputs (not made by Engine.predict)")
        if len(inputs.arrays) != len(prediction.faces):
            raise ValueError("the prediction's inputs do not match its faces")
        if not prediction.faces:
            return []
        if self._explainer is None:
            with self._explainer_lock:
                if self._explainer is None:
                    self._explainer = GradCam(self._model)
        toward = [1.0 if f.fake_probability >= self.threshold else -1.0 for f in prediction.faces]
        maps = self._explainer.maps(inputs.arrays, toward=toward, flips=self.flips)
        return [FaceHeatmap(png=heatmap_png(m, size=size), region=r)
                for m, r in zip(maps, inputs.regions, strict=True)]

