"""Uploads in an S3-compatible store (DETECTION_S3_BUCKET, docs/scaling.md): every write and read
of a stored image goes through the configured storage, never a local path, so workers on other
hosts see what the web stored. moto plays S3 inside this process: nothing leaves the machine.
(deepfake_site/tests/test_settings.py shows the settings are built from the environment.)"""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from django.urls import reverse
from django.utils import timezone
from moto import mock_aws

from detection import services
from detection.models import Detection
from detection.tests.helpers import jpeg_with_exif, upload
from detection.worker import services as worker_services

pytestmark = pytest.mark.django_db

BUCKET = "detector-uploads"
REGION = "eu-central-1"
PREFIX = "deployment-a"
# What deepfake_site/settings.py builds from DETECTION_S3_BUCKET, _REGION, _ACCESS_KEY_ID,
# _SECRET_ACCESS_KEY and _PREFIX.
S3_STORAGE = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "bucket_name": BUCKET,
        "file_overwrite": True,
        "region_name": REGION,
        "access_key": "moto-key-id",
        "secret_key": "moto-secret",
        "location": PREFIX,
    },
}


@pytest.fixture
def bucket(settings, monkeypatch):
    """An empty private bucket in moto, and the default storage pointed at it."""
    # Nothing of the developer's AWS set-up may reach boto3 (a profile, an endpoint).
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client(
            "s3", region_name=REGION, aws_access_key_id="moto-key-id",
            aws_secret_access_key="moto-secret",
        )
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        # Django's setting_changed handler drops the cached default_storage.
        settings.STORAGES = {**settings.STORAGES, "default": S3_STORAGE}
        yield client


def _keys(client) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def _object(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _local_files(settings) -> list:
    return [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


def test_an_upload_lives_in_the_bucket_through_run_serving_and_delete(
    bucket, user, client, enqueued, fake_engine, settings, django_capture_on_commit_callbacks
):
    # Stored by the web: re-encoded (no EXIF) into the bucket, under the prefix.
    with django_capture_on_commit_callbacks(execute=True):
        [detection] = services.detection_create_many(
            user=user, uploads=[upload("My Face.jpg", jpeg_with_exif())]
        )
    assert enqueued == [detection.id]
    key = f"{PREFIX}/{detection.image.name}"
    assert _keys(bucket) == {key}
    stored = _object(bucket, key)
    assert b"TestCam" not in stored and len(stored) == detection.byte_size

    # Read by the worker from the bucket.
    worker_services.detection_run(detection_id=detection.id, claim_token="t1")
    assert fake_engine.inputs == [stored]
    assert Detection.objects.get(id=detection.id).status == Detection.Status.DONE

    # Served to its owner from the bucket.
    client.force_login(user)
    response = client.get(reverse("detection:image", args=[detection.id]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == stored

    # Deleted with its row.
    with django_capture_on_commit_callbacks(execute=True):
        services.detection_delete(user=user, detection_id=detection.id)
    assert _keys(bucket) == set()
    # Nothing ever touched the local media folder.
    assert _local_files(settings) == []


def test_orphan_clean_up_lists_and_dates_objects_in_the_bucket(bucket, user, enqueued, settings):
    [kept] = services.detection_create_many(user=user, uploads=[upload()])
    orphan = f"{PREFIX}/uploads/2020/01/0123456789abcdef.jpg"
    bucket.put_object(Bucket=BUCKET, Key=orphan, Body=b"left by a rolled-back upload")
    outside = "another-deployment/uploads/2020/01/theirs.jpg"
    bucket.put_object(Bucket=BUCKET, Key=outside, Body=b"not ours")

    # Within the grace period (LastModified is now), nothing goes.
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1)) == 0
    later = timezone.now() + dt.timedelta(hours=2)
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1), now=later) == 1
    assert _keys(bucket) == {f"{PREFIX}/{kept.image.name}", outside}
    assert _local_files(settings) == []


def test_orphan_clean_up_skips_an_object_gone_meanwhile(bucket, monkeypatch):
    # Listed, then deleted by someone else before its date is read: S3 answers 404 with
    # botocore's ClientError, not an OSError; the pass goes on.
    from botocore.exceptions import ClientError
    from django.core.files.storage import default_storage

    name = "uploads/2020/01/gone.jpg"
    monkeypatch.setattr(
        services, "_stored_upload_batches", lambda *, root: iter([[name]])
    )
    with pytest.raises(ClientError):
        default_storage.get_modified_time(name)
    assert not issubclass(ClientError, OSError)
    later = timezone.now() + dt.timedelta(hours=2)
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1), now=later) == 0
