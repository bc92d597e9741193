"""The architecture registry and the Keras 3 builders.

Every model takes uint8-valued pixels (S, S, 3) and returns P(fake). Importing this module is
cheap (no TensorFlow): Keras is imported when a model is built or loaded.

Adding an architecture is one ``register(Architecture(...))`` entry here: its builder, default
learning rate and input-size rule. The CLI's ``--arch`` choices, ``train`` and the model card
all read ``ARCHITECTURES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: Callable[[int], object]  # image_size -> keras.Model
    learning_rate: float  # Adam default when --lr is not given
    size_multiple: int = 1  # input-size rule: the size must be a multiple of this ...
    min_size: int = 1  # ... and at least this
    default_size: int = 128
    description: str = ""  # one line, shown in the model card
    baseline: bool = False  # the reference the default model is compared with

    def size_problem(self, image_size: int) -> str | None:
        """Why ``image_size`` does not suit this architecture, or None."""
        if image_size < self.min_size:
            return f"{self.name} needs an image size of at least {self.min_size}"
        if image_size % self.size_multiple:
            return f"{self.name} needs an image size divisible by {self.size_multiple}"
        return None

    def check_image_size(self, image_size: int) -> None:
        problem = self.size_problem(int(image_size))
        if problem:
            raise ValueError(f"{problem} (got {image_size})")


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    ARCHITECTURES[arch.name] = arch
    return arch


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}"
        ) from None


def baseline_architecture() -> Architecture | None:
    return next((a for a in ARCHITECTURES.values() if a.baseline), None)


# ----------------------------------------------------------------------------- builders


def _conv_bn(x, filters, kernel=3, strides=1, name=None):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      name=None if name is None else name + "_conv")(x)
    x = layers.BatchNormalization(name=None if name is None else name + "_bn")(x)
    return layers.ReLU(name=None if name is None else name + "_relu")(x)


def build_nprnet(image_size: int = 128, widths=(24, 48, 96, 128), dropout: float = 0.3):
    """Our default: neighbour-pixel-residual input, a small all-conv BN network.

    stem 4x4/2 -> [3x3 conv, 3x3/2 conv] per stage -> global average + max pooling -> dense.
    About 0.2 GFLOP per 128 px image, ~0.4 M parameters.
    """
    import keras
    from keras import layers

    from .layers import NeighbourResidual

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
    import keras
    from keras import layers

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


# ----------------------------------------------------------------------------- the registry

register(Architecture(
    "nprnet", build_nprnet, learning_rate=2e-3, size_multiple=16, min_size=16,
    description="neighbour-pixel-residual CNN: the image minus its 2x down/up-sampled copy, "
                "then a small all-conv batch-norm network",
))
register(Architecture(
    "seed002", build_seed002, learning_rate=1e-4, min_size=36, baseline=True,
    description="the seed-002 student network: 3 conv + pool, 3 dilated convs, 3 dense layers",
))
DEFAULT_ARCH = "nprnet"


def build_model(arch: str, image_size: int):
    spec = get_architecture(arch)
    spec.check_image_size(image_size)
    return spec.builder(int(image_size))


def load_model(path):
    import keras

    from . import layers  # noqa: F401 - registers the custom layers before deserialising

    return keras.saving.load_model(path, compile=False)


def __getattr__(name):  # saved models name "ml.model" as the module of NeighbourResidual
    if name == "NeighbourResidual":
        from .layers import NeighbourResidual

        return NeighbourResidual
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
