from __future__ import annotations

import numpy as np

from ml import calibration, metrics


def _pairwise_auc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    d = pos[:, None] - neg[None, :]
    return ((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size


def test_roc_auc_matches_pairwise_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert abs(metrics.roc_auc(y, s) - _pairwise_auc(y, s)) < 1e-12
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.5 * y
    fpr, tpr, _ = metrics.roc_curve(y, s)
    assert fpr[0] == 0 and tpr[-1] == 1
    assert abs(np.trapezoid(tpr, fpr) - metrics.roc_auc(y, s)) < 1e-9


def test_binary_metrics_counts():
    m = metrics.binary_metrics([0, 0, 1, 1, 1], [0.2, 0.7, 0.9, 0.4, 0.8], 0.5)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["n_real"] == 2 and m["n_fake"] == 3
    assert abs(m["precision"] - 2 / 3) < 1e-12 and abs(m["recall"] - 2 / 3) < 1e-12
    assert abs(m["accuracy"] - 0.6) < 1e-12


def test_ece_zero_when_calibrated_and_large_when_not():
    y = np.array([0] * 50 + [1] * 50)
    assert metrics.expected_calibration_error(np.full(100, 0.5), y) < 1e-12
    assert metrics.expected_calibration_error(np.where(y == 1, 0.0, 1.0), y) > 0.99


def test_platt_recovers_known_scaling_and_threshold():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 3, 5000)
    y = (rng.random(5000) < calibration.sigmoid(0.5 * z + 0.7)).astype(int)
    c = calibration.fit_platt(calibration.sigmoid(z), y)
    assert abs(c["a"] - 0.5) < 0.08 and abs(c["b"] - 0.7) < 0.15
    p = calibration.apply(calibration.sigmoid(z), c)
    assert metrics.expected_calibration_error(p, y) < 0.03
    t = calibration.choose_threshold(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), np.array([0, 0, 0, 1, 1]))
    assert 0.3 < t < 0.8
    low, high = calibration.uncertain_band(0.5, 0.15)
    assert calibration.label_for(0.5, 0.5, low, high) == "uncertain"
    assert calibration.label_for(0.9, 0.5, low, high) == "fake"
    assert calibration.label_for(0.1, 0.5, low, high) == "real"
