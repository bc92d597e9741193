"""Finding labelled images on disk and streaming them with tf.data.

Discovery (no TF): below each given root, every image whose nearest labelled ancestor folder
names ``real`` or ``fake`` as a word (case-insensitive: ``real``, ``Fake``, ``training_real``,
``test-fake``...) gets that label. The split comes from an ancestor folder naming
train/training, val/valid/validation or test/testing as a word; without one, a deterministic
hash of the file name gives 75 / 10 / 15 %. The *source* of an image is the first-level
subfolder under its root (or the root's own name when that subfolder is itself a split folder or
the image's label folder, or the image sits directly in the root).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .preprocess import IMAGE_SUFFIXES, ImageDecodeError, load_image

LABELS = {"real": 0, "fake": 1}
_WORD = r"(?:^|[^a-z0-9])({})(?:[^a-z0-9]|$)"
_LABEL_RE = re.compile(_WORD.format("real|fake"))
_SPLIT_WORDS = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}
_SPLIT_RE = re.compile(_WORD.format("|".join(sorted(_SPLIT_WORDS, key=len, reverse=True))))
HASH_SPLIT = (0.75, 0.10)  # train, val; the rest is test


class DataError(ValueError):
    """The data given cannot be used (no images, one class only, too many broken files...)."""


class UndecodableImagesError(DataError):
    """More than the allowed share of the images could not be decoded."""

    def __init__(self, message: str, *, count: int, total: int, examples: list[str]):
        super().__init__(message)
        self.count = count
        self.total = total
        self.examples = examples


@dataclass(frozen=True)
class Record:
    path: str
    label: int  # 0 real, 1 fake
    source: str
    split: str  # train | val | test


def label_of(name: str) -> int | None:
    m = _LABEL_RE.search(name.lower())
    return LABELS[m.group(1)] if m else None


def split_of(name: str) -> str | None:
    m = _SPLIT_RE.search(name.lower())
    return _SPLIT_WORDS[m.group(1)] if m else None


def hash_split(file_name: str) -> str:
    digest = hashlib.sha1(file_name.encode("utf-8"), usedforsecurity=False).hexdigest()
    h = int(digest[:8], 16) / 0xFFFFFFFF
    if h < HASH_SPLIT[0]:
        return "train"
    if h < HASH_SPLIT[0] + HASH_SPLIT[1]:
        return "val"
    return "test"


def discover(roots, *, exclude_sources=(), only_sources=(),
             suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Record]:
    """All labelled images under the roots, sorted by path (deterministic). ``suffixes``: the
    file names taken (lower case; video clips for ``python -m ml evaluate-video``)."""
    out: list[Record] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"data folder not found: {root}")
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            rel_parts = Path(dirpath).relative_to(root).parts
            label, label_at = None, -1
            for i in range(len(rel_parts) - 1, -1, -1):  # nearest labelled ancestor wins
                label = label_of(rel_parts[i])
                if label is not None:
                    label_at = i
                    break
            if label is None:
                continue
            split = None
            for part in reversed(rel_parts):
                split = split_of(part)
                if split is not None:
                    break
            first = rel_parts[0] if rel_parts else ""
            # The first level names the source unless it is itself the label or split folder;
            # a source name may contain a label word ("utkface_real/train/real/...").
            if not first or label_at == 0 or split_of(first) is not None:
                source = root.name
            else:
                source = first
            for fn in sorted(filenames):
                if not fn.lower().endswith(tuple(suffixes)) or fn.startswith("."):
                    continue
                out.append(Record(
                    path=str(Path(dirpath) / fn), label=label, source=source,
                    split=split or hash_split(fn),
                ))
    if exclude_sources:
        out = [r for r in out if r.source not in set(exclude_sources)]
    if only_sources:
        out = [r for r in out if r.source in set(only_sources)]
    out.sort(key=lambda r: r.path)
    return out


def select(records, split: str | None) -> list[Record]:
    return [r for r in records if split in (None, "all") or r.split == split]


def summarize(records) -> dict:
    """Counts per split, source and label (for the model card)."""
    table: dict = {}
    for (split, source, label), n in sorted(
        Counter((r.split, r.source, r.label) for r in records).items()
    ):
        d = table.setdefault(split, {}).setdefault(source, {"real": 0, "fake": 0})
        d["fake" if label else "real"] = n
    return table


def _decode_problem(path: str, max_pixels: int) -> str | None:
    try:
        load_image(path, max_pixels=max_pixels).close()
    except ImageDecodeError as exc:
        return str(exc)
    return None


def find_undecodable(records, *, max_pixels: int, workers: int | None = None):
    """``[(record, reason), ...]`` for every record whose file the preprocessing cannot decode
    (the same decoder as training and inference; threads, since Pillow releases the GIL)."""
    records = list(records)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = pool.map(lambda r: _decode_problem(r.path, max_pixels), records,
                            chunksize=64)
        return [(r, why) for r, why in zip(records, problems, strict=True) if why is not None]


# ----------------------------------------------------------------------------- tf.data


def make_dataset(records, image_size: int, *, max_pixels: int, batch_size: int = 32,
                 training: bool = False, augment_config=None, seed: int = 1234,
                 perturbation: str | None = None, blend_config=None, repeat: bool = False):
    """Stream (uint8 images, float labels) batches; decoding uses ``preprocess.prepare``.

    Training with ``blend_config.share > 0`` mixes in self-blended fakes made on the fly from
    the real training faces (``ml.blend``): that share of the stream, labelled fake, before the
    augmentation that every image gets. ``repeat`` makes the stream endless (the caller sets
    steps per epoch, so every configuration trains on the same number of images).

    An undecodable file stops the stream with an error (check the records first with
    ``find_undecodable``); it is never replaced by a stand-in image.
    """
    import numpy as np
    import tensorflow as tf

    from . import preprocess

    size = int(image_size)
    limit = preprocess.check_max_pixels(max_pixels)

    def _load(path):
        arr = preprocess.prepare_path(path, size, limit)
        if perturbation:
            arr = preprocess.perturb(arr, perturbation)
        return arr

    def _map(path, label):
        img = tf.numpy_function(_load, [path], tf.uint8, stateful=False)
        img.set_shape((size, size, 3))
        return img, label

    def _stream(recs, shuffle_seed):
        paths = np.array([r.path for r in recs])
        labels = np.array([r.label for r in recs], np.float32)
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        if training:
            ds = ds.shuffle(len(recs), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds

    ds = _stream(records, seed)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if training and blend_config is not None and blend_config.enabled:
        from .blend import self_blend

        reals = [r for r in records if r.label == 0]
        if reals:
            rng = np.random.default_rng(seed)  # Generator methods hold its lock: thread-safe

            def _blend(img):
                return self_blend(img, rng, blend_config)

            def _blend_map(img, _label):
                out = tf.numpy_function(_blend, [img], tf.uint8, stateful=True)
                out.set_shape((size, size, 3))
                return out, tf.constant(1.0, tf.float32)

            sbi = (_stream(reals, seed + 1).repeat()
                   .map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                   .map(_blend_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
            share = float(blend_config.share)
            ds = tf.data.Dataset.sample_from_datasets(
                [ds, sbi], weights=[1.0 - share, share], seed=seed, stop_on_empty_dataset=True)
    if training and augment_config is not None and augment_config.enabled:
        from .augment import make_augmenter

        aug = make_augmenter(augment_config, size, seed=seed)
        ds = ds.map(lambda x, y: (aug.one(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
