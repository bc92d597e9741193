"""``python -m ml export-web``: the model and the face detector as files a browser can run.

The private check (``/private-check/``) runs the whole pipeline in the browser with TF.js, so the
image never leaves the person's machine. This module writes what that page loads, into
``static/private-check/model/`` by default:

- ``manifest.json``: format ``deepfake-web-model/1``; the model's name, version, calibration,
  threshold and uncertain band (from the model card), the face rules (from ``ml.faces`` and the
  ``mtcnn`` package's own defaults), the network files with their sizes and sha256, and the
  parity tolerance the browser/server comparison is held to.
- ``<net>.json`` + ``<net>.bin`` for the classifier and MTCNN's PNet, RNet and ONet: a small
  layer graph (format ``deepfake-web-graph/1``; ops documented in ml/README.md and executed by
  ``ml.web_reference``) and its float32 little-endian weights in TF.js's weights-manifest
  layout, so ``tf.io.decodeWeights`` reads them.

The graph is not a TF.js "layers model": a handful of ops keeps the browser interpreter small
and lets the exporter fold BatchNormalization into the preceding convolution and drop Dropout
(inference needs neither). A layer type the format does not know fails the export with its name
and type, rather than writing a graph the browser would run wrongly.

The output is deterministic: the same model gives byte-identical files (the manifest's
``exported`` is the card's ``created`` time, not the clock), so a test can check that the
committed export is current.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import REPO_ROOT, model_version, read_card, resolve_model_dir

FORMAT = "deepfake-web-model/1"
GRAPH_FORMAT = "deepfake-web-graph/1"
EXPORTER = "python -m ml export-web"
DEFAULT_OUT_DIR = REPO_ROOT / "static" / "private-check" / "model"
MANIFEST_NAME = "manifest.json"
# The largest |P(fake) browser - P(fake) server| accepted for the same image in Chromium. The
# browser re-implements resampling and detection bit for bit, so only float sums differ by
# backend: `python -m ml web-parity` measured at most 6e-7 over 158 faces. 1e-3 leaves room for
# another CPU's float order while any real preprocessing mistake (a resize off by one level
# moves P by 1e-2 and more) still fails.
PARITY_TOLERANCE = 0.001
NETWORKS = ("classifier", "pnet", "rnet", "onet")
ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax")
# MTCNN's networks return their heads as a list; the names are those of the package's
# ``call()`` (mtcnn/network/*.py), in its output order.
MTCNN_OUTPUTS = {
    "pnet": ("bbox_reg", "bbox_class"),
    "rnet": ("bbox_reg", "bbox_class"),
    "onet": ("bbox_reg", "landmarks", "bbox_class"),
}
# The package builds RNet/ONet for fixed crops and PNet for any image size.
MTCNN_INPUT_SHAPES = {"pnet": (None, None, 3), "rnet": (24, 24, 3), "onet": (48, 48, 3)}


class ExportError(ValueError):
    """The model cannot be written in the web format (an unknown layer, an unfoldable BN...)."""


# ----------------------------------------------------------------------------- the graph


@dataclass
class WebGraph:
    """One network in the web format: layers in execution order and their named weights."""

    name: str
    input_name: str
    input_shape: list
    layers: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # insertion order = .bin order

    def layer(self, name: str) -> dict:
        return next(op for op in self.layers if op["name"] == name)

    def add_weight(self, name: str, value) -> str:
        if name in self.weights:
            raise ExportError(f"{self.name}: weight name {name!r} used twice")
        self.weights[name] = np.ascontiguousarray(np.asarray(value, dtype="<f4"))
        return name

    def graph_json(self, weights_file: str) -> dict:
        return {
            "format": GRAPH_FORMAT,
            "name": self.name,
            "input": {"name": self.input_name, "shape": list(self.input_shape)},
            "layers": self.layers,
            "outputs": list(self.outputs),
            "weights_manifest": [{
                "paths": [weights_file],
                "weights": [{"name": n, "shape": list(w.shape), "dtype": "float32"}
                            for n, w in self.weights.items()],
            }],
        }

    def weights_bytes(self) -> bytes:
        return b"".join(w.tobytes() for w in self.weights.values())


def _activation_name(layer, act) -> str:
    name = getattr(act, "__name__", None)
    if name not in ACTIVATIONS:
        raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}): activation "
                          f"{name or act!r} is not in the web format ({', '.join(ACTIVATIONS)})")
    return name


def _pair(v) -> list[int]:
    return [int(x) for x in (v if isinstance(v, (tuple, list)) else (v, v))]


def _need(layer, ok: bool, what: str) -> None:
    if not ok:
        raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}): {what} is not "
                          "supported by the web format")


def _channels_last(layer) -> None:
    fmt = getattr(layer, "data_format", "channels_last")
    _need(layer, fmt == "channels_last", f"data_format {fmt!r}")


def _op_rescaling(g, layer, name, inputs):
    scale, offset = layer.scale, layer.offset
    _need(layer, np.ndim(scale) == 0 and np.ndim(offset) == 0, "a per-channel scale/offset")
    return {"op": "rescale", "scale": float(scale), "offset": float(offset)}


def _op_neighbour_residual(g, layer, name, inputs):
    return {"op": "neighbour_residual", "scale": float(layer.scale)}


def _op_conv2d(g, layer, name, inputs):
    _channels_last(layer)
    _need(layer, layer.groups == 1, f"groups={layer.groups}")
    _need(layer, layer.padding in ("same", "valid"), f"padding {layer.padding!r}")
    kernel = np.asarray(layer.kernel.numpy(), dtype=np.float64)
    bias = (np.asarray(layer.bias.numpy(), dtype=np.float64) if layer.use_bias
            else np.zeros(kernel.shape[-1]))
    op = {"op": "conv2d", "kernel_size": list(kernel.shape[:2]),
          "strides": _pair(layer.strides), "padding": layer.padding,
          "dilation": _pair(layer.dilation_rate),
          "activation": _activation_name(layer, layer.activation)}
    return op, {"kernel": kernel, "bias": bias}


def _op_dense(g, layer, name, inputs):
    kernel = np.asarray(layer.kernel.numpy(), dtype=np.float64)
    bias = (np.asarray(layer.bias.numpy(), dtype=np.float64) if layer.use_bias
            else np.zeros(kernel.shape[-1]))
    op = {"op": "dense", "units": int(layer.units),
          "activation": _activation_name(layer, layer.activation)}
    return op, {"kernel": kernel, "bias": bias}


def _op_prelu(g, layer, name, inputs):
    return {"op": "prelu"}, {"alpha": np.asarray(layer.alpha.numpy(), dtype=np.float64)}


def _op_activation(g, layer, name, inputs):
    return {"op": "activation", "activation": _activation_name(layer, layer.activation)}


def _op_relu(g, layer, name, inputs):
    _need(layer, layer.max_value is None and not layer.negative_slope and not layer.threshold,
          "a ReLU with max_value/negative_slope/threshold")
    return {"op": "activation", "activation": "relu"}


def _op_softmax(g, layer, name, inputs):
    axis = layer.axis
    _need(layer, axis in (-1, [-1], (-1,)), f"softmax over axis {axis!r} (only the last axis)")
    return {"op": "activation", "activation": "softmax"}


def _op_max_pool2d(g, layer, name, inputs):
    _channels_last(layer)
    _need(layer, layer.padding in ("same", "valid"), f"padding {layer.padding!r}")
    return {"op": "max_pool2d", "pool_size": _pair(layer.pool_size),
            "strides": _pair(layer.strides or layer.pool_size), "padding": layer.padding}


def _op_global_pool(op_name):
    def convert(g, layer, name, inputs):
        _channels_last(layer)
        _need(layer, not layer.keepdims, "keepdims=True")
        return {"op": op_name}
    return convert


def _op_concat(g, layer, name, inputs):
    return {"op": "concat", "axis": int(layer.axis)}


def _op_flatten(g, layer, name, inputs):
    _channels_last(layer)
    return {"op": "flatten"}


def _op_permute(g, layer, name, inputs):
    return {"op": "permute", "perm": [0, *(int(d) for d in layer.dims)]}


def _converters() -> dict:
    """Keras layer class -> converter. Exact classes: a subclass may compute something else."""
    from keras import layers as L

    from .layers import NeighbourResidual

    return {
        L.Rescaling: _op_rescaling,
        NeighbourResidual: _op_neighbour_residual,
        L.Conv2D: _op_conv2d,
        L.Dense: _op_dense,
        L.PReLU: _op_prelu,
        L.Activation: _op_activation,
        L.ReLU: _op_relu,
        L.Softmax: _op_softmax,
        L.MaxPooling2D: _op_max_pool2d,
        L.GlobalAveragePooling2D: _op_global_pool("global_avg_pool2d"),
        L.GlobalMaxPooling2D: _op_global_pool("global_max_pool2d"),
        L.Concatenate: _op_concat,
        L.Flatten: _op_flatten,
        L.Permute: _op_permute,
    }


def _fold_batch_norm(conv_op: dict, conv_weights: dict, bn) -> None:
    """BN(conv(x)) as one conv: kernel * g/sqrt(v+eps), (bias - mean) * g/sqrt(v+eps) + beta.

    Done in float64 and rounded once to float32, so the folded network is as close to Keras's
    two-step float32 computation as float32 allows.
    """
    _need(bn, bn.axis in (-1, 3, [-1], [3]), f"axis {bn.axis!r}")
    c = conv_weights["kernel"].shape[-1]
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones(c)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros(c)
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    factor = gamma / np.sqrt(var + float(bn.epsilon))
    conv_weights["kernel"] = conv_weights["kernel"] * factor
    conv_weights["bias"] = (conv_weights["bias"] - mean) * factor + beta


def _trace(model) -> tuple[object, list[tuple[object, list[str]]], list[str]]:
    """The input layer, the layers in execution order with their input layer names, and the
    output layer names, walked back from the model's outputs (a functional Keras model)."""
    if len(model.inputs) != 1:
        raise ExportError(f"{model.name}: the web format takes one input, not {len(model.inputs)}")
    order: list[tuple[object, list[str]]] = []
    seen: set[str] = set()

    def visit(tensor) -> str:
        op, node_index, _ = tensor._keras_history
        if op.name not in seen:
            seen.add(op.name)
            node = op._inbound_nodes[node_index]
            names = [visit(t) for t in node.input_tensors]
            if len(node.outputs) != 1:
                raise ExportError(f"layer {op.name!r} ({type(op).__name__}) has "
                                  f"{len(node.outputs)} outputs; the web format needs one")
            order.append((op, names))
        return op.name

    outputs = [visit(t) for t in model.outputs]
    input_layer, _ = order[0]
    if type(input_layer).__name__ != "InputLayer":  # pragma: no cover - Keras always starts so
        raise ExportError(f"{model.name}: the graph does not start at its input")
    return input_layer, order[1:], outputs


def graph_from_keras(model, name: str, *, output_names=None) -> WebGraph:
    """The web graph of a functional Keras model (BatchNorm folded, Dropout dropped)."""
    from keras import layers as L

    converters = _converters()
    input_layer, order, outputs = _trace(model)
    shape = [None if d is None else int(d) for d in model.inputs[0].shape]
    g = WebGraph(name=name, input_name=input_layer.name, input_shape=shape)
    consumers: dict[str, int] = {}
    for _, inputs in order:
        for i in inputs:
            consumers[i] = consumers.get(i, 0) + 1
    renamed = dict(zip(outputs, output_names or outputs, strict=True))
    alias: dict[str, str] = {}  # dropped/folded layer -> the graph layer whose value it is
    pending: dict[str, dict] = {}  # graph layer name -> its float64 weights, until written

    for layer, inputs in order:
        inputs = [alias.get(i, i) for i in inputs]
        if type(layer) is L.Dropout:
            alias[layer.name] = inputs[0]
            continue
        if type(layer) is L.BatchNormalization:
            prev = next((op for op in g.layers if op["name"] == inputs[0]), None)
            if (prev is None or prev["op"] != "conv2d" or prev["activation"] != "linear"
                    or consumers.get(inputs[0], 0) != 1):
                raise ExportError(
                    f"layer {layer.name!r} (BatchNormalization): only a batch norm right after "
                    "a linear Conv2D used by nothing else can be exported (it is folded into "
                    "the convolution)")
            _fold_batch_norm(prev, pending[prev["name"]], layer)
            alias[layer.name] = prev["name"]
            continue
        convert = converters.get(type(layer))
        if convert is None:
            raise ExportError(
                f"layer {layer.name!r} has type {type(layer).__module__}."
                f"{type(layer).__name__}, which the web format cannot express; supported: "
                f"{', '.join(sorted(c.__name__ for c in converters))}, BatchNormalization "
                "(folded), Dropout (dropped)")
        out_name = renamed.get(layer.name, layer.name)
        if out_name != layer.name:
            alias[layer.name] = out_name
        result = convert(g, layer, out_name, inputs)
        op, weights = result if isinstance(result, tuple) else (result, {})
        g.layers.append({"name": out_name, "op": op.pop("op"), "inputs": inputs, **op,
                         "weights": [f"{out_name}/{k}" for k in weights]})
        pending[out_name] = weights

    for op in g.layers:
        for key, value in pending[op["name"]].items():
            g.add_weight(f"{op['name']}/{key}", value)
    g.outputs = [alias.get(o, o) for o in outputs]
    return g


# ----------------------------------------------------------------------------- the networks


def classifier_graph(model) -> WebGraph:
    """The classifier (either registered architecture) as a web graph; output ``p_fake``."""
    return graph_from_keras(model, "classifier")


def mtcnn_networks():
    """PNet, RNet and ONet of the installed ``mtcnn`` package with its shipped weights."""
    from mtcnn import MTCNN

    detector = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    nets = {}
    for key, stage in zip(("pnet", "rnet", "onet"), detector.stages, strict=True):
        nets[key] = stage._model
    return nets


def mtcnn_graph(key: str, net) -> WebGraph:
    """One MTCNN network as a web graph. The package's networks are subclassed Keras models;
    calling their ``call()`` on a symbolic input records the real topology (the heads all read
    the trunk's last layer), which is then exported like any functional model."""
    import keras

    inp = keras.Input(MTCNN_INPUT_SHAPES[key], name="image")
    traced = keras.Model(inp, net.call(inp), name=key)
    return graph_from_keras(traced, key, output_names=MTCNN_OUTPUTS[key])


def mtcnn_settings() -> dict:
    """The package's pipeline defaults, read from its stage signatures (not typed in again)."""
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    out = {}
    for stage, keys in ((StagePNet, ("min_size", "scale_factor", "threshold_pnet", "nms_pnet1",
                                     "nms_pnet2")),
                        (StageRNet, ("threshold_rnet", "nms_rnet")),
                        (StageONet, ("nms_onet",))):
        params = inspect.signature(stage.__call__).parameters
        for k in keys:
            out[k] = params[k].default
    return out


def faces_settings() -> dict:
    from . import faces

    return {
        "detector": f"mtcnn-{faces._mtcnn_version()} (P/R/O-Net)",
        "face_margin": faces.FACE_MARGIN,
        "face_shift_up": faces.FACE_SHIFT_UP,
        "small_face_fraction": faces.SMALL_FACE_FRACTION,
        "detect_max_side": faces.DETECT_MAX_SIDE,
        "pad_fraction": faces.PAD_FRACTION,
        "min_confidence": faces.MIN_CONFIDENCE,
        "mtcnn_min_face": faces.MTCNN_MIN_FACE,
        "min_face_px": faces.MIN_FACE_PX,
        "min_face_fraction": faces.MIN_FACE_FRACTION,
        "max_faces": faces.MAX_FACES,
        "mtcnn": mtcnn_settings(),
    }


def model_settings(card: dict) -> dict:
    cal = card.get("calibration")
    return {
        "name": card["name"],
        "version": card.get("version") or model_version(card),
        "architecture": card["architecture"],
        "image_size": int(card["image_size"]),
        "parameters": int(card["parameters"]),
        "source_weights_sha256": card["weights_sha256"],
        "calibration": ({"method": cal["method"], "a": float(cal["a"]), "b": float(cal["b"])}
                        if cal else None),
        "threshold": float(card["threshold"]),
        "uncertain_low": float(card["uncertain_low"]),
        "uncertain_high": float(card["uncertain_high"]),
        "test_time_flips": bool(card.get("test_time_flips", False)),
    }


# ----------------------------------------------------------------------------- writing


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_card_weights(model_dir: Path, card: dict) -> None:
    from . import WEIGHTS_NAME

    path = model_dir / card.get("weights_file", WEIGHTS_NAME)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != card.get("weights_sha256"):
        raise ExportError(f"{path}: sha256 {digest} differs from the card's weights_sha256 "
                          f"{card.get('weights_sha256')}; the card does not describe these "
                          "weights")


def build_export(model_dir: str | Path | None = None, *, model=None, mtcnn_nets=None) -> dict:
    """Every file of the export as ``{file name: bytes}`` (manifest included), nothing written.

    ``model`` / ``mtcnn_nets`` skip loading when the caller has them already (tests).
    """
    from . import WEIGHTS_NAME

    model_dir = resolve_model_dir(model_dir)
    card = read_card(model_dir)
    _check_card_weights(model_dir, card)
    if model is None:
        from .model import load_model

        model = load_model(model_dir / card.get("weights_file", WEIGHTS_NAME))
    if mtcnn_nets is None:
        mtcnn_nets = mtcnn_networks()
    graphs = [classifier_graph(model)] + [mtcnn_graph(k, mtcnn_nets[k])
                                          for k in ("pnet", "rnet", "onet")]
    files: dict[str, bytes] = {}
    networks = {}
    for g in graphs:
        graph_file, weights_file = f"{g.name}.json", f"{g.name}.bin"
        files[graph_file] = _json_bytes(g.graph_json(weights_file))
        files[weights_file] = g.weights_bytes()
        networks[g.name] = {"graph": graph_file, "weights": weights_file}
    listing = [{"path": p, "bytes": len(b), "sha256": _sha256(b)} for p, b in files.items()]
    manifest = {
        "format": FORMAT,
        # The card's creation time, not the clock: the same model exports byte-identical files.
        "exported": card["created"],
        "exporter": EXPORTER,
        "model": model_settings(card),
        "faces": faces_settings(),
        "networks": networks,
        "files": listing,
        "total_bytes": sum(f["bytes"] for f in listing),
        "parity_tolerance": PARITY_TOLERANCE,
    }
    return {MANIFEST_NAME: _json_bytes(manifest), **files}


def export_web(model_dir: str | Path | None = None, out_dir: str | Path | None = None, *,
               progress=None) -> dict:
    """Write the export into ``out_dir`` (default ``static/private-check/model``); returns the
    manifest. Files of earlier exports that this one does not write are removed."""
    out = Path(out_dir) if out_dir else DEFAULT_OUT_DIR
    files = build_export(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if stale.is_file() and stale.name not in files and stale.suffix in (".json", ".bin"):
            stale.unlink()
    for name, data in files.items():
        (out / name).write_bytes(data)
    manifest = json.loads(files[MANIFEST_NAME])
    if progress:
        shown = out.resolve()
        if shown.is_relative_to(Path.cwd()):
            shown = shown.relative_to(Path.cwd())
        for f in [{"path": MANIFEST_NAME, "bytes": len(files[MANIFEST_NAME])},
                  *manifest["files"]]:
            progress(f"{shown / f['path']}: {f['bytes']:,} bytes")
        total = manifest["total_bytes"] + len(files[MANIFEST_NAME])
        progress(f"total {total:,} bytes ({total / 1e6:.2f} MB) for "
                 f"{manifest['model']['version']}")
    return manifest
