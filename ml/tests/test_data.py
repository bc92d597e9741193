from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ml import data, preprocess
from ml.tests.helpers import make_image, save


@pytest.fixture
def mixed_tree(tmp_path):
    root = tmp_path / "root"
    save(make_image(1), root / "srcA" / "Train" / "Real" / "a1.png")
    save(make_image(2, fake=True), root / "srcA" / "train" / "FAKE" / "a2.jpg")
    save(make_image(3), root / "srcA" / "Test" / "real" / "a3.PNG")
    save(make_image(4), root / "srcB" / "training_real" / "b1.png")
    save(make_image(5, fake=True), root / "srcB" / "validation-fake" / "b2.webp", "WEBP")
    save(make_image(6), root / "srcC" / "deep" / "er" / "Real" / "c1.jpg")
    save(make_image(7, fake=True), root / "srcC" / "x" / "fake" / "nested" / "c2.png")
    save(make_image(8), root / "srcC" / "unrealistic" / "ignored.png")  # not a word match
    (root / "srcC" / "deep" / "er" / "Real" / "notes.txt").write_text("not an image")
    save(make_image(9), root / "real" / "top.png")  # label directly under the root
    return root


def test_discovery_mixed_case_depths(mixed_tree):
    recs = {r.path.rsplit("/", 1)[-1]: r for r in data.discover([mixed_tree])}
    assert set(recs) == {"a1.png", "a2.jpg", "a3.PNG", "b1.png", "b2.webp", "c1.jpg", "c2.png",
                         "top.png"}
    assert recs["a1.png"].label == 0 and recs["a1.png"].split == "train"
    assert recs["a2.jpg"].label == 1 and recs["a2.jpg"].source == "srcA"
    assert recs["a3.PNG"].split == "test"
    assert recs["b1.png"].label == 0 and recs["b1.png"].split == "train"
    assert recs["b2.webp"].label == 1 and recs["b2.webp"].split == "val"
    assert recs["c1.jpg"].label == 0 and recs["c1.jpg"].source == "srcC"
    assert recs["c2.png"].label == 1  # nearest labelled ancestor
    assert recs["c1.jpg"].split == data.hash_split("c1.jpg")  # no split folder -> hash
    assert recs["top.png"].source == "root"


def test_source_name_may_contain_a_label_word(tmp_path):
    """``utkface_real/train/real/x.jpg`` is source utkface_real (its label folder is deeper),
    while ``root/real/x.png`` still has the root as its source."""
    save(make_image(1), tmp_path / "utkface_real" / "train" / "real" / "u.jpg")
    save(make_image(2, fake=True), tmp_path / "fakes_gan" / "fake" / "f.png")
    save(make_image(3), tmp_path / "real" / "top.png")
    recs = {r.path.rsplit("/", 1)[-1]: r for r in data.discover([tmp_path])}
    assert recs["u.jpg"].source == "utkface_real" and recs["u.jpg"].label == 0
    assert recs["u.jpg"].split == "train"
    assert recs["f.png"].source == "fakes_gan" and recs["f.png"].label == 1
    assert recs["top.png"].source == tmp_path.name


def test_label_and_split_words():
    assert data.label_of("Train_Fake") == 1 and data.label_of("REAL") == 0
    assert data.label_of("surreal") is None and data.label_of("fakeness") is None
    assert data.split_of("Validation") == "val" and data.split_of("contest") is None


def test_hash_split_deterministic_and_proportional():
    names = [f"img_{i}.jpg" for i in range(4000)]
    a = [data.hash_split(n) for n in names]
    assert a == [data.hash_split(n) for n in names]
    frac = {s: a.count(s) / len(a) for s in ("train", "val", "test")}
    assert abs(frac["train"] - 0.75) < 0.03 and abs(frac["val"] - 0.10) < 0.02


def test_exclude_source(mixed_tree):
    recs = data.discover([mixed_tree], exclude_sources=["srcA"])
    assert recs and all(r.source != "srcA" for r in recs)


def test_missing_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.discover([tmp_path / "nope"])


def test_preprocess_same_at_train_and_inference(mixed_tree, tmp_path):
    """tf.data (training/evaluation) and the engine's decoder give identical pixels."""
    from ml.data import make_dataset
    from ml.preprocess import fit, load_image

    limit = preprocess.DEFAULT_MAX_PIXELS
    recs = data.discover([mixed_tree])
    ds = make_dataset(recs, 32, max_pixels=limit, batch_size=64, training=False)
    batch = next(iter(ds))[0].numpy()
    for i, r in enumerate(recs):
        direct = preprocess.prepare(r.path, 32, max_pixels=limit)
        assert batch[i].shape == (32, 32, 3)
        np.testing.assert_array_equal(batch[i], direct)
        raw = open(r.path, "rb").read()
        np.testing.assert_array_equal(fit(load_image(raw, max_pixels=limit), 32), direct)


def test_exif_orientation_applied(tmp_path):
    from PIL import Image

    img = make_image(11, size=(60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif)
    assert preprocess.load_image(p, max_pixels=10_000).size == (30, 60)


def test_augmentation_changes_pixels_keeps_shape():
    import tensorflow as tf

    from ml.augment import AugmentConfig, make_augmenter

    tf.random.set_seed(0)
    x = tf.constant(np.asarray(make_image(3, size=(32, 32), fake=True)))
    for field in ("flip", "rescale", "blur", "noise", "jpeg"):
        cfg = AugmentConfig(flip=0, rescale=0, blur=0, noise=0, jpeg=0)
        setattr(cfg, field, 1.0)
        y = make_augmenter(cfg, 32).one(x).numpy()
        assert y.shape == (32, 32, 3) and y.dtype == np.uint8
        assert np.any(y != x.numpy()), field
    off = AugmentConfig(flip=0, rescale=0, blur=0, noise=0, jpeg=0)
    np.testing.assert_array_equal(make_augmenter(off, 32).one(x).numpy(), x.numpy())


def test_perturbations_keep_shape():
    arr = np.asarray(make_image(5, size=(32, 32)))
    for kind in ("jpeg70", "half"):
        out = preprocess.perturb(arr, kind)
        assert out.shape == arr.shape and np.any(out != arr)
    with pytest.raises(ValueError):
        preprocess.perturb(arr, "bogus")


def test_import_ml_does_not_load_tensorflow():
    code = ("import sys, ml, ml.inference, ml.preprocess, ml.data, ml.faces, ml.calibration, "
            "ml.metrics, ml.card, ml.evaluate, ml.model, ml.train, ml.__main__; "
            "ml.__main__.build_parser(); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
