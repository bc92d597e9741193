"""Redis down: the shared cache (rate-limit counters) and the broker are one private redis-server,
configured exactly as deepfake_site.settings does with REDIS_URL, then killed with kill -9.

Reads, pages and sign-in answer as usual, uploads are stored and stay pending for the sweeper,
and the limits still hold, counted per process (deepfake_site/cache.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from detection.models import Detection
from detection.tests import hostile
from detection.tests.factories import DetectionFactory
from tests.faults.conftest import app_broker
from tests.processes import redis_server
from tests.security.test_throttling import cache_settings_with

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db]

API_LIST = "/api/v1/detections/"


@pytest.fixture
def redis_down(settings):
    with redis_server() as server:
        caches = cache_settings_with(server.url)
        assert caches["default"]["LOCATION"] == server.url
        settings.CACHES = caches
        with app_broker(server.url, f"cache-outage-{uuid.uuid4().hex[:12]}"):
            server.kill()
            yield server


def _api_upload(client, name: str = "outage.jpg"):
    return client.post(
        API_LIST, {"image": hostile.upload(hostile.jpeg(), name)}, format="multipart"
    )


def _stored_and_pending(detection_id: int) -> None:
    detection = Detection.objects.get(id=detection_id)
    assert detection.status == Detection.Status.PENDING
    assert (Path(django_settings.MEDIA_ROOT) / detection.image.name).is_file()


def test_api_reads_answer_with_redis_down(redis_down, user, token_client):
    detection = DetectionFactory(owner=user, done=True)
    listed = token_client.get(API_LIST)
    assert listed.status_code == 200, listed.content[:300]
    assert [d["id"] for d in listed.json()["results"]] == [detection.id]
    detail = token_client.get(f"{API_LIST}{detection.id}/")
    assert detail.status_code == 200
    assert detail.json()["label"] == "fake"


def test_api_upload_is_stored_and_pending_with_redis_down(redis_down, token_client):
    response = _api_upload(token_client)
    assert response.status_code == 202, response.content[:300]
    [created] = response.json()["detections"]
    _stored_and_pending(created["id"])


def test_pages_and_page_upload_with_redis_down(redis_down, client, user):
    client.force_login(user)  # sessions are in the database
    DetectionFactory(owner=user)
    assert client.get(reverse("detection:history")).status_code == 200
    response = client.post(
        reverse("detection:upload"), {"images": [hostile.upload(hostile.jpeg(), "page.jpg")]}
    )
    assert response.status_code == 302
    newest = Detection.objects.filter(original_name="page.jpg").get()
    _stored_and_pending(newest.id)


def test_sign_in_with_redis_down(redis_down, client, user, password):
    assert client.get(reverse("account_login")).status_code == 200
    wrong = client.post(reverse("account_login"), {"login": "alice", "password": "not-it"})
    assert wrong.status_code == 200  # the form again, with its error
    right = client.post(reverse("account_login"), {"login": "alice", "password": password})
    assert right.status_code == 302
    assert client.get(reverse("detection:history")).status_code == 200


def test_upload_budget_still_holds_per_process_with_redis_down(redis_down, token_client, settings):
    rates = {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "uploads": "2/min"}
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    codes = [_api_upload(token_client, f"{i}.jpg").status_code for i in range(3)]
    assert codes == [202, 202, 429]
    assert Detection.objects.count() == 2


def test_the_cache_goes_back_to_redis_when_it_returns(settings, monkeypatch):
    from django.core.cache import cache

    monkeypatch.setattr("deepfake_site.cache.RETRY_SECONDS", 0.0)  # retry Redis on every call
    with redis_server() as server:
        settings.CACHES = cache_settings_with(server.url)
        cache.set("before", 1)
        server.kill()
        assert cache.get("before") is None  # the stand-in: empty, no error
        cache.set("during", 2)
        assert cache.get("during") == 2
        server.start()  # the same port again
        cache.set("after", 3)
        assert cache.get("after") == 3
        keys = sorted(k.decode().rsplit(":", 1)[-1] for k in server.client().keys("*"))
        assert keys == ["after"]


def test_one_redis_client_serves_every_cache_call(settings):
    from django.core.cache import cache

    with redis_server() as server:
        settings.CACHES = cache_settings_with(server.url)
        cache.set("a", 1)
        client = cache._cache.get_client(write=True)
        # Django built a new client per call (about 0.13 ms each, eight per upload).
        assert cache._cache.get_client(write=True) is client
        assert cache.get("a") == 1 and cache.incr("a") == 2
