import os
import subprocess
import sys
from types import SimpleNamespace

from django.conf import settings

from deepfake_site.celery import _transport_options, app


def test_celery_time_limits_are_ordered():
    # A task still running when the visibility timeout expires would be delivered twice.
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_TASK_TIME_LIMIT < settings.CELERY_BROKER_VISIBILITY_TIMEOUT
    assert app.conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT

    redis_settings = SimpleNamespace(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        CELERY_BROKER_VISIBILITY_TIMEOUT=settings.CELERY_BROKER_VISIBILITY_TIMEOUT,
        REDIS_SOCKET_TIMEOUT=settings.REDIS_SOCKET_TIMEOUT,
    )
    options = _transport_options(redis_settings)
    assert options["visibility_timeout"] == settings.CELERY_BROKER_VISIBILITY_TIMEOUT
    # Connecting must give up quickly, so an upload never waits long for a dead broker.
    assert options["socket_connect_timeout"] <= 5
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert app.conf.broker_transport_options == options


def test_celery_publish_gives_up_fast_but_the_worker_waits_for_the_broker():
    # An upload's publish: a short connect timeout, one retry (tests/faults shows it with a
    # killed Redis), then the row waits for the sweeper.
    assert app.conf.broker_connection_timeout <= 5
    assert app.conf.task_publish_retry is False
    assert app.conf.broker_transport_options["max_retries"] == 1
    # The worker's consumer and beat reconnect for as long as it takes: with a limit, a Redis
    # restart shut the worker down for good.
    assert app.conf.broker_connection_max_retries is None


def test_celery_takes_one_message_at_a_time_and_speaks_json():
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True


def test_embedded_broker_without_redis(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"}
    }
    env["DJANGO_VAR_DIR"] = str(tmp_path)
    code = "from deepfake_site.celery import app; print(app.conf.broker_url)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"sqla+sqlite:///{tmp_path / 'celery-broker.sqlite3'}"
