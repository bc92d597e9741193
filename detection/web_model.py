"""The browser model of the private check page, as its manifest describes it: read as a plain file
(static/private-check/model/manifest.json, written by `python -m ml export-web`), never by
importing ml. The server judges a browser's saved verdict with this manifest's decision rule."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "deepfake-web-model/1"


@dataclass(frozen=True)
class WebModel:
    """The browser model's name, version and decision rule (probabilities 0..1)."""

    name: str
    version: str
    threshold: float
    uncertain_low: float
    uncertain_high: float
    max_faces: int

    def label_for(self, p: float) -> str:
        """A face's verdict from its P(fake), by the rule of ml.calibration.label_for: uncertain
        inside the band (ends included), else fake at or above the threshold, else real."""
        if self.uncertain_low <= p <= self.uncertain_high:
            return "uncertain"
        return "fake" if p >= self.threshold else "real"


def web_model_dir() -> Path:
    return Path(settings.DETECTION_WEB_MODEL_DIR)


def probability_or_none(value: object) -> float | None:
    """``value`` as a probability (a finite number from 0 to 1, not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def _parse(manifest: object) -> WebModel | None:
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    model = manifest.get("model")
    if not isinstance(model, dict) or not model.get("version"):
        return None
    threshold = probability_or_none(model.get("threshold"))
    low = probability_or_none(model.get("uncertain_low"))
    high = probability_or_none(model.get("uncertain_high"))
    if threshold is None or low is None or high is None or low > high:
        return None
    faces = manifest.get("faces") if isinstance(manifest.get("faces"), dict) else {}
    max_faces = faces.get("max_faces")
    if isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1:
        max_faces = settings.DETECTION_MAX_FACES
    return WebModel(
        name=str(model.get("name") or "model"),
        version=str(model["version"]),
        threshold=threshold,
        uncertain_low=low,
        uncertain_high=high,
        max_faces=max_faces,
    )


@lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> WebModel | None:
    # Keyed by modification time and size: a new export is read again without a restart.
    try:
        with open(path, encoding="utf-8") as fh:
            parsed = _parse(json.load(fh))
    except (OSError, ValueError):
        parsed = None
    if parsed is None:
        logger.warning("The browser model's manifest %s cannot be read", path)
    return parsed


def web_model_get() -> WebModel | None:
    """The browser model the private check page serves now; None when no (valid) manifest is
    installed."""
    path = web_model_dir() / MANIFEST_NAME
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)
