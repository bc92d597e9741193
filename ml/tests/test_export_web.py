"""The web export (``python -m ml export-web``) against the Keras models it comes from.

The exported graphs are run by ``ml.web_reference`` (the format's numpy interpreter) and must
give what Keras gives: the classifier on real faces, MTCNN's networks on face pixels normalised
as the package does. The committed export in static/private-check/model must be current.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math

import numpy as np
import pytest
from PIL import Image

from ml import DEFAULT_MODEL_DIR, faces, model_version, read_card
from ml import export_web as ew
from ml.tests.helpers import FACES128
from ml.web_reference import OPS, Network

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "card.json").is_file(),
                                reason="no shipped default model")
TOLERANCE = 1e-4  # float32 sums in another order (im2col vs oneDNN), BN folded in float64
NETWORK_NAMES = ("classifier", "pnet", "rnet", "onet")


@pytest.fixture(scope="module")
def keras_model():
    from ml.model import load_model

    return load_model(DEFAULT_MODEL_DIR / read_card()["weights_file"])


@pytest.fixture(scope="module")
def mtcnn_nets():
    return ew.mtcnn_networks()


@pytest.fixture(scope="module")
def export(keras_model, mtcnn_nets, tmp_path_factory):
    """A fresh export of the shipped model into a temporary folder (built once)."""
    out = tmp_path_factory.mktemp("web")
    files = ew.build_export(DEFAULT_MODEL_DIR, model=keras_model, mtcnn_nets=mtcnn_nets)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out, files


def _networks(folder):
    return {name: Network.load(folder, name) for name in NETWORK_NAMES}


def _faces(per_source=2):
    """A few test images per source and label (real and fake), as uint8 arrays."""
    if not FACES128.is_dir():
        pytest.skip("faces128 data set not present")
    paths = []
    for source in sorted(p for p in FACES128.iterdir() if p.is_dir()):
        for label in ("real", "fake"):
            paths += sorted((source / "test" / label).glob("*"))[:per_source]
    assert len(paths) >= 10
    return paths


def _model_inputs(paths, size):
    from ml.preprocess import DEFAULT_MAX_PIXELS, prepare_path

    return np.stack([prepare_path(str(p), size, DEFAULT_MAX_PIXELS) for p in paths])


def _mtcnn_input(path, width, height):
    """Face pixels resized and normalised as the mtcnn package feeds its networks."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB").resize((width, height), Image.BILINEAR), np.float32)
    return (arr - 127.5) / 128.0


# ----------------------------------------------------------------------------- parity


def test_classifier_matches_keras_on_real_faces(export, keras_model):
    folder, _ = export
    x = _model_inputs(_faces(), read_card()["image_size"]).astype(np.float32)
    (web,) = _networks(folder)["classifier"].predict(x)
    expected = keras_model.predict(x, verbose=0)
    assert web.shape == expected.shape == (len(x), 1)
    np.testing.assert_allclose(web, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("width,height", [(12, 12), (53, 37), (31, 64), (100, 80)])
def test_pnet_matches_package_at_any_size(export, mtcnn_nets, width, height):
    folder, _ = export
    paths = _faces(1)[:3]
    x = np.stack([_mtcnn_input(p, width, height) for p in paths])
    web = Network.load(folder, "pnet").predict(x)
    expected = [np.asarray(o) for o in mtcnn_nets["pnet"](x)]
    assert [w.shape for w in web] == [e.shape for e in expected]
    assert web[1].shape[-1] == 2  # bbox_class: softmax over the last axis (not-face, face)
    for w, e in zip(web, expected, strict=True):
        np.testing.assert_allclose(w, e, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("key,size,n_outputs", [("rnet", 24, 2), ("onet", 48, 3)])
def test_rnet_onet_match_package(export, mtcnn_nets, key, size, n_outputs):
    folder, _ = export
    x = np.stack([_mtcnn_input(p, size, size) for p in _faces(1)])
    web = Network.load(folder, key).predict(x)
    expected = [np.asarray(o) for o in mtcnn_nets[key](x)]
    assert len(web) == len(expected) == n_outputs
    for w, e in zip(web, expected, strict=True):
        np.testing.assert_allclose(w, e, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(web[-1].sum(axis=-1), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------- conversion


def _random_batch_norms(model, seed=0):
    """Give every BatchNormalization non-trivial statistics (fresh ones fold to identity)."""
    from keras import layers

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c),
                               rng.normal(0, 0.5, c), rng.uniform(0.2, 3, c)])


def _run(graph: ew.WebGraph, x):
    return Network(graph.graph_json("w.bin"), graph.weights_bytes()).predict(x)


def test_batch_norm_is_folded_and_dropout_dropped():
    import keras
    from keras import layers

    inp = keras.Input((9, 11, 3), name="image")
    x = layers.Conv2D(4, 4, strides=2, padding="same", use_bias=False, name="c1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.Conv2D(5, 3, name="c2")(x)  # with a bias of its own
    x = layers.BatchNormalization(epsilon=0.01, name="bn2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    out = layers.Dense(2, activation="softmax", name="out")(x)
    model = keras.Model(inp, out)
    _random_batch_norms(model)
    model.get_layer("c2").bias.assign(np.linspace(-1, 1, 5))

    g = ew.graph_from_keras(model, "t")
    assert [op["name"] for op in g.layers] == ["c1", "r1", "c2", "gap", "out"]
    assert g.layer("r1")["inputs"] == ["c1"] and g.layer("gap")["inputs"] == ["c2"]
    assert g.layer("out")["inputs"] == ["gap"]  # past the dropped Dropout
    assert g.layer("c1")["weights"] == ["c1/kernel", "c1/bias"]  # the folded BN's bias
    x = np.random.default_rng(1).normal(size=(3, 9, 11, 3)).astype(np.float32)
    (web,) = _run(g, x)
    np.testing.assert_allclose(web, model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_seed002_architecture_exports():
    """The baseline architecture (plain convs with activations, dilation, max pooling, dense
    stack with dropout) exports and computes what Keras computes."""
    from ml.model import build_model

    model = build_model("seed002", 64)
    g = ew.classifier_graph(model)
    ops = [op["op"] for op in g.layers]
    assert ops.count("conv2d") == 6 and ops.count("dense") == 4 and "max_pool2d" in ops
    assert g.layer("dconv1")["dilation"] == [2, 2] and g.layer("conv1")["activation"] == "relu"
    assert g.outputs == ["p_fake"]
    x = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    (web,) = _run(g, x)
    np.testing.assert_allclose(web, model.predict(x, verbose=0), atol=TOLERANCE, rtol=0)


def test_nprnet_graph_has_the_residual_and_no_batch_norm(export):
    _, files = export
    graph = json.loads(files["classifier.json"])
    ops = [layer["op"] for layer in graph["layers"]]
    assert ops[:2] == ["rescale", "neighbour_residual"]
    assert not any("_bn" in layer["name"] for layer in graph["layers"])
    assert all(layer["op"] != "conv2d" or len(layer["weights"]) == 2
               for layer in graph["layers"])
    assert graph["input"] == {"name": "image", "shape": [None, 128, 128, 3]}
    assert graph["outputs"] == ["p_fake"]


def test_unknown_layer_fails_clearly():
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, name="c")(inp)
    x = layers.LayerNormalization(name="odd_norm")(x)
    model = keras.Model(inp, layers.Flatten()(x))
    with pytest.raises(ew.ExportError, match=r"'odd_norm'.*LayerNormalization.*cannot express"):
        ew.graph_from_keras(model, "t")


def test_batch_norm_that_cannot_be_folded_fails_clearly():
    import keras
    from keras import layers

    inp = keras.Input((6,))
    x = layers.Dense(4, name="d")(inp)
    model = keras.Model(inp, layers.BatchNormalization(name="bn")(x))
    with pytest.raises(ew.ExportError, match=r"'bn'.*folded"):
        ew.graph_from_keras(model, "t")


def test_unsupported_activation_fails_clearly():
    import keras
    from keras import layers

    inp = keras.Input((6,))
    model = keras.Model(inp, layers.Dense(4, activation="tanh", name="d")(inp))
    with pytest.raises(ew.ExportError, match=r"'d'.*tanh"):
        ew.graph_from_keras(model, "t")


# ----------------------------------------------------------------------------- the files


def test_manifest_values_come_from_card_and_constants(export):
    _, files = export
    m = json.loads(files["manifest.json"])
    card = read_card()
    assert m["format"] == "deepfake-web-model/1" and m["exporter"] == "python -m ml export-web"
    assert m["exported"] == card["created"]
    model = m["model"]
    for key in ("name", "architecture", "image_size", "parameters", "threshold",
                "uncertain_low", "uncertain_high", "calibration"):
        assert model[key] == card[key], key
    assert model["version"] == card.get("version", model_version(card)) == model_version(card)
    assert model["source_weights_sha256"] == card["weights_sha256"]
    assert model["test_time_flips"] == bool(card.get("test_time_flips", False))
    f = m["faces"]
    assert f["detector"] == f"mtcnn-{faces._mtcnn_version()} (P/R/O-Net)"
    for key in ("FACE_MARGIN", "FACE_SHIFT_UP", "SMALL_FACE_FRACTION", "DETECT_MAX_SIDE",
                "PAD_FRACTION", "MIN_CONFIDENCE", "MTCNN_MIN_FACE", "MIN_FACE_PX",
                "MIN_FACE_FRACTION", "MAX_FACES"):
        assert f[key.lower()] == getattr(faces, key), key
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    defaults = {}
    for stage in (StagePNet, StageRNet, StageONet):
        defaults |= {k: p.default for k, p in inspect.signature(stage.__call__).parameters.items()
                     if p.default is not inspect.Parameter.empty}
    assert f["mtcnn"] and all(defaults[k] == v for k, v in f["mtcnn"].items())
    assert list(f["mtcnn"]) == ["min_size", "scale_factor", "threshold_pnet", "nms_pnet1",
                                "nms_pnet2", "threshold_rnet", "nms_rnet", "nms_onet"]
    assert m["networks"] == {n: {"graph": f"{n}.json", "weights": f"{n}.bin"}
                             for n in NETWORK_NAMES}
    assert m["parity_tolerance"] == ew.PARITY_TOLERANCE


def test_files_sizes_and_hashes(export):
    folder, files = export
    m = json.loads(files["manifest.json"])
    listed = {f["path"]: f for f in m["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for path, f in listed.items():
        data = (folder / path).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert m["total_bytes"] == sum(f["bytes"] for f in m["files"])
    for name in NETWORK_NAMES:
        graph = json.loads(files[f"{name}.json"])
        assert graph["format"] == "deepfake-web-graph/1" and graph["name"] == name
        (group,) = graph["weights_manifest"]
        assert group["paths"] == [f"{name}.bin"]
        assert len(files[f"{name}.bin"]) == 4 * sum(math.prod(w["shape"])
                                                    for w in group["weights"])
        # every op is one the format defines; inputs come earlier; weights are all used once
        known = {graph["input"]["name"]}
        used = []
        for layer in graph["layers"]:
            assert layer["op"] in OPS and set(layer["inputs"]) <= known, layer["name"]
            known.add(layer["name"])
            used += layer["weights"]
        assert used == [w["name"] for w in group["weights"]]
        assert set(graph["outputs"]) <= known
    assert json.loads(files["pnet.json"])["input"]["shape"] == [None, None, None, 3]
    assert json.loads(files["onet.json"])["outputs"] == ["bbox_reg", "landmarks", "bbox_class"]


def test_committed_export_is_current(export):
    """static/private-check/model is what `python -m ml export-web` writes for the shipped
    model: rerun it after changing the model, ml/faces.py or the exporter."""
    _, files = export
    committed = ew.DEFAULT_OUT_DIR
    manifest = json.loads((committed / "manifest.json").read_text())
    assert manifest["model"]["source_weights_sha256"] == read_card()["weights_sha256"], (
        "the committed web model is from other weights: run `python -m ml export-web`")
    on_disk = {p.name for p in committed.iterdir() if p.is_file()}
    assert on_disk == set(files)
    for name, data in files.items():
        assert (committed / name).read_bytes() == data, (
            f"{name} is out of date: run `python -m ml export-web`")


def test_cli_writes_the_export(export, tmp_path, capsys):
    from ml.__main__ import main

    _, files = export
    assert main(["export-web", "--out", str(tmp_path / "m")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(files) + 1 and lines[-1].startswith("total ")
    assert "classifier.bin: " in "\n".join(lines)
    for name, data in files.items():  # deterministic: same bytes as the in-process export
        assert (tmp_path / "m" / name).read_bytes() == data


def test_cli_refuses_weights_the_card_does_not_describe(tmp_path, capsys):
    from ml.__main__ import main

    (tmp_path / "card.json").write_bytes((DEFAULT_MODEL_DIR / "card.json").read_bytes())
    (tmp_path / read_card()["weights_file"]).write_bytes(b"not the weights")
    assert main(["export-web", "--model-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "weights_sha256" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
