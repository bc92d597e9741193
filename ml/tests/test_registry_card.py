"""One registry entry per architecture drives the CLI, training and the card; the card text
comes from card.json, not from constants about one machine, data set or baseline."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from ml import DEFAULT_MODEL_DIR
from ml.__main__ import build_parser, main
from ml.card import render_markdown
from ml.model import ARCHITECTURES, Architecture, build_model
from ml.tests.helpers import make_split_tree


def _build_tiny(image_size: int):
    import keras
    from keras import layers

    inp = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0)(inp)
    x = layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inp, out, name="tinytest")


TINY = Architecture("tinytest", _build_tiny, learning_rate=0.0123, size_multiple=8,
                    min_size=16, default_size=24, description="a tiny test network",
                    baseline=True)


@pytest.fixture
def tiny_arch(monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "tinytest", TINY)
    for name, spec in list(ARCHITECTURES.items()):
        if name != "tinytest" and spec.baseline:
            monkeypatch.setitem(ARCHITECTURES, name, dataclasses.replace(spec, baseline=False))
    return TINY


def _arch_choices(parser) -> list[str]:
    train = parser._subparsers._group_actions[0].choices["train"]
    return next(a for a in train._actions if a.dest == "arch").choices


def test_registry_drives_cli_choices(tiny_arch, capsys):
    assert _arch_choices(build_parser()) == sorted(ARCHITECTURES)
    assert "tinytest" in _arch_choices(build_parser())
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--arch", "tinytest"])
    assert args.arch == "tinytest"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "d", "--out", "o", "--arch", "nosuch"])
    # the size rule is the registry's: 20 is not a multiple of 8
    with pytest.raises(SystemExit):
        main(["train", "--data", "d", "--out", "o", "--arch", "tinytest", "--image-size", "20"])
    assert "divisible by 8" in capsys.readouterr().err


def test_size_rules():
    assert ARCHITECTURES["nprnet"].size_problem(128) is None
    assert "16" in ARCHITECTURES["nprnet"].size_problem(120)
    assert ARCHITECTURES["seed002"].size_problem(36) is None
    for arch, size in (("nprnet", 8), ("seed002", 32)):
        with pytest.raises(ValueError):
            build_model(arch, size)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("nosuch", 128)


def test_training_reads_the_registry(tiny_arch, tmp_path):
    data = make_split_tree(tmp_path / "other_faces", n_per=4, size=(32, 32))
    out = tmp_path / "model"
    assert main(["train", "--data", str(data), "--out", str(out), "--arch", "tinytest",
                 "--epochs", "1", "--batch-size", "8", "--no-robustness"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["architecture"] == "tinytest"
    assert card["image_size"] == 24  # the registry's default size
    assert card["training"]["learning_rate"] == 0.0123  # the registry's learning rate
    md = (out / "card.md").read_text()
    assert "a tiny test network" in md and "input 24x24" in md
    assert str(data) in md and "24 px centre crops" in md
    assert "/work/shared" not in md and "128 px" not in md


OLD_HARD_CODED = ("/work/shared/datasets/faces128", "2 shared CPU cores", "128 px",
                  "seed-002", "StyleGAN family")


def _other_card() -> dict:
    card = copy.deepcopy(json.loads((DEFAULT_MODEL_DIR / "card.json").read_text()))
    card["image_size"] = 64
    card["training"]["data_roots"] = ["/data/elsewhere/portraits"]
    card["training"]["hardware"] = "aarch64, 64 CPU cores visible, 1 GPU(s), TensorFlow 9.9"
    card["comparison_md"] = "| a | b |\n|---|---|\n| 1 | 2 |"
    card["comparison_baseline"] = "resnet-old"
    card.pop("data_licence", None)
    return card


def test_card_renders_what_it_is_given():
    md = render_markdown(_other_card())
    assert "input 64x64" in md and "64 px centre crops" in md
    assert "/data/elsewhere/portraits" in md and "portraits: no licence information" in md
    assert "aarch64, 64 CPU cores visible, 1 GPU(s), TensorFlow 9.9" in md
    assert "## Comparison with the resnet-old baseline" in md
    assert "non-commercial" in md.lower()
    for old in OLD_HARD_CODED:
        assert old not in md, old


def test_card_baseline_and_description_come_from_the_registry(tiny_arch):
    card = _other_card()
    del card["comparison_baseline"]
    card["architecture"] = "tinytest"
    md = render_markdown(card)
    assert "## Comparison with the tinytest baseline" in md
    assert "`tinytest` (a tiny test network)" in md


def test_shipped_card_md_is_rendered_from_card_json():
    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    assert (DEFAULT_MODEL_DIR / "card.md").read_text() == render_markdown(card)
