"""End to end through the CLI entry point: a tiny training run, evaluate, predict."""

from __future__ import annotations

import hashlib
import json

import pytest

from ml.__main__ import main
from ml.evaluate import METRIC_KEYS
from ml.tests.helpers import make_split_tree


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    data_dir = make_split_tree(root / "data", n_per=8, size=(40, 40))
    out = root / "model"
    rc = main(["train", "--data", str(data_dir), "--out", str(out), "--epochs", "1",
               "--image-size", "32", "--batch-size", "8", "--no-robustness"])
    assert rc == 0
    return data_dir, out


def test_train_writes_model_dir(tiny_model):
    _, out = tiny_model
    card = json.loads((out / "card.json").read_text())
    md = (out / "card.md").read_text()
    weights = out / card["weights_file"]
    assert weights.is_file()
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["weights_sha256"]
    assert card["image_size"] == 32 and card["architecture"] == "nprnet"
    assert card["training"]["epochs_run"] == 1
    assert card["training"]["counts"]["train"]["srcA"] == {"real": 8, "fake": 8}
    assert 0.0 <= card["uncertain_low"] <= card["threshold"] <= card["uncertain_high"] <= 1.0
    assert {"a", "b"} <= set(card["calibration"])
    assert set(card["test_metrics"]["per_source"]) == {"srcA", "srcB"}
    assert card["reproduce_command"].startswith("python -m ml train --data")
    assert "non-commercial" in md.lower() and card["weights_sha256"] in md
    assert not list(out.glob("*.tmp*")) and not (out / "checkpoints").exists()


def test_evaluate_json_has_required_keys(tiny_model, tmp_path):
    data_dir, out = tiny_model
    js = tmp_path / "eval.json"
    plots = tmp_path / "plots"
    assert main(["evaluate", "--model", str(out), "--data", str(data_dir), "--json", str(js),
                 "--plots", str(plots)]) == 0
    res = json.loads(js.read_text())
    assert set(METRIC_KEYS) <= set(res)
    assert res["n_real"] == 16 and res["n_fake"] == 16
    assert set(res["per_source"]) == {"srcA", "srcB"}
    for m in res["per_source"].values():
        assert set(METRIC_KEYS) <= set(m)
        assert sum(map(sum, m["confusion_matrix"])) == m["n_real"] + m["n_fake"]
    for name in ("confusion_matrix.png", "roc_curve.png", "reliability_diagram.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"
    # a perturbed evaluation runs and reports the perturbation
    assert main(["evaluate", "--model", str(out), "--data", str(data_dir), "--json", str(js),
                 "--perturb", "jpeg70"]) == 0
    assert json.loads(js.read_text())["perturbation"] == "jpeg70"


def test_predict_prints_one_json_line_per_image(tiny_model, capsys, tmp_path):
    data_dir, out = tiny_model
    images = sorted(str(p) for p in (data_dir / "srcA" / "test").rglob("*.png"))[:3]
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"definitely not an image")
    capsys.readouterr()
    rc = main(["predict", "--model", str(out), *images, str(junk)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 1  # the junk file is reported, the others still predicted
    assert len(lines) == 4
    rows = [json.loads(line) for line in lines]
    for row, path in zip(rows[:3], images, strict=True):
        assert row["path"] == path and row["model_version"]
        # Colour fields hold no face: the CLI says so rather than give a real/fake verdict.
        assert row["label"] == "no_face" and row["fake_probability"] is None
        assert row["faces"] == [] and row["deciding_face"] is None
    assert "error" in rows[3]


def test_predict_gives_a_verdict_per_face(tiny_model, capsys):
    from ml.tests.helpers import FACES128

    if not FACES128.is_dir():
        pytest.skip("faces128 data set not present")
    _, out = tiny_model
    face = sorted((FACES128 / "lfw_faceswap_rees451" / "test" / "real").glob("*.jpg"))[0]
    capsys.readouterr()
    assert main(["predict", "--model", str(out), str(face)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] in {"real", "fake", "uncertain"} and len(row["faces"]) == 1
    assert row["fake_probability"] == row["faces"][row["deciding_face"]]["fake_probability"]


def test_train_can_start_from_an_earlier_model(tiny_model, tmp_path):
    """--init-weights fine-tunes: with a vanishing learning rate the weights stay the given
    ones (a random start would not give them)."""
    from ml.model import load_model

    data_dir, out = tiny_model
    tuned = tmp_path / "tuned"
    weights = str(out / "model.keras")
    assert main(["train", "--data", str(data_dir), "--out", str(tuned), "--epochs", "1",
                 "--image-size", "32", "--batch-size", "8", "--no-robustness",
                 "--init-weights", weights, "--lr", "1e-12"]) == 0
    before, after = load_model(weights).get_weights(), load_model(tuned / "model.keras")
    conv = [w for w in before if w.ndim == 4][0]
    conv_after = [w for w in after.get_weights() if w.ndim == 4][0]
    assert abs(conv - conv_after).max() < 1e-4
    card = json.loads((tuned / "card.json").read_text())
    assert card["training"]["init_weights"] == weights
    assert "fine-tuned" in (tuned / "card.md").read_text()
