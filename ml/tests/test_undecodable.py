"""Undecodable training images are counted, reported and, above a share, stop training."""

from __future__ import annotations

import json

import pytest

from ml.__main__ import main
from ml.data import UndecodableImagesError, find_undecodable
from ml.preprocess import DEFAULT_MAX_PIXELS
from ml.tests.helpers import jpeg_bytes, make_image, make_split_tree
from ml.train import prepare_data, train


def _corrupt(root, n: int) -> list[str]:
    """n broken files inside a split tree: text, empty, truncated JPEG (round robin)."""
    paths = []
    for i in range(n):
        label = ("real", "fake")[i % 2]
        p = root / "srcA" / "train" / label / f"broken_{i}.jpg"
        kind = i % 3
        if kind == 0:
            p.write_bytes(b"this is not an image at all")
        elif kind == 1:
            p = p.with_suffix(".png")
            p.write_bytes(b"")
        else:
            p.write_bytes(jpeg_bytes(make_image(100 + i, size=(40, 40)))[:200])
        paths.append(str(p))
    return sorted(paths)


@pytest.fixture
def tree(tmp_path):
    return make_split_tree(tmp_path / "data", n_per=6, size=(40, 40))  # 72 good images


def test_find_undecodable_names_each_broken_file(tree):
    from ml.data import discover

    broken = _corrupt(tree, 3)
    bad = find_undecodable(discover([tree]), max_pixels=DEFAULT_MAX_PIXELS)
    assert sorted(r.path for r, _ in bad) == broken
    assert all(why for _, why in bad)


def test_a_few_broken_files_are_left_out_and_reported(tree):
    broken = _corrupt(tree, 2)  # 2 of 74 = 2.7 %
    data = prepare_data([tree], max_undecodable_share=0.05)
    assert len(data.undecodable) == 2 and data.found == 74
    assert not {r.path for r in data.records} & set(broken)
    assert len(data.train) == 24  # the good ones only
    report = data.undecodable_report(0.05)
    assert report["count"] == 2 and report["per_split"] == {"train": 2}
    assert abs(report["share"] - 2 / 74) < 1e-12
    assert [e.split(":")[0] for e in report["examples"]] == broken


def test_more_than_the_share_stops_before_training(tree, tmp_path):
    broken = _corrupt(tree, 2)
    out = tmp_path / "model"
    with pytest.raises(UndecodableImagesError) as info:  # default: at most 1 %
        train([tree], out, epochs=1, image_size=16)
    err = info.value
    assert err.count == 2 and err.total == 74 and err.examples == broken
    assert "2 of 74" in str(err) and broken[0] in str(err) and "1.0%" in str(err)
    assert not out.exists()  # nothing was fitted or written
    with pytest.raises(UndecodableImagesError):
        prepare_data([tree], max_undecodable_share=0.02)
    prepare_data([tree], max_undecodable_share=0.03)  # 2.7 % is within 3 %


def test_cli_reports_the_failure(tree, tmp_path, capsys):
    _corrupt(tree, 3)
    rc = main(["train", "--data", str(tree), "--out", str(tmp_path / "m"), "--epochs", "1",
               "--image-size", "16", "--max-undecodable", "0.02"])
    err = capsys.readouterr().err
    assert rc == 1 and "3 of 75 images" in err and "broken_0.jpg" in err


def test_training_card_reports_left_out_files(tree, tmp_path):
    broken = _corrupt(tree, 2)
    out = tmp_path / "model"
    lines = []
    card = train([tree], out, epochs=1, image_size=16, batch_size=16, robustness=False,
                 plots=False, max_undecodable_share=0.05, progress=lines.append)
    rep = card["training"]["undecodable"]
    assert rep["count"] == 2 and rep["of"] == 74 and rep["max_share"] == 0.05
    assert [e.split(":")[0] for e in rep["examples"]] == broken
    assert card["training"]["counts"]["train"]["srcA"] == {"real": 6, "fake": 6}
    assert json.loads((out / "card.json").read_text())["training"]["undecodable"] == rep
    md = (out / "card.md").read_text()
    assert "undecodable files: 2 of 74" in md and "broken_0.jpg" in md
    assert any("left out 2 undecodable" in line for line in lines)
