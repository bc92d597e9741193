from __future__ import annotations

import pytest

from detection.tests.helpers import FakeEngine


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Every published run message, recorded instead of sent: unit tests never need a broker."""
    sent: list[int] = []

    def _publish(*, detection_id: int) -> None:
        sent.append(detection_id)

    monkeypatch.setattr("detection.publish.detection_run_publish", _publish)
    return sent


@pytest.fixture
def fake_engine(monkeypatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr("detection.worker.engine.engine_get", lambda: engine)
    return engine
