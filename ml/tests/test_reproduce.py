"""The committed default model reproduces the test figures written in its card.

The data set may have gained sources since the model was trained: the figures are compared on
the sources the card lists (its training counts), which must all still be there.
"""

from __future__ import annotations

import json
import math

import pytest

from ml import DEFAULT_MODEL_DIR, card_sources
from ml.tests.helpers import FACES128

TOL = 0.005


def _close(got: float, want: float) -> bool:
    """Within TOL; an undefined figure (the AUC of a one-class source, e.g. utkface_real) must
    stay undefined."""
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return abs(got - want) <= TOL


@pytest.mark.skipif(not FACES128.is_dir(), reason=f"{FACES128} not present")
def test_default_model_matches_card():
    from ml.evaluate import evaluate

    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    want = card["test_metrics"]
    assert card_sources(card) == set(want["per_source"])
    res = evaluate(None, [FACES128], split="test", model_sources=True)
    assert res["undecodable"]["count"] == 0
    assert res["n_real"] == want["n_real"] and res["n_fake"] == want["n_fake"]
    for key in ("roc_auc", "accuracy"):
        assert abs(res[key] - want[key]) <= TOL, (key, res[key], want[key])
    assert set(res["per_source"]) == set(want["per_source"])
    for src, m in want["per_source"].items():
        for key in ("roc_auc", "accuracy"):
            got = res["per_source"][src][key]
            assert _close(got, m[key]), (src, key, got, m[key])
