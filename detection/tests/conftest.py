from __future__ import annotations

import pytest

from detection.tests.helpers import FakeEngine


@pytest.fixture(autouse=True)
def broker_held(monkeypatch) -> set[str]:
    """The ids of the messages the fake broker holds: every one published, as nothing consumes
    them in unit tests; a test removes one to play a broker that lost it."""
    held: set[str] = set()
    monkeypatch.setattr("detection.publish.run_messages_held", lambda: held)
    return held


@pytest.fixture(autouse=True)
def enqueued(monkeypatch, broker_held):
    """Every published run message, recorded instead of sent: unit tests never need a broker."""
    sent: list[int] = []

    def _publish(*, detection_id: int) -> str:
        sent.append(detection_id)
        message_id = f"message-{len(sent)}"
        broker_held.add(message_id)
        return message_id

    monkeypatch.setattr("detection.publish.detection_run_publish", _publish)
    return sent


@pytest.fixture
def fake_engine(monkeypatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr("detection.worker.engine.engine_get", lambda: engine)
    return engine
