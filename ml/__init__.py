"""Deepfake face-image detector: data, training, evaluation and the inference engine.

Importing ``ml`` or any of its modules is cheap: TensorFlow is loaded only when a model is
built, loaded, trained or evaluated (``ml.layers`` is the one module that imports Keras).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DEFAULT_MODEL_DIR", "PACKAGE_VERSION", "read_card", "model_version", "card_sources",
           "REPO_ROOT"]

PACKAGE_VERSION = "1.0.0"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_MODEL_DIR = PACKAGE_DIR / "models" / "default"
WEIGHTS_NAME = "model.keras"
CARD_JSON = "card.json"
CARD_MD = "card.md"


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """The given model directory, or the shipped default one."""
    return Path(model_dir) if model_dir else DEFAULT_MODEL_DIR


def read_card(model_dir: str | Path | None = None) -> dict:
    """The machine-readable model card (``card.json``) of a model directory (no TF needed)."""
    path = resolve_model_dir(model_dir) / CARD_JSON
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def model_version(card: dict) -> str:
    """A short, stable version string: ``<name>-<date>-<first 12 hex of the weights sha256>``."""
    sha = str(card.get("weights_sha256", ""))[:12] or "unknown"
    date = str(card.get("created", ""))[:10].replace("-", "") or "undated"
    return f"{card.get('name', 'model')}-{date}-{sha}"


def card_sources(card: dict) -> set[str]:
    """The data sources a model card lists (those its training counts name, any split)."""
    counts = card.get("training", {}).get("counts", {})
    return {src for per_source in counts.values() for src in per_source}
