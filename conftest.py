"""Fixtures shared by every test: users, API client, media in a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    # Uploads written by a test never land in the developer's var/media.
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()


@pytest.fixture(autouse=True)
def _private_cache(settings, request):
    # Each test gets an empty in-process cache, so rate-limit counters never leak between tests and
    # the shared Redis (also the broker in CI) is never flushed. Tests about the shared cache
    # configure it themselves.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            # locmem caches with the same LOCATION share data: one name per test.
            "LOCATION": request.node.nodeid,
        }
    }


@pytest.fixture(autouse=True)
def _steady_upload_budget_clock(monkeypatch):
    # The upload budget counts in fixed windows (a minute, a UTC day): a test whose requests
    # straddled a window's end would see its budget reset halfway. Hold the clock at 30 s past
    # today's noon, UTC: mid-minute and mid-day.
    import time

    noon = time.time() // 86400 * 86400 + 12 * 3600 + 30
    monkeypatch.setattr("detection.throttles._now", lambda: noon)


@pytest.fixture(autouse=True)
def _model_version_uncached():
    # model_version_current keeps its answer in this process for a few seconds: a version one
    # test saw (its heartbeats, its ML_MODEL_DIR) must never be the next test's.
    from detection.model_cards import model_version_cache_clear

    model_version_cache_clear()
    yield
    model_version_cache_clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 costs about half a second a hash on a busy 2-core machine; tests are about flows,
    # not the hasher. (Processes the tests start, like the worker, never hash passwords.)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password() -> str:
    return "correct-horse-battery-staple-42"


@pytest.fixture
def user(django_user_model, password):
    user = django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password=password
    )
    # A confirmed address, as every account has before it can sign in (mandatory verification).
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


@pytest.fixture
def other_user(django_user_model, password):
    return django_user_model.objects.create_user(
        username="mallory", email="mallory@example.com", password=password
    )


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def token_key(user) -> str:
    """A live API token of `user`, as the raw key a client sends."""
    from accounts.services import api_token_create

    _, key = api_token_create(user=user, name="tests")
    return key


@pytest.fixture
def token_client(token_key):
    """An API client authenticated as `user` with `Authorization: Token <key>`."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    return client
