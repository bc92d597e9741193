"""Fixtures for the security tests: signed-in page client, token API client, what was stored."""

from __future__ import annotations

from pathlib import Path

import pytest

API_LIST = "/api/v1/detections/"


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Run messages are recorded, never sent: these tests need no broker."""
    sent: list[int] = []
    monkeypatch.setattr(
        "detection.publish.detection_run_publish",
        lambda *, detection_id: sent.append(detection_id),
    )
    return sent


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def stored_files(settings):
    """Every file under MEDIA_ROOT right now (a function: call it after the request)."""

    def _files() -> list[Path]:
        root = Path(settings.MEDIA_ROOT)
        return sorted(p for p in root.rglob("*") if p.is_file())

    return _files
