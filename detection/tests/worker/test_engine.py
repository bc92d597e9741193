"""The worker's engine life cycle: loaded once per process, with the site's own limits."""

from __future__ import annotations

from detection.worker import engine as worker_engine


def test_the_engine_gets_the_upload_gates_pixel_limit(monkeypatch, settings):
    """One pixel limit: the model's decoder refuses exactly what the upload gate refuses."""
    from ml.inference import Engine

    settings.DETECTION_MAX_PIXELS = 1_234_567
    settings.DETECTION_MAX_FACES = 3
    calls = []

    def _load(model_dir=None, **kwargs):
        calls.append(kwargs)
        return type("Loaded", (), {"name": "m", "version": "m-1"})()

    monkeypatch.setattr(Engine, "load", staticmethod(_load))
    monkeypatch.setattr(worker_engine, "_engine", None)
    first = worker_engine.engine_get()
    assert worker_engine.engine_get() is first  # once per process
    [kwargs] = calls
    assert kwargs["max_pixels"] == 1_234_567
    assert kwargs["max_faces"] == 3
