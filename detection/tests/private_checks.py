"""Private checks for tests: a browser model manifest in a folder of the test's own, and saved
private rows made through the service (as the API makes them)."""

from __future__ import annotations

import json
from pathlib import Path

from detection import services
from detection.models import Detection

WEB_VERSION = "web-model-20260101-0123456789ab"
# The rule of the test manifest: uncertain from 0.4 to 0.6, fake from 0.5.
WEB_RULE = {"threshold": 0.5, "uncertain_low": 0.4, "uncertain_high": 0.6}


def web_manifest_write(folder: Path, *, version: str = WEB_VERSION, **model: object) -> Path:
    """A manifest.json as `python -m ml export-web` writes it (the fields the server reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": "deepfake-web-model/1",
        "exporter": "python -m ml export-web",
        "model": {"name": "web-model", "version": version, **WEB_RULE, **model},
        "faces": {"max_faces": 10},
        "networks": {},
        "files": [],
        "total_bytes": 0,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def private_detection(*, owner, faces: list[dict] | None = None, **fields) -> Detection:
    """A saved private check of `owner` (by default two faces, the second deciding: fake)."""
    if faces is None:
        faces = [
            {"box": [10, 10, 40, 40], "fake_probability": 0.2, "detector_confidence": 0.99},
            {"box": [60, 10, 30, 30], "fake_probability": 0.83, "detector_confidence": 0.95},
        ]
    return services.detection_private_save(
        owner=owner,
        model_version=fields.pop("model_version", WEB_VERSION),
        width=fields.pop("width", 200),
        height=fields.pop("height", 100),
        faces=faces,
        inference_ms=fields.pop("inference_ms", 123.4),
    )
