"""Abuse limits: uploads per user per minute and per day, reads per minute, all answered with 429
and Retry-After; the upload page shares the API's upload budget. Failed sign-ins are locked out by
allauth's limiter: accounts/tests/test_auth_flows.py
(test_repeated_failures_lock_the_account_out_even_with_the_right_password,
test_per_ip_limit_covers_guesses_spread_over_accounts) covers it; not repeated here.

In production the counters live in the shared Redis cache (test_counters_are_shared_in_redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from detection.tests import hostile

from .conftest import API_LIST

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch):
    """Set throttle rates for one test (DRF copies them onto the class when it is imported)."""

    def _set(**overrides: str) -> None:
        monkeypatch.setattr(
            SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **overrides}
        )
        cache.clear()

    return _set


def _api_upload(client):
    return client.post(
        API_LIST, {"image": hostile.upload(hostile.jpeg(), "a.jpg")}, format="multipart"
    )


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


def _cache_settings_with(redis_url: str) -> dict:
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
def test_counters_are_shared_in_redis(settings, user, token_key, monkeypatch):
    """With REDIS_URL set, the cache is Django's RedisCache, and two separate clients of one user
    draw on one upload budget whose counter is stored in Redis (under a test-only key prefix;
    only those keys are removed afterwards)."""
    import redis

    redis_url = (
        os.environ.get("REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/9"
    )
    caches = _cache_settings_with(redis_url)
    assert caches["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert caches["default"]["LOCATION"] == redis_url

    prefix = f"security-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**caches["default"], "KEY_PREFIX": prefix}}
    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {**SimpleRateThrottle.THROTTLE_RATES, "uploads": "2/min", "uploads_daily": "100/day"},
    )
    server = redis.Redis.from_url(redis_url)
    try:
        first, second = APIClient(), APIClient()
        for client in (first, second):
            client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
        assert _api_upload(first).status_code == 202
        assert _api_upload(second).status_code == 202
        assert _api_upload(first).status_code == 429  # the second client's upload counted
        keys = [k.decode() for k in server.scan_iter(match=f"{prefix}:*")]
        assert any(k.endswith(f"throttle_uploads_{user.pk}") for k in keys), keys
    finally:
        for key in server.scan_iter(match=f"{prefix}:*"):
            server.delete(key)
        server.close()
