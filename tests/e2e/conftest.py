"""A real Celery worker process on the real broker, against the pytest test database.

The worker is started once per session, after the test database exists, with:
- DATABASE_URL pointing at that test database (rows must be committed: tests use
  `transactional_db` or `live_server`);
- the broker this test process publishes to (Redis: TEST_REDIS_URL / REDIS_URL);
- a queue of its own for this session, so messages left by an earlier run never reach it;
- MEDIA_ROOT shared with the tests (the e2e tests point settings.MEDIA_ROOT at it);
- the shipped model (ml/models/default), or, while that is missing, a throwaway model trained on
  generated images in a temporary folder (slow: about a minute).

Starting and stopping the processes lives in tests/processes.py, shared with tests/faults.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.processes import model_dir_get, worker_env, worker_running


@pytest.fixture(scope="session")
def e2e_model_dir(tmp_path_factory) -> Path:
    # The shipped model, or a throwaway one while it is missing (report this to the lead).
    return model_dir_get(tmp_path_factory)


@pytest.fixture(scope="session")
def e2e_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-media")


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, django_db_blocker, e2e_model_dir, e2e_media_root, tmp_path_factory
):
    from django.db import connection

    from deepfake_site.celery import app

    broker_url = app.conf.broker_url
    assert broker_url.startswith("redis"), (
        f"The end-to-end tests need Redis as the broker (REDIS_URL), not {broker_url!r}."
    )
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    var_dir = tmp_path_factory.mktemp("e2e-var")
    env = worker_env(
        database=connection.settings_dict,
        broker_url=broker_url,
        queue=queue,
        media_root=e2e_media_root,
        var_dir=var_dir,
        model_dir=e2e_model_dir,
    )
    # This process publishes to the same session queue (the router reads this at send time).
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        with worker_running(
            env=env, queue=queue, var_dir=var_dir, django_db_blocker=django_db_blocker
        ) as worker:
            yield {"process": worker.process, "queue": queue,
                   "model_version": worker.model_version, "log": worker.log}
    finally:
        app.conf.task_default_queue = previous_queue


@pytest.fixture
def e2e(celery_worker_process, e2e_media_root, settings, transactional_db):
    """Per test: the shared media folder and committed rows, with the worker running."""
    settings.MEDIA_ROOT = e2e_media_root
    return celery_worker_process


@pytest.fixture(scope="session")
def _live_server_media_url():
    # Settings have MEDIA_URL = None (uploads are private, served only by an owner-checked view),
    # but Django's live server wraps the app in a media handler that parses MEDIA_URL and fails on
    # None with "startswith first arg must be str ... not bytes". A path nothing links to keeps
    # the handler working; the pages still load images through the owner-checked view.
    from django.test import override_settings

    with override_settings(MEDIA_URL="/__live-server-media-unused__/"):
        yield


@pytest.fixture(scope="session")
def live_server(_live_server_media_url, live_server):
    return live_server


@pytest.fixture
def browser(monkeypatch):
    """Real Chromium. Playwright's sync API runs an event loop in this thread; the ORM calls the
    tests make from here are still plain synchronous code."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def session_cookie(user, live_server) -> dict:
    """A signed-in session of `user` as a cookie for a browser context on the live server."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}


def csp_watched_page(context, *, timeout_ms: int = 20_000):
    """A new page of `context` whose `.blocked` lists what the Content-Security-Policy blocked."""
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.blocked = []
    page.on(
        "console",
        lambda m: page.blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page


def sign_in(page, base: str, user, password: str) -> None:
    """Sign in through the real form; it lands on the upload page."""
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", password)
    page.locator("main form [type=submit]").click()
    page.wait_for_url(f"{base}/upload/")
