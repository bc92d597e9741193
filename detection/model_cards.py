"""The model cards the web side can show and the model version it serves, read from the model
folders' card.json and card.md as plain files (the web side never imports ml or TensorFlow)."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import markdown
from django.conf import settings
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.extensions.tables import TableExtension
from markdown.treeprocessors import Treeprocessor

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


# model_version_current's last answer: (version, when read by _clock, ML_MODEL_DIR then).
_current: tuple[str | None, float, str] | None = None
_clock = time.monotonic


def model_version_current() -> str | None:
    """The version of the model that gives new verdicts now: what a live worker reports having
    loaded, else what its configured folder's card says; None when neither can be read.

    Read at most once per DETECTION_MODEL_VERSION_CACHE_SECONDS in this process (every upload
    asks). So for that long after a new version starts serving, an upload may still compare its
    bytes with the old version's verdicts: at worst one reuse too many (the old verdict, shown
    with the old version and the offer to re-check) or one too few (a model run that gives the
    verdict it would have copied). The answer lags as much already without the cache: a worker
    beats every WORKER_HEARTBEAT_SECONDS, and during a rolling restart old and new workers both
    serve.
    """
    global _current
    now, model_dir = _clock(), settings.ML_MODEL_DIR
    cached = _current
    if (
        cached is not None
        and now - cached[1] < settings.DETECTION_MODEL_VERSION_CACHE_SECONDS
        and cached[2] == model_dir
    ):
        return cached[0]
    version = _model_version_read()
    _current = (version, now, model_dir)
    return version


def model_version_cache_clear() -> None:
    """Forget model_version_current's answer: the next call reads it again."""
    global _current
    _current = None


def _model_version_read() -> str | None:
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


# --- the model card pages (/models/) ---------------------------------------------------------

# A card's plot: a plain file name in its folder's plots/ (no separators, no dot files).
_PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.png$")
# Link targets a card may keep; anything else (javascript:, data:...) is dropped from its page.
_SAFE_LINK = re.compile(r"^(?:https?://|mailto:|#|/|\.{0,2}[A-Za-z0-9_.\-/]*(?:[?#].*)?$)")


@dataclass(frozen=True)
class ModelCard:
    """One installed model version, as its folder's card.json describes it."""

    version: str
    folder: Path
    card: dict
    # The folder's name under ml/models (default, v1...); "" for a folder elsewhere.
    shipped_as: str
    # This folder is the one the workers are configured to load (ML_MODEL_DIR or the default).
    configured: bool

    @property
    def name(self) -> str:
        return str(self.card.get("name") or "model")

    @property
    def created(self) -> str:
        return str(self.card.get("created") or "")[:10]

    @property
    def architecture(self) -> str:
        return str(self.card.get("architecture") or "")

    @property
    def test_metrics(self) -> dict[str, float]:
        """ROC AUC and accuracy on the model's test split, as the card reports them."""
        metrics = self.card.get("test_metrics")
        if not isinstance(metrics, dict):
            return {}
        return {
            key: float(metrics[key])
            for key in ("roc_auc", "accuracy")
            if isinstance(metrics.get(key), int | float)
        }

    @property
    def has_markdown(self) -> bool:
        return (self.folder / "card.md").is_file()

    @property
    def plots(self) -> list[str]:
        """The card's plot files (plots/*.png), sorted by name."""
        plots_dir = self.folder / "plots"
        try:
            names = sorted(p.name for p in plots_dir.iterdir() if p.is_file())
        except OSError:
            return []
        return [name for name in names if _PLOT_NAME.match(name)]

    @property
    def plot_items(self) -> list[dict[str, str]]:
        """The plots with a title for people: roc_curve.png -> "ROC curve"."""
        items = []
        for name in self.plots:
            title = re.sub(r"\broc\b", "ROC", name.removesuffix(".png").replace("_", " "))
            items.append({"name": name, "title": title[:1].upper() + title[1:]})
        return items


@lru_cache(maxsize=64)
def _card_read_cached(path: str, mtime_ns: int, size: int) -> dict | None:
    # Keyed by modification time and size: a card rewritten in place (ml annotate) is read again.
    return _card_read(Path(path))


def _card_at(folder: Path) -> dict | None:
    try:
        stat = (folder / "card.json").stat()
    except OSError:
        return None
    return _card_read_cached(str(folder), stat.st_mtime_ns, stat.st_size)


def model_cards_list() -> list[ModelCard]:
    """Every installed model version: the shipped folders (ml/models/*) and the configured one
    (ML_MODEL_DIR) when it is elsewhere; the configured one first, then newest first. A version
    found in two folders is listed once (the configured folder wins)."""
    served = served_model_dir()
    folders: list[Path] = [served]
    try:
        folders += sorted(p for p in SHIPPED_MODELS_DIR.iterdir() if p.is_dir())
    except OSError:
        logger.warning("Model folder %s cannot be read", SHIPPED_MODELS_DIR)
    served_resolved = _resolved(served)
    seen_versions: set[str] = set()
    seen_folders: set[Path] = set()
    cards: list[ModelCard] = []
    for folder in folders:
        resolved = _resolved(folder)
        if resolved in seen_folders:
            continue
        seen_folders.add(resolved)
        card = _card_at(folder)
        if card is None:
            continue
        version = _card_version(card)
        if version in seen_versions:
            continue
        seen_versions.add(version)
        cards.append(
            ModelCard(
                version=version,
                folder=folder,
                card=card,
                shipped_as=folder.name if resolved.parent == _resolved(SHIPPED_MODELS_DIR) else "",
                configured=resolved == served_resolved,
            )
        )
    cards.sort(key=lambda c: c.created, reverse=True)
    cards.sort(key=lambda c: not c.configured)  # stable: the configured one first
    return cards


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def model_card_get(*, version: str) -> ModelCard | None:
    """The installed model card of `version`; None when no installed folder has it."""
    for card in model_cards_list():
        if card.version == version:
            return card
    return None


class _SafeLinks(Treeprocessor):
    """Drops link and image targets with a scheme a page should not follow (javascript:...)."""

    def run(self, root) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                if value is not None and not _SAFE_LINK.match(value.strip()):
                    del element.attrib[attribute]


class _SafeLinksExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - Markdown's name
        md.treeprocessors.register(_SafeLinks(md), "safe_links", 0)


@lru_cache(maxsize=16)
def _markdown_html(path: str, mtime_ns: int, size: int) -> str:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    md = markdown.Markdown(
        # align="right" rather than style="text-align: right": the pages' Content-Security-Policy
        # refuses style attributes.
        extensions=[TableExtension(use_align_attribute=True), "fenced_code", _SafeLinksExtension()],
        output_format="html",
    )
    # Raw HTML in a card is shown as text, not markup: a model folder may come from elsewhere.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md.convert(text)


def model_card_html(card: ModelCard) -> SafeString | None:
    """The card's card.md as HTML for a page; None when the folder has no readable card.md."""
    path = card.folder / "card.md"
    try:
        stat = path.stat()
        # Safe to mark safe: Markdown escaped any raw HTML, and unsafe links were dropped.
        return mark_safe(_markdown_html(str(path), stat.st_mtime_ns, stat.st_size))  # noqa: S308
    except (OSError, UnicodeDecodeError):
        logger.warning("Model card %s cannot be read", path, exc_info=True)
        return None


def model_card_plot_path(*, version: str, name: str) -> Path | None:
    """The file of plot `name` of `version`'s card: only a plain .png directly inside that
    folder's plots/ (no other folder, no link out of it); None otherwise."""
    if not _PLOT_NAME.match(name):
        return None
    card = model_card_get(version=version)
    if card is None:
        return None
    plots_dir = _resolved(card.folder / "plots")
    path = _resolved(plots_dir / name)
    if path.parent != plots_dir or not path.is_file():
        return None
    return path
