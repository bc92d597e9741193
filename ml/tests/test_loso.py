"""Leave-one-source-out: fold plan, scoring sets, a tiny end-to-end run, resume, summaries and
the calibration on held-out predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml import calibration, loso
from ml.__main__ import main
from ml.data import Record, discover
from ml.tests.helpers import make_image, make_split_tree, save


def _rec(source, label, split="test", i=0):
    return Record(path=f"/x/{source}/{split}/{label}/{i}.png", label=label, source=source,
                  split=split)


def test_scoring_set_pairs_one_class_sources_with_other_test_images():
    recs = [_rec("a", 0), _rec("a", 1), _rec("a", 1, "train", 1), _rec("b", 0), _rec("b", 1),
            _rec("b", 1, "train", 2), _rec("reals", 0), _rec("reals", 0, "train", 3)]
    own, partners = loso.scoring_set(recs, "a")
    assert {r.path for r in own} == {r.path for r in recs if r.source == "a"}
    assert partners == []  # both classes: its own images only, all splits
    own, partners = loso.scoring_set(recs, "reals")
    assert len(own) == 2 and all(r.label == 0 for r in own)
    # fakes of the other sources, test split only (their train split was trained on)
    assert {r.path for r in partners} == {"/x/a/test/1/0.png", "/x/b/test/1/0.png"}


def test_never_trained_sources_are_excluded_from_every_fold():
    assert loso.fold_training_sources(["a", "b", "c"], "a", ["c"]) == ("a", "c")
    assert loso.fold_training_sources(["a", "b", "c"], "b", ()) == ("b",)


@pytest.fixture(scope="module")
def tiny_loso(tmp_path_factory):
    root = tmp_path_factory.mktemp("loso")
    data = make_split_tree(root / "data", n_per=6, sources=("srcA", "srcB"), size=(32, 32))
    for split in ("train", "val", "test"):  # a real-only source, as utkface_real
        for i in range(6):
            save(make_image(900 + i + 10 * len(split), (32, 32)),
                 data / "reals_only" / split / "real" / f"r{split}{i}.png")
    out = root / "loso"
    args = ["loso", "--data", str(data), "--out", str(out), "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "8", "--image-size", "32"]
    assert main(args) == 0
    return data, out, args


def test_loso_run_writes_a_fold_per_source_and_a_summary(tiny_loso):
    data, out, _ = tiny_loso
    folds = loso.load_folds(out)
    assert set(folds) == {"srcA", "srcB", "reals_only"}
    for s, fold in folds.items():
        assert s in fold["excluded_from_training"]
        assert {im["source"] for im in fold["images"] if not im["partner"]} == {s}
        assert all(0.0 <= im["raw"] <= 1.0 and 0.0 <= im["raw_flip"] <= 1.0
                   for im in fold["images"])
    assert all(im["partner"] == (im["source"] != "reals_only")
               for im in folds["reals_only"]["images"])
    assert folds["reals_only"]["images"] and not list(out.glob("work-*"))
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["per_source"]) == set(folds)
    aucs = [m["roc_auc"] for m in summary["per_source"].values()]
    assert summary["mean_auc"] == pytest.approx(np.mean(aucs))
    assert summary["worst_auc"] == pytest.approx(min(aucs))
    assert summary["recipe"]["images_seen"] == 16
    assert summary["per_source"]["reals_only"]["paired_with_other_sources"] is True
    assert summary["per_source"]["reals_only"]["fake_caught_rate"] is None


def test_loso_resumes_without_training_again(tiny_loso, monkeypatch):
    data, out, args = tiny_loso

    def no_training(*a, **k):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(loso, "run_fold", no_training)
    assert main(args) == 0


def test_unknown_held_out_source_is_an_error(tiny_loso, tmp_path, capsys):
    data, _, _ = tiny_loso
    rc = main(["loso", "--data", str(data), "--out", str(tmp_path), "--held-out", "nope",
               "--epochs", "1", "--steps-per-epoch", "1", "--image-size", "32"])
    assert rc == 1 and "unknown source" in capsys.readouterr().err


def test_flips_average_logits_and_ablation_rows(tiny_loso):
    _, out, _ = tiny_loso
    folds = loso.load_folds(out)
    y, plain = loso.fold_scores(folds["srcA"])
    _, flipped = loso.fold_scores(folds["srcA"], flips=True)
    raw_flip = np.array([im["raw_flip"] for im in folds["srcA"]["images"]])
    want = calibration.sigmoid((calibration.logit(plain) + calibration.logit(raw_flip)) / 2)
    assert np.allclose(flipped, want)
    row = loso.ablation_row("r", "d", folds)
    assert row["folds"] == 3 and row["worst_auc"] == min(row["per_source"].values())
    y_all, s_all, src = loso.held_out_predictions(folds)
    assert len(y_all) == len(s_all) == len(src)
    assert src.count("reals_only") == sum(
        1 for r in discover([tiny_loso[0]]) if r.source == "reals_only")


def test_calibration_with_held_out_predictions(monkeypatch):
    """The band and Platt fit come from val and the held-out predictions together; the report
    gives the cross-validated ECE per source."""
    from ml import train

    rng = np.random.default_rng(0)
    y_val = rng.integers(0, 2, 400)
    raw_val = np.clip(0.5 + 0.35 * (y_val - 0.5) * 2 + rng.normal(0, 0.1, 400), 0.01, 0.99)
    monkeypatch.setattr("ml.evaluate.raw_probabilities", lambda *a, **k: raw_val)
    val = [Record(path="v", label=int(v), source="s", split="val") for v in y_val]
    # Held-out sources are over-confident and shifted: their fakes score lower.
    y_ho = rng.integers(0, 2, 600)
    raw_ho = np.clip(0.3 + 0.3 * y_ho + rng.normal(0, 0.15, 600), 0.01, 0.99)
    src = ["u"] * 300 + ["w"] * 300
    only_val = train.calibrate(None, val, 32)
    both = train.calibrate(None, val, 32, held_out=(y_ho, raw_ho, src))
    assert "calibration_data" not in only_val
    from ml import metrics

    cd = both["calibration_data"]
    ece_val_only = metrics.expected_calibration_error(
        calibration.apply(raw_ho, only_val["calibration"]), y_ho)
    assert cd["ece_held_out_in_sample"] < ece_val_only  # better where the model never looked
    assert set(cd["per_source"]) == {"u", "w"}
    assert 0.0 <= cd["ece_held_out_in_sample"] <= cd["ece_held_out_cross_validated"] + 0.05
    assert both["calibrated_on"].startswith("the validation split and")


def test_calibrate_command_recalibrates_a_model_with_its_folds(tiny_loso, tmp_path):
    """A model trained before its recipe's folds finished gets the held-out calibration and
    the LOSO table afterwards; its weights stay as they were."""
    data, out, _ = tiny_loso
    model = tmp_path / "model"
    assert main(["train", "--data", str(data), "--out", str(model), "--epochs", "1",
                 "--image-size", "32", "--batch-size", "8", "--no-robustness"]) == 0
    before = json.loads((model / "card.json").read_text())
    assert "loso" not in before and before["calibrated_on"] == "the validation split"
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--loso", str(out),
                 "--no-robustness"]) == 0
    after = json.loads((model / "card.json").read_text())
    assert after["weights_sha256"] == before["weights_sha256"]
    assert after["calibrated_on"].startswith("the validation split and")
    assert set(after["loso"]["per_source"]) == {"srcA", "srcB", "reals_only"}
    assert after["loso"]["recipe"]["images_seen"] == 16  # the folds' budget, from summary.json
    assert set(after["calibration_data"]["per_source"]) == {"srcA", "srcB", "reals_only"}
    assert after["uncertain_width"] == before["uncertain_width"]
    assert "python -m ml calibrate" in after["reproduce_command"]
    md = (model / "card.md").read_text()
    assert "Leave-one-source-out" in md and "Calibration on unseen sources" in md
    assert after["test_metrics"]["n_real"] == before["test_metrics"]["n_real"]
    assert main(["annotate", "--model", str(model), "--loso-note", "folds of srcA only"]) == 0
    assert "folds of srcA only" in (model / "card.md").read_text()


def test_annotate_writes_the_ablation_table(tiny_loso, tmp_path):
    import shutil

    data, out, _ = tiny_loso
    model = tmp_path / "m"
    assert main(["train", "--data", str(data), "--out", str(model), "--epochs", "1",
                 "--image-size", "32", "--batch-size", "8", "--no-robustness"]) == 0
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(out / "fold-srcA.json", partial)
    assert main(["annotate", "--model", str(model),
                 "--ablation", "base", "the recipe", str(out),
                 "--ablation", "partial", "one fold only", str(partial),
                 "--ablation-flips", "base+flips", "test-time flips", str(out),
                 "--ablation-note", "partial", "measured on srcA only",
                 "--failure-mode", "drawings"]) == 0
    card = json.loads((model / "card.json").read_text())
    rows = {r["name"]: r for r in card["ablation"]}
    assert [r["name"] for r in card["ablation"]] == ["base", "partial", "base+flips"]
    assert rows["partial"]["folds"] == 1 and set(rows["partial"]["per_source"]) == {"srcA"}
    assert rows["base+flips"]["flips"] is True
    assert rows["base+flips"]["mean_auc"] == pytest.approx(
        loso.summarize(loso.load_folds(out))["mean_auc_flips"])
    md = (model / "card.md").read_text()
    assert "## Ablation" in md and "| partial | one fold only |" in md
    assert "measured on srcA only" in md and "- drawings" in md


def test_train_with_loso_calibrates_on_held_out_predictions(tiny_loso, tmp_path):
    data, out, _ = tiny_loso
    model = tmp_path / "m"
    assert main(["train", "--data", str(data), "--out", str(model), "--epochs", "1",
                 "--image-size", "32", "--batch-size", "8", "--no-robustness",
                 "--loso", str(out)]) == 0
    card = json.loads((model / "card.json").read_text())
    summary = loso.summarize(loso.load_folds(out))
    assert card["test_time_flips"] == (summary["mean_auc_flips"] > summary["mean_auc"])
    assert card["loso"]["mean_auc"] == pytest.approx(summary["mean_auc"])
    assert card["calibration_data"]["held_out_images"] == len(
        loso.held_out_predictions(loso.load_folds(out))[0])


def test_train_with_an_empty_loso_folder_is_an_error(tiny_loso, tmp_path, capsys):
    data, _, _ = tiny_loso
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--epochs", "1",
               "--image-size", "32", "--loso", str(tmp_path)])
    assert rc == 1 and "no leave-one-source-out folds" in capsys.readouterr().err
