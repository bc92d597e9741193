"""Custom Keras layers used by the architectures (imports Keras: load it only via ``ml.model``)."""

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
