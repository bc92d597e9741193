"""Grad-CAM: where in its input the network found the evidence for its verdict (no Django).

    cam = GradCam(model)                      # any registered architecture (TF loaded lazily)
    maps = cam.maps(inputs, toward=[1, -1])   # uint8 (N, S, S, 3) -> float32 (N, S, S), 0..1
    png = heatmap_png(maps[0])                # a small RGBA PNG to lay over the input's region

Grad-CAM (Selvaraju et al. 2017): the gradient of the model's score with respect to the last
spatial feature map, averaged over the map, weighs each channel; the weighted sum of the
channels, rectified, is the map. The score is the logit of P(fake) (the output layer's input
times its weights, so a saturated sigmoid does not flatten the gradient), or its negative to
explain a "real" verdict. The feature map is found automatically: the last layer whose output
is still an image (rank 4, larger than 1 x 1), e.g. ``s3a_relu`` of nprnet (8 x 8 at 128 px) or
``dconv3`` of seed002. Each map is scaled to its own maximum: it says where, not how much.

A heatmap shows where the network looked, not proof: Grad-CAM is coarse (one value per
feature-map cell, 16 x 16 pixels for nprnet) and explains this network's reasoning, which may
be wrong.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["COLOUR_MAP", "GradCam", "feature_layer", "heatmap_png", "heatmap_rgba"]

# Matplotlib's "inferno" (perceptually uniform, readable in grey and by most colour-blind
# people), sampled at 17 points and interpolated into a 256-entry table: the worker needs no
# matplotlib for it.
_INFERNO_ANCHORS = np.array(
    [(0, 0, 4), (11, 7, 36), (33, 12, 74), (61, 9, 101), (87, 16, 110), (113, 25, 110),
     (138, 34, 106), (163, 44, 97), (188, 55, 84), (210, 70, 68), (228, 90, 49), (241, 115, 29),
     (249, 142, 9), (252, 172, 17), (249, 203, 53), (242, 234, 105), (252, 255, 164)],
    dtype=np.float64,
)


def _colour_table(anchors: np.ndarray) -> np.ndarray:
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1).round().astype(
        np.uint8)


COLOUR_MAP = _colour_table(_INFERNO_ANCHORS)  # (256, 3) uint8

# Opacity rises with the value: below ALPHA_FLOOR the picture shows through untouched, the
# hottest areas cover it at ALPHA_MAX (never fully, so the face stays visible under them).
ALPHA_FLOOR = 0.15
ALPHA_MAX = 0.78


def heatmap_rgba(cam: np.ndarray) -> np.ndarray:
    """A map in 0..1 (H, W) as uint8 RGBA (H, W, 4): colour from the table, alpha rising with
    the value."""
    v = np.clip(np.nan_to_num(np.asarray(cam, np.float64), nan=0.0), 0.0, 1.0)
    if v.ndim != 2:
        raise ValueError(f"a heatmap is 2-D (H, W), not {v.shape}")
    rgb = COLOUR_MAP[np.round(v * 255).astype(np.intp)]
    ramp = np.clip((v - ALPHA_FLOOR) / (1.0 - ALPHA_FLOOR), 0.0, 1.0)
    # Smoothstep: no visible edge where the floor ends.
    alpha = np.round(255 * ALPHA_MAX * ramp * ramp * (3 - 2 * ramp)).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=2)


def heatmap_png(cam: np.ndarray, *, size: int | None = 64) -> bytes:
    """The map as a small RGBA PNG, ``size`` x ``size`` (None: the map's own size).

    64 px is plenty: the map is smooth (bilinear from a coarse feature map) and the browser
    scales it to the region it covers; it keeps each face's PNG at a few kB.
    """
    cam = np.asarray(cam, np.float32)
    if size is not None and cam.shape != (size, size):
        # Resized as values (float, bilinear), then coloured: no colour blending artefacts.
        cam = np.asarray(Image.fromarray(cam).resize((size, size), Image.Resampling.BILINEAR))
    buffer = io.BytesIO()
    # Default compression: optimize=True saves 3 % of a few kB for 5x the time.
    Image.fromarray(heatmap_rgba(cam)).save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- Grad-CAM


def feature_layer(model):
    """The last layer whose output is still spatial (rank 4 and larger than 1 x 1): the
    feature map Grad-CAM weighs. Falls back to the last rank-4 one (a 1 x 1 map is flat but
    honest); ValueError when the model has none."""
    last_any = None
    for layer in reversed(model.layers):
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):  # a layer used more than once, or never
            continue
        if len(shape) != 4 or type(layer).__name__ == "InputLayer":
            continue
        if shape[1] and shape[2] and shape[1] * shape[2] > 1:
            return layer
        last_any = last_any or layer
    if last_any is None:
        raise ValueError(f"model {model.name!r} has no spatial feature map to explain")
    return last_any


def _score_head(model):
    """(tensor to differentiate, how to turn it into the logit of P(fake)): the output layer's
    input and its weights when it is a Dense with a sigmoid, else the output itself."""
    import keras

    out_layer = model.layers[-1]
    activation = getattr(out_layer, "activation", None)
    if (isinstance(out_layer, keras.layers.Dense) and activation is not None
            and getattr(activation, "__name__", "") == "sigmoid"):
        kernel, bias = out_layer.kernel, out_layer.bias

        def logit(head):
            z = keras.ops.matmul(head, kernel)
            return z + bias if bias is not None else z

        return out_layer.input, logit
    # Scaling the score by a positive number per image leaves the normalised map unchanged, so
    # P(fake) itself explains as its logit would (unless it is saturated).
    return model.output, lambda p: p


class GradCam:
    """Grad-CAM for a Keras model on uint8 (N, S, S, 3) batches. Thread-safe; the traced
    function is built on first use."""

    def __init__(self, model, *, layer_name: str | None = None):
        self.model = model
        self.layer = model.get_layer(layer_name) if layer_name else feature_layer(model)
        shape = tuple(model.inputs[0].shape)
        if len(shape) != 4 or shape[1] is None or shape[1] != shape[2]:
            raise ValueError(f"Grad-CAM needs a square image input, not {shape}")
        self.image_size = int(shape[1])
        self._fn = None
        self._lock = threading.Lock()

    def _build(self):
        import keras
        import tensorflow as tf

        head, to_logit = _score_head(self.model)
        probe = keras.Model(self.model.inputs, [self.layer.output, head],
                            name=f"{self.model.name}_gradcam")
        size = self.image_size

        @tf.function(
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8),
                             tf.TensorSpec([None], tf.float32)],
            reduce_retracing=True,
        )
        def fn(images, toward):
            x = tf.cast(images, tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(x)
                features, head_out = probe(x, training=False)
                score = tf.reshape(to_logit(head_out), [-1]) * toward
            grads = tape.gradient(score, features)  # each image's score depends on it alone
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1, keepdims=True))
            return tf.image.resize(cam, (size, size), method="bilinear")[..., 0]

        return fn

    def maps(self, inputs: np.ndarray, *, toward: Sequence[float] | np.ndarray | None = None,
             flips: bool = False) -> np.ndarray:
        """One map per input, float32 (N, S, S) in 0..1, each scaled to its own maximum (all
        zero when nothing in the input speaks for the explained verdict).

        ``toward``: per input +1 to explain "fake" (the default), -1 to explain "real".
        ``flips``: also explain each mirrored input and average (as the engine's test-time
        flips average the verdicts).
        """
        batch = np.asarray(inputs, np.uint8)
        s = self.image_size
        if batch.ndim != 4 or batch.shape[1:] != (s, s, 3):
            raise ValueError(f"inputs must be uint8 (N, {s}, {s}, 3), not {batch.shape}")
        n = len(batch)
        if n == 0:
            return np.zeros((0, s, s), np.float32)
        sign = np.ones(n, np.float32) if toward is None else np.sign(
            np.asarray(toward, np.float32)).reshape(-1)
        if sign.shape != (n,):
            raise ValueError(f"toward needs one sign per input ({n}), not {sign.shape}")
        if self._fn is None:
            with self._lock:
                if self._fn is None:
                    self._fn = self._build()
        raw = self._fn(batch, sign).numpy()
        if flips:
            mirrored = self._fn(np.ascontiguousarray(batch[:, :, ::-1]), sign).numpy()
            raw = (raw + mirrored[:, :, ::-1]) / 2
        top = raw.reshape(n, -1).max(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(top[:, None, None] > 1e-12, raw / top[:, None, None], 0.0)
        return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)
