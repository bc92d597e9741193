import datetime as dt

import pytest
from django.utils import timezone

from deepfake_site.celery import app
from detection.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def _beat(*, seconds_ago: int = 0, version: str = "1.0") -> WorkerHeartbeat:
    now = timezone.now() - dt.timedelta(seconds=seconds_ago)
    return WorkerHeartbeat.objects.create(
        hostname="worker-1",
        pid=4242,
        model_name="residual-cnn",
        model_version=version,
        started_at=now,
        last_seen=now,
    )


def test_health_up_reports_every_dependency(client):
    _beat()
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["workers"] == {"ok": True, "count": 1}
    assert body["checks"]["model"] == {"ok": True, "name": "residual-cnn", "version": "1.0"}


def test_health_hides_broker_credentials(client, monkeypatch):
    monkeypatch.setitem(app.conf, "broker_url", "redis://:s3cret@127.0.0.1:1/0")
    body = client.get("/health/").json()
    assert "s3cret" not in body["checks"]["broker"]["url"]


def test_health_down_when_broker_unreachable(client, monkeypatch, settings):
    _beat()
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_health_down_without_a_worker(client):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"] == {"ok": False, "count": 0}


def test_health_ignores_a_stale_worker(client):
    _beat(seconds_ago=600)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["ok"] is False


def test_health_down_when_no_model_loaded(client):
    _beat(version="")
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["model"]["ok"] is False
