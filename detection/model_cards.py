"""The model cards the web side can show and the model version it serves, read from the model
folders' card.json and card.md as plain files (the web side never imports ml or TensorFlow)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from detection.models import WORKER_STALE_AFTER, WorkerHeartbeat

logger = logging.getLogger(__name__)

# The shipped models (ml/models/<folder>/card.json), found without importing ml.
SHIPPED_MODELS_DIR = Path(settings.BASE_DIR) / "ml" / "models"
DEFAULT_MODEL_DIR = SHIPPED_MODELS_DIR / "default"


def _card_read(model_dir: Path) -> dict | None:
    try:
        with open(model_dir / "card.json", encoding="utf-8") as fh:
            card = json.load(fh)
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _card_version(card: dict) -> str:
    # As ml.model_version writes it; card.json carries it as "version" since detector v2.
    if card.get("version"):
        return str(card["version"])
    sha = str(card.get("weights_sha256", ""))[:12] or "unknown"
    date = str(card.get("created", ""))[:10].replace("-", "") or "undated"
    return f"{card.get('name', 'model')}-{date}-{sha}"


def served_model_dir() -> Path:
    """The folder of the model the workers load (ML_MODEL_DIR, else the shipped default)."""
    return Path(settings.ML_MODEL_DIR) if settings.ML_MODEL_DIR else DEFAULT_MODEL_DIR


def model_version_current() -> str | None:
    """The version of the model that gives new verdicts now: what a live worker reports having
    loaded, else what its configured folder's card says; None when neither can be read."""
    beat = (
        WorkerHeartbeat.objects.exclude(model_version="")
        .filter(last_seen__gte=timezone.now() - WORKER_STALE_AFTER)
        .order_by("-last_seen")
        .values_list("model_version", flat=True)
        .first()
    )
    if beat:
        return beat
    card = _card_read(served_model_dir())
    return _card_version(card) if card else None
