"""Probability calibration, threshold and uncertain band (numpy only).

Platt scaling on the model's logit: p_cal = sigmoid(a * logit(p_raw) + b), fitted on the
validation split by Newton's method (plain temperature scaling is the special case b = 0).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7
DEFAULT_UNCERTAIN_WIDTH = 0.15


def logit(p):
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z):
    z = np.asarray(z, np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def fit_platt(p_raw, y, *, weights=None, l2: float = 1e-4, iters: int = 100) -> dict:
    """Fit a, b minimising the (weighted) mean binary cross-entropy (+ a tiny ridge)."""
    z = logit(p_raw)
    y = np.asarray(y, np.float64)
    if len(np.unique(y)) < 2:
        return {"method": "platt", "a": 1.0, "b": 0.0}
    sw = np.ones_like(z) if weights is None else np.asarray(weights, np.float64)
    sw = sw / sw.mean()
    a, b = 1.0, 0.0
    n = len(z)
    for _ in range(iters):
        p = sigmoid(a * z + b)
        g = (p - y) * sw
        grad = np.array([np.dot(g, z) / n + l2 * (a - 1), g.mean() + l2 * b])
        w = p * (1 - p) * sw
        h = np.array([[np.dot(w, z * z) / n + l2, np.dot(w, z) / n],
                      [np.dot(w, z) / n, w.mean() + l2]])
        step = np.linalg.solve(h, grad)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    return {"method": "platt", "a": float(a), "b": float(b)}


def apply(p_raw, calib: dict | None):
    if not calib:
        return np.asarray(p_raw, np.float64)
    return sigmoid(float(calib["a"]) * logit(p_raw) + float(calib["b"]))


def choose_threshold(p, y, *, weights=None) -> float:
    """The threshold maximising (weighted) balanced accuracy on (p, y); ties go to the one
    nearest 0.5."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y).astype(bool)
    if y.all() or (~y).all():
        return 0.5
    sw = np.ones_like(p) if weights is None else np.asarray(weights, np.float64)
    cands = np.unique(np.concatenate([p, [0.5]]))
    if len(cands) > 2001:  # the balanced accuracy is flat at this resolution
        cands = np.unique(np.quantile(cands, np.linspace(0, 1, 2001)))
    mids = np.concatenate([(cands[:-1] + cands[1:]) / 2, [0.5]])
    best, best_t = -1.0, 0.5
    wp, wn = sw[y].sum(), sw[~y].sum()
    for t in mids:
        pred = p >= t
        bacc = 0.5 * ((sw[y] * pred[y]).sum() / wp + (sw[~y] * ~pred[~y]).sum() / wn)
        if bacc > best + 1e-12 or (abs(bacc - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = bacc, float(t)
    return best_t


def uncertain_band(threshold: float, width: float = DEFAULT_UNCERTAIN_WIDTH) -> tuple[float, float]:
    return max(0.01, threshold - width), min(0.99, threshold + width)


def label_for(p: float, threshold: float, low: float, high: float) -> str:
    if low <= p <= high:
        return "uncertain"
    return "fake" if p >= threshold else "real"
