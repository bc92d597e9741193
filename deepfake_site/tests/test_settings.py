import json
import os
import subprocess
import sys

from django.conf import settings

from deepfake_site.celery import app, broker_transport_options


def test_celery_time_limits_are_ordered():
    # A task still running when the visibility timeout expires would be delivered twice.
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_TASK_TIME_LIMIT < settings.CELERY_BROKER_VISIBILITY_TIMEOUT
    assert app.conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT

    options = broker_transport_options("redis://127.0.0.1:6379/0")
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


def _default_storage_from_env(tmp_path, **variables: str) -> dict:
    """settings.STORAGES["default"] as a fresh process builds it from these variables, with the
    storage it makes: its class and the options it really took (built only, nothing is sent)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DETECTION_S3_") and k != "DJANGO_FILE_STORAGE"
    }
    env.update(DJANGO_SETTINGS_MODULE="deepfake_site.settings", DJANGO_VAR_DIR=str(tmp_path))
    env.update(variables)
    code = """if True:
        import json
        import django
        django.setup()
        from django.conf import settings
        from django.core.files.storage import storages
        storage = storages["default"]
        taken = {
            name: getattr(storage, name, None)
            for name in ("bucket_name", "endpoint_url", "region_name", "access_key",
                         "secret_key", "location", "file_overwrite")
        }
        config = getattr(storage, "client_config", None)
        taken["addressing_style"] = config.s3["addressing_style"] if config else None
        print(json.dumps({"setting": settings.STORAGES["default"],
                          "class": type(storage).__module__ + "." + type(storage).__name__,
                          "taken": taken}))
    """
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_uploads_stay_in_media_root_without_a_bucket(tmp_path):
    built = _default_storage_from_env(tmp_path)
    assert built["setting"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert built["class"] == "django.core.files.storage.filesystem.FileSystemStorage"


def test_a_bucket_switches_uploads_to_s3_built_from_the_environment(tmp_path):
    built = _default_storage_from_env(
        tmp_path,
        DETECTION_S3_BUCKET="detector-uploads",
        DETECTION_S3_ENDPOINT_URL="http://minio.internal:9000",
        DETECTION_S3_REGION="eu-central-1",
        DETECTION_S3_ACCESS_KEY_ID="detector",
        DETECTION_S3_SECRET_ACCESS_KEY="not-a-real-secret",
        DETECTION_S3_ADDRESSING_STYLE="path",
        DETECTION_S3_PREFIX="production",
        # The bucket wins over a storage class named as well.
        DJANGO_FILE_STORAGE="django.core.files.storage.FileSystemStorage",
    )
    assert built["setting"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "detector-uploads",
            "file_overwrite": True,
            "endpoint_url": "http://minio.internal:9000",
            "region_name": "eu-central-1",
            "access_key": "detector",
            "secret_key": "not-a-real-secret",
            "addressing_style": "path",
            "location": "production",
        },
    }
    # django-storages took every option as given (an unknown name would have raised).
    assert built["class"] == "storages.backends.s3.S3Storage"
    assert built["taken"] == {
        "bucket_name": "detector-uploads",
        "endpoint_url": "http://minio.internal:9000",
        "region_name": "eu-central-1",
        "access_key": "detector",
        "secret_key": "not-a-real-secret",
        "location": "production",
        "file_overwrite": True,
        "addressing_style": "path",
    }


def test_empty_s3_variables_are_left_to_boto3(tmp_path):
    # Only the bucket: credentials, region and endpoint come from boto3's own lookup (AWS_*
    # variables, ~/.aws, an instance role), never from empty strings that would override it.
    built = _default_storage_from_env(
        tmp_path, DETECTION_S3_BUCKET="detector-uploads", DETECTION_S3_REGION=""
    )
    assert built["setting"]["OPTIONS"] == {"bucket_name": "detector-uploads",
                                           "file_overwrite": True}


def test_postgresql_connections_run_without_jit(tmp_path):
    # PostgreSQL's JIT compiled the CSV export's query for about 130 ms before its first row.
    env = {**os.environ, "DJANGO_VAR_DIR": str(tmp_path),
           "DATABASE_URL": "postgres://someone@db.example.com:5432/detector"}
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out)["options"] == "-c jit=off"
