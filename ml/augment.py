"""Training-time augmentation (TensorFlow ops, applied per image inside tf.data).

Each transform is applied with its own probability (0 disables it). Order mimics what an upload
goes through: flip -> rescale (down then up) -> Gaussian blur -> Gaussian noise -> JPEG
re-compression. Input and output: uint8 (S, S, 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class AugmentConfig:
    enabled: bool = True
    flip: float = 0.5
    rescale: float = 0.3
    rescale_min: float = 0.5
    rescale_max: float = 0.9
    blur: float = 0.15
    blur_sigma_max: float = 1.2
    noise: float = 0.15
    noise_std_max: float = 4.0  # in 0..255 pixel units
    jpeg: float = 0.5
    jpeg_min: int = 60
    jpeg_max: int = 95

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig:
        d = d or {}
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def make_augmenter(cfg: AugmentConfig, size: int, seed: int = 1234):
    import tensorflow as tf

    size = int(size)

    def _coin(p):
        return tf.random.uniform([]) < p

    def _blur(x):
        sigma = tf.random.uniform([], 0.3, cfg.blur_sigma_max)
        r = tf.range(-2.0, 3.0)
        k = tf.exp(-(r**2) / (2.0 * sigma**2))
        k = k / tf.reduce_sum(k)
        k2 = k[:, None] * k[None, :]
        kern = tf.tile(k2[:, :, None, None], [1, 1, 3, 1])
        xp = tf.pad(x[None], [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
        return tf.nn.depthwise_conv2d(xp, kern, [1, 1, 1, 1], "VALID")[0]

    def _rescale(x):
        f = tf.random.uniform([], cfg.rescale_min, cfg.rescale_max)
        s = tf.maximum(8, tf.cast(tf.round(f * size), tf.int32))
        small = tf.image.resize(x, [s, s], method="bilinear", antialias=True)
        return tf.image.resize(small, [size, size], method="bilinear")

    def _noise(x):
        std = tf.random.uniform([], 0.5, cfg.noise_std_max)
        return x + tf.random.normal(tf.shape(x), stddev=std)

    def _jpeg(x):
        q = tf.random.uniform([], cfg.jpeg_min, cfg.jpeg_max + 1, dtype=tf.int32)
        u8 = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
        return tf.cast(tf.image.adjust_jpeg_quality(u8, q), tf.float32)

    def augment_one(img):
        x = tf.cast(img, tf.float32)
        if cfg.flip > 0:
            x = tf.cond(_coin(cfg.flip), lambda: tf.image.flip_left_right(x), lambda: x)
        if cfg.rescale > 0:
            x = tf.cond(_coin(cfg.rescale), lambda: _rescale(x), lambda: x)
        if cfg.blur > 0:
            x = tf.cond(_coin(cfg.blur), lambda: _blur(x), lambda: x)
        if cfg.noise > 0:
            x = tf.cond(_coin(cfg.noise), lambda: _noise(x), lambda: x)
        if cfg.jpeg > 0:
            x = tf.cond(_coin(cfg.jpeg), lambda: _jpeg(x), lambda: x)
        x = tf.clip_by_value(tf.round(x), 0.0, 255.0)
        x = tf.cast(x, tf.uint8)
        x.set_shape((size, size, 3))
        return x

    def augment_batch(batch):
        return tf.map_fn(augment_one, batch, fn_output_signature=tf.TensorSpec((size, size, 3),
                                                                               tf.uint8))

    augment_batch.one = augment_one
    return augment_batch
