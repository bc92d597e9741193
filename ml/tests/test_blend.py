"""Self-blended training fakes: a real face blended with an altered copy of itself."""

from __future__ import annotations

import numpy as np

from ml.blend import BlendConfig, face_mask, self_blend
from ml.tests.helpers import make_image


def _face(seed=1, size=128):
    return np.asarray(make_image(seed, size=(size, size)))


def test_mask_is_soft_face_shaped_and_centred():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = face_mask(128, rng)
        assert m.shape == (128, 128) and m.dtype == np.float32
        assert 0.0 <= m.min() and m.max() <= 1.0 + 1e-6
        assert m[64, 64] > 0.5  # the face centre is inside
        assert max(m[0, 0], m[0, -1], m[-1, 0], m[-1, -1]) < 0.05  # corners are outside
        soft = ((m > 0.05) & (m < 0.95)).mean()
        assert soft > 0.01  # a soft edge, not a hard cut-out


def test_blend_changes_the_face_and_keeps_the_background():
    img = _face()
    rng = np.random.default_rng(3)
    changed_centre, changed_corner = [], []
    for _ in range(20):
        out = self_blend(img, rng, BlendConfig(share=0.3))
        assert out.shape == img.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - img.astype(int)).sum(-1)
        changed_centre.append(diff[48:80, 48:80].mean())
        changed_corner.append(diff[:10, :10].mean())
    assert np.mean(changed_centre) > 3.0
    assert np.mean(changed_corner) < 0.5


def test_blend_is_reproducible_from_the_generator():
    img = _face(2)
    a = self_blend(img, np.random.default_rng(9))
    b = self_blend(img, np.random.default_rng(9))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, self_blend(img, np.random.default_rng(10)))


def test_training_stream_mixes_in_blended_fakes(tmp_path):
    """The share of self-blended fakes in the stream follows the setting; they are labelled
    fake, and made from the real faces only."""
    from ml.data import discover, make_dataset
    from ml.tests.helpers import make_split_tree

    recs = [r for r in discover([make_split_tree(tmp_path, n_per=20, size=(32, 32))])
            if r.split == "train"]
    ds = make_dataset(recs, 32, max_pixels=10**6, batch_size=50, training=True,
                      blend_config=BlendConfig(share=0.5), repeat=True)
    labels = np.concatenate([y.numpy() for _, y in ds.take(8)])
    # 80 files, half fake: without blending 50 % fake; with half the stream blended, 75 %.
    assert 0.68 <= labels.mean() <= 0.82
    plain = make_dataset(recs, 32, max_pixels=10**6, batch_size=50, training=True,
                         repeat=True)
    assert 0.40 <= np.concatenate([y.numpy() for _, y in plain.take(8)]).mean() <= 0.60
