import datetime as dt

import pytest
from django.utils import timezone

from deepfake_site.celery import app, broker_description
from detection.models import WorkerHeartbeat
from detection.tests.factories import WorkerHeartbeatFactory

pytestmark = pytest.mark.django_db


def _beat(*, seconds_ago: int = 0, version: str = "1.0") -> WorkerHeartbeat:
    return WorkerHeartbeatFactory(
        model_version=version, last_seen=timezone.now() - dt.timedelta(seconds=seconds_ago)
    )


@pytest.fixture
def staff(django_user_model, password):
    return django_user_model.objects.create_user(
        username="operator", email="operator@example.com", password=password, is_staff=True
    )


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _token(user) -> str:
    from accounts.services import api_token_create

    return api_token_create(user=user, name="monitoring")[1]


def test_health_up_reports_every_dependency(staff_client):
    _beat()
    response = staff_client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["broker"]["url"]
    assert body["checks"]["workers"] == {"ok": True, "count": 1}
    assert body["checks"]["model"] == {"ok": True, "name": "residual-cnn", "version": "1.0"}


PUBLIC_UP = {
    "status": "ok",
    "checks": {name: {"ok": True} for name in ("database", "broker", "workers", "model")},
}


def test_anonymous_health_says_up_or_down_and_nothing_else(client):
    _beat()
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == PUBLIC_UP
    broker = broker_description(app.conf.broker_url)
    for detail in (broker, "residual-cnn", "version", "count", "url", "vendor"):
        assert detail.encode() not in response.content


def test_anonymous_health_down_names_the_check_but_not_the_error(client, settings, monkeypatch):
    _beat(version="")
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"ok": True},
            "broker": {"ok": False},
            "workers": {"ok": True},
            "model": {"ok": False},
        },
    }


def test_a_user_who_is_not_staff_gets_the_public_answer(client, user, api_client, token_key):
    _beat()
    client.force_login(user)
    assert "count" not in client.get("/health/").json()["checks"]["workers"]
    response = api_client.get("/health/", HTTP_AUTHORIZATION=f"Token {token_key}")
    assert "count" not in response.json()["checks"]["workers"]


def test_a_staff_users_api_token_gets_the_details(api_client, staff):
    _beat()
    response = api_client.get("/health/", HTTP_AUTHORIZATION=f"Token {_token(staff)}")
    assert response.json()["checks"]["workers"] == {"ok": True, "count": 1}
    assert response.json()["checks"]["model"]["version"] == "1.0"


def test_a_bad_token_gets_the_public_answer(api_client):
    _beat()
    response = api_client.get("/health/", HTTP_AUTHORIZATION="Token not-a-real-key")
    assert (response.status_code, response.json()) == (200, PUBLIC_UP)


def test_health_hides_broker_credentials_even_from_staff(staff_client, monkeypatch):
    monkeypatch.setitem(app.conf, "broker_url", "redis://:s3cret@127.0.0.1:1/0")
    body = staff_client.get("/health/").json()
    assert "s3cret" not in body["checks"]["broker"]["url"]


def test_health_down_when_broker_unreachable(staff_client, monkeypatch, settings):
    _beat()
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = staff_client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_health_down_without_a_worker(staff_client):
    response = staff_client.get("/health/")
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
