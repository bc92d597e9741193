"""Classification metrics with numpy only (no scikit-learn)."""

from __future__ import annotations

import numpy as np


def roc_auc(y, s) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(y, s):
    """(fpr, tpr, thresholds), thresholds descending, starting at (0, 0)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, len(s) - 1]
    tps = np.cumsum(y)[idx]
    fps = (idx + 1) - tps
    tpr = np.r_[0.0, tps / max(1, y.sum())]
    fpr = np.r_[0.0, fps / max(1, (~y).sum())]
    return fpr, tpr, np.r_[np.inf, s[idx]]


def expected_calibration_error(p, y, n_bins: int = 15) -> float:
    """ECE of P(fake): sum over equal-width bins of |mean p - fraction fake| weighted by size."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y, np.float64)
    if len(p) == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(ece)


def reliability(p, y, n_bins: int = 15):
    p = np.asarray(p, np.float64)
    y = np.asarray(y, np.float64)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = bins == b
        if m.any():
            rows.append(((b + 0.5) / n_bins, float(p[m].mean()), float(y[m].mean()), int(m.sum())))
    return rows


def binary_metrics(y, p, threshold: float) -> dict:
    """The agreed metric keys for one group of images."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, np.float64)
    pred = p >= threshold
    tp = int((pred & y).sum())
    tn = int((~pred & ~y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    n = max(1, len(y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "roc_auc": roc_auc(y, p),
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ece": expected_calibration_error(p, y),
        "confusion_matrix": [[tn, fp], [fn, tp]],  # rows: true real, true fake
        "n_real": int((~y).sum()),
        "n_fake": int(y.sum()),
        "threshold": float(threshold),
    }
