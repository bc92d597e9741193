"""A numpy interpreter of the web graph format (``deepfake-web-graph/1``): the spec, runnable.

``ml/export_web.py`` writes the graphs; the browser runs them with TF.js
(static/js/private-check/graph.js). This module runs them with numpy, op for op as the format
defines them, so the tests can hold an export to the Keras model it came from without a
browser. It is a reference, not fast code: float32 throughout, convolutions as im2col matmuls.

Padding follows TensorFlow (and TF.js): "same" pads ``max((ceil(n/s) - 1) * s + k_eff - n, 0)``
in total, the smaller half before; max pooling pads with -inf.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

GRAPH_FORMAT = "deepfake-web-graph/1"


class Network:
    """A loaded graph: ``predict(x)`` -> list of outputs in the graph's ``outputs`` order."""

    def __init__(self, graph: dict, weights: bytes):
        if graph.get("format") != GRAPH_FORMAT:
            raise ValueError(f"not a {GRAPH_FORMAT} graph: {graph.get('format')!r}")
        self.graph = graph
        self.weights = decode_weights(graph["weights_manifest"], weights)

    @classmethod
    def load(cls, folder: str | Path, name: str) -> Network:
        folder = Path(folder)
        graph = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        paths = [p for group in graph["weights_manifest"] for p in group["paths"]]
        return cls(graph, b"".join((folder / p).read_bytes() for p in paths))

    def predict(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        spec = self.graph["input"]["shape"]
        if x.ndim != len(spec) or any(
                s is not None and s != d for s, d in zip(spec, x.shape, strict=True)):
            raise ValueError(f"input shape {x.shape} does not fit {spec}")
        values = {self.graph["input"]["name"]: x}
        for layer in self.graph["layers"]:
            args = [values[name] for name in layer["inputs"]]
            weights = [self.weights[name] for name in layer["weights"]]
            try:
                run = OPS[layer["op"]]
            except KeyError:
                raise ValueError(f"layer {layer['name']!r}: unknown op {layer['op']!r}") from None
            values[layer["name"]] = run(layer, args, weights).astype(np.float32, copy=False)
        return [values[name] for name in self.graph["outputs"]]


def decode_weights(manifest: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """Like ``tf.io.decodeWeights``: float32 little-endian, concatenated in manifest order."""
    out, offset = {}, 0
    for group in manifest:
        for w in group["weights"]:
            if w["dtype"] != "float32":
                raise ValueError(f"weight {w['name']!r}: dtype {w['dtype']!r}")
            n = math.prod(w["shape"])
            out[w["name"]] = np.frombuffer(data, dtype="<f4", count=n,
                                           offset=offset).reshape(w["shape"])
            offset += 4 * n
    if offset != len(data):
        raise ValueError(f"weights data has {len(data)} bytes, the manifest describes {offset}")
    return out


# ----------------------------------------------------------------------------- ops


def activation(name: str, x: np.ndarray) -> np.ndarray:
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "softmax":  # over the last axis
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


def same_padding(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) along one axis."""
    k_eff = (k - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def _pad_hw(x, layer, kh, kw, sh, sw, dh=1, dw=1, value=0.0):
    if layer["padding"] == "valid":
        return x
    ph = same_padding(x.shape[1], kh, sh, dh)
    pw = same_padding(x.shape[2], kw, sw, dw)
    return np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)


def _windows(x, kh, kw, sh, sw, dh=1, dw=1):
    """(N, OH, OW, kh, kw, C) view of every window of a padded NHWC array."""
    n, h, w, c = x.shape
    oh = (h - ((kh - 1) * dh + 1)) // sh + 1
    ow = (w - ((kw - 1) * dw + 1)) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False)


def op_conv2d(layer, args, weights):
    (x,), (kernel, bias) = args, weights
    kh, kw = layer["kernel_size"]
    sh, sw = layer["strides"]
    dh, dw = layer["dilation"]
    x = np.ascontiguousarray(_pad_hw(x, layer, kh, kw, sh, sw, dh, dw))
    win = _windows(x, kh, kw, sh, sw, dh, dw)
    y = np.tensordot(win, kernel, axes=([3, 4, 5], [0, 1, 2])) + bias
    return activation(layer["activation"], y)


def op_dense(layer, args, weights):
    (x,), (kernel, bias) = args, weights
    return activation(layer["activation"], x @ kernel + bias)


def op_prelu(layer, args, weights):
    (x,), (alpha,) = args, weights
    return np.where(x > 0, x, alpha * x)


def op_max_pool2d(layer, args, weights):
    (x,) = args
    ph, pw = layer["pool_size"]
    sh, sw = layer["strides"]
    x = np.ascontiguousarray(_pad_hw(x, layer, ph, pw, sh, sw, value=-np.inf))
    return _windows(x, ph, pw, sh, sw).max(axis=(3, 4))


def op_neighbour_residual(layer, args, weights):
    (x,) = args
    h, w = x.shape[1:3]
    up = x[:, ::2, ::2, :].repeat(2, axis=1).repeat(2, axis=2)[:, :h, :w, :]
    return (x - up) * np.float32(layer["scale"])


OPS = {
    "rescale": lambda layer, a, w: a[0] * np.float32(layer["scale"]) + np.float32(layer["offset"]),
    "neighbour_residual": op_neighbour_residual,
    "conv2d": op_conv2d,
    "dense": op_dense,
    "prelu": op_prelu,
    "activation": lambda layer, a, w: activation(layer["activation"], a[0]),
    "max_pool2d": op_max_pool2d,
    "global_avg_pool2d": lambda layer, a, w: a[0].mean(axis=(1, 2)),
    "global_max_pool2d": lambda layer, a, w: a[0].max(axis=(1, 2)),
    "concat": lambda layer, a, w: np.concatenate(a, axis=layer["axis"]),
    "flatten": lambda layer, a, w: a[0].reshape(a[0].shape[0], -1),
    "permute": lambda layer, a, w: np.transpose(a[0], layer["perm"]),
}
