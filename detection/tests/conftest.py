from __future__ import annotations

import pytest

from detection.tests.helpers import FakeEngine


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Every published run message, recorded instead of sent: unit tests never need a broker."""
    from detection.tasks import detection_run_task

    sent: list[int] = []

    def _apply_async(args=None, kwargs=None, **options):
        sent.append(args[0])

    monkeypatch.setattr(detection_run_task, "apply_async", _apply_async)
    return sent


@pytest.fixture
def fake_engine(monkeypatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr("detection.worker.engine_get", lambda: engine)
    return engine
