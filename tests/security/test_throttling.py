"""Abuse limits: uploaded images per user per minute and per day (counted per image, charged
atomically before anything is stored), reads per minute, all answered with 429 and Retry-After;
the upload page shares the API's upload budget. Failed sign-ins are locked out by
allauth's limiter: accounts/tests/test_auth_flows.py
(test_repeated_failures_lock_the_account_out_even_with_the_right_password,
test_per_ip_limit_covers_guesses_spread_over_accounts) covers it; not repeated here.

In production the counters live in the shared Redis cache (test_counters_are_shared_in_redis);
parallel uploads against real Redis: test_parallel_uploads_accept_exactly_the_limit_in_redis;
a Redis outage: tests/faults/test_cache_outage.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import connection
from django.urls import reverse
from django.utils.module_loading import import_string
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from detection.models import Detection
from detection.tests import hostile
from tests.processes import redis_server

from .conftest import API_LIST

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch, settings):
    """Set the rates for one test: in settings (the upload budget reads them on every call) and
    on DRF's throttle class (which copies them when it is imported)."""

    def _set(**overrides: str) -> None:
        combined = {**SimpleRateThrottle.THROTTLE_RATES, **overrides}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", combined)
        settings.REST_FRAMEWORK = {
            **django_settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": combined,
        }
        cache.clear()

    return _set


def _api_upload(client, images: int = 1):
    # Each file different (a comment in it): the same bytes twice would be analysed once.
    files = [
        hostile.upload(hostile.jpeg(comment=f"{uuid.uuid4()}".encode()), f"a{i}.jpg")
        for i in range(images)
    ]
    return client.post(API_LIST, {"image": files}, format="multipart")


def _retry_after(response) -> int:
    value = int(response["Retry-After"])
    assert value > 0
    return value


def test_uploads_per_minute(token_client, rates):
    rates(uploads="2/min", uploads_daily="1000/day")
    codes = [_api_upload(token_client).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert _retry_after(_api_upload(token_client)) <= 60


def test_uploads_per_day(token_client, rates):
    rates(uploads="1000/min", uploads_daily="2/day")
    codes = [_api_upload(token_client).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert 60 < _retry_after(_api_upload(token_client)) <= 24 * 3600


def test_reads_per_minute(token_client, rates):
    rates(reads="3/min")
    codes = [token_client.get(API_LIST).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert _retry_after(token_client.get(API_LIST)) <= 60
    assert token_client.get(reverse("accounts_api:me")).status_code == 429  # same read budget


def test_upload_page_shares_the_api_upload_budget(signed_in, token_client, rates):
    rates(uploads="2/min", uploads_daily="1000/day")
    page = lambda: signed_in.post(  # noqa: E731
        reverse("detection:upload"), {"images": [hostile.upload(hostile.jpeg(), "b.jpg")]}
    )
    assert _api_upload(token_client).status_code == 202
    assert page().status_code == 302
    refused = page()
    assert refused.status_code == 429
    assert "Too many requests" in refused.content.decode()
    assert _retry_after(refused) <= 60
    assert _api_upload(token_client).status_code == 429


def test_uploads_count_images_not_requests(token_client, rates, stored_files):
    """A request of 20 images uses 20 of the budget; one that does not fit is refused whole,
    stores nothing and is refunded, so the rest of the budget stays usable."""
    rates(uploads="30/min", uploads_daily="1000/day")
    assert _api_upload(token_client, images=20).status_code == 202
    assert Detection.objects.count() == 20
    files_before = stored_files()

    refused = _api_upload(token_client, images=20)
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert _retry_after(refused) <= 60
    assert Detection.objects.count() == 20
    assert stored_files() == files_before

    assert _api_upload(token_client, images=10).status_code == 202  # the refused 20 were refunded
    assert _api_upload(token_client, images=1).status_code == 429  # 30 of 30 used
    assert Detection.objects.count() == 30


def test_daily_budget_counts_images_too(token_client, rates):
    rates(uploads="1000/min", uploads_daily="5/day")
    assert _api_upload(token_client, images=3).status_code == 202
    refused = _api_upload(token_client, images=3)
    assert refused.status_code == 429
    assert 60 < _retry_after(refused) <= 24 * 3600
    assert _api_upload(token_client, images=2).status_code == 202
    assert Detection.objects.count() == 5


def test_upload_page_counts_images_in_the_shared_budget(signed_in, token_client, rates):
    rates(uploads="30/min", uploads_daily="1000/day")

    def page(images: int):
        files = [
            hostile.upload(hostile.jpeg(comment=f"{uuid.uuid4()}".encode()), f"p{i}.jpg")
            for i in range(images)
        ]
        return signed_in.post(reverse("detection:upload"), {"images": files})

    assert page(20).status_code == 302
    assert _api_upload(token_client, images=20).status_code == 429
    refused = page(11)
    assert refused.status_code == 429
    assert _retry_after(refused) <= 60
    assert Detection.objects.count() == 20
    assert page(10).status_code == 302
    assert Detection.objects.count() == 30


def cache_settings_with(redis_url: str) -> dict:
    """CACHES as deepfake_site.settings builds it when REDIS_URL is set (in a fresh process)."""
    code = "import json; from deepfake_site import settings as s; print(json.dumps(s.CACHES))"
    env = {**os.environ, "REDIS_URL": redis_url}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.services
def test_counters_are_shared_in_redis(settings, user, token_key, rates):
    """With REDIS_URL set, the cache is (a subclass of) Django's RedisCache, and two separate
    clients of one user draw on one upload budget whose counter is stored in Redis (under a
    test-only key prefix; only those keys are removed afterwards)."""
    import redis

    redis_url = (
        os.environ.get("REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/9"
    )
    caches = cache_settings_with(redis_url)
    assert caches["default"]["BACKEND"] == "deepfake_site.cache.RedisCache"
    assert issubclass(import_string(caches["default"]["BACKEND"]), DjangoRedisCache)
    assert caches["default"]["LOCATION"] == redis_url

    rates(uploads="2/min", uploads_daily="100/day")  # (clears the in-process cache, not Redis)
    prefix = f"security-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**caches["default"], "KEY_PREFIX": prefix}}
    server = redis.Redis.from_url(redis_url)
    try:
        first, second = APIClient(), APIClient()
        for client in (first, second):
            client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
        assert _api_upload(first).status_code == 202
        assert _api_upload(second).status_code == 202
        assert _api_upload(first).status_code == 429  # the second client's upload counted
        keys = [k.decode() for k in server.scan_iter(match=f"{prefix}:*")]
        assert any(f":upload-budget:uploads:{user.pk}:" in k for k in keys), keys
    finally:
        for key in server.scan_iter(match=f"{prefix}:*"):
            server.delete(key)
        server.close()


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_parallel_uploads_accept_exactly_the_limit_in_redis(settings, token_key, rates):
    """40 uploads of one image, released together from 40 threads (each its own Redis and
    database connection), against 25 images a minute on a private redis-server with the real
    cache configuration: exactly 25 are accepted and stored."""
    attempts, limit = 40, 25
    rates(uploads=f"{limit}/min", uploads_daily="1000/day")
    with redis_server() as server:
        settings.CACHES = cache_settings_with(server.url)
        barrier = threading.Barrier(attempts)
        codes: list[int] = []
        errors: list[BaseException] = []

        def attempt() -> None:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
            try:
                barrier.wait(timeout=30)
                codes.append(_api_upload(client).status_code)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt) for _ in range(attempts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert sorted(codes) == [202] * limit + [429] * (attempts - limit)
        assert Detection.objects.count() == limit
