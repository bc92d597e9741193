"""Keras 3 architectures. Every model takes uint8-valued pixels (S, S, 3) and returns P(fake)."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="ml")
class NeighbourResidual(layers.Layer):
    """Image minus its 2x nearest-neighbour down- then up-sampled copy, times ``scale``.

    Removes the image content (colour, lighting, "photo style") and keeps the pixel-level
    neighbour differences where generators and blending leave traces.
    """

    def __init__(self, scale: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, x):
        down = x[:, ::2, ::2, :]
        up = ops.repeat(ops.repeat(down, 2, axis=1), 2, axis=2)
        up = up[:, : ops.shape(x)[1], : ops.shape(x)[2], :]
        return (x - up) * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _conv_bn(x, filters, kernel=3, strides=1, name=None):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      name=None if name is None else name + "_conv")(x)
    x = layers.BatchNormalization(name=None if name is None else name + "_bn")(x)
    return layers.ReLU(name=None if name is None else name + "_relu")(x)


def build_nprnet(image_size: int = 128, widths=(24, 48, 96, 128), dropout: float = 0.3):
    """Our default: neighbour-pixel-residual input, a small all-conv BN network.

    stem 4x4/2 -> [3x3 conv, 3x3/2 conv] per stage -> global average + max pooling -> dense.
    About 0.2 GFLOP per 128 px image, ~0.4 M parameters.
    """
    inp = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inp)
    x = NeighbourResidual(4.0, name="residual")(x)
    x = _conv_bn(x, widths[0], 4, 2, name="stem")
    for i, w in enumerate(widths):
        x = _conv_bn(x, w, 3, 1, name=f"s{i}a")
        nxt = widths[i + 1] if i + 1 < len(widths) else w
        if i + 1 < len(widths):
            x = _conv_bn(x, nxt, 3, 2, name=f"s{i}down")
    x = layers.Concatenate(name="pool")([
        layers.GlobalAveragePooling2D(name="gap")(x), layers.GlobalMaxPooling2D(name="gmp")(x)
    ])
    x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(64, activation="relu", name="fc")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return keras.Model(inp, out, name="nprnet")


def build_seed002(image_size: int = 128):
    """The seed-002 student network: 3x (5x5 conv 64 + max pool), 3 dilated 3x3 convs
    (32/16/16, rate 2), global pooling, dense 400/512/400 with dropout 0.5, sigmoid."""
    inp = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inp)
    for i in range(3):
        x = layers.Conv2D(64, 5, activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    for i, f in enumerate((32, 16, 16)):
        x = layers.Conv2D(f, 3, dilation_rate=2, padding="same", activation="relu",
                          name=f"dconv{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    for i, u in enumerate((400, 512, 400)):
        x = layers.Dense(u, activation="relu", name=f"fc{i + 1}")(x)
        x = layers.Dropout(0.5, name=f"drop{i + 1}")(x)
    out = layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return keras.Model(inp, out, name="seed002")


ARCHITECTURES = {
    "nprnet": build_nprnet,
    "seed002": build_seed002,
}
DEFAULT_ARCH = "nprnet"
DEFAULT_LR = {"nprnet": 2e-3, "seed002": 1e-4}


def build_model(arch: str, image_size: int):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    if arch == "nprnet" and image_size % 16:
        raise ValueError("nprnet needs an image size divisible by 16")
    return ARCHITECTURES[arch](image_size)


def load_model(path):
    return keras.saving.load_model(path, compile=False)
