from __future__ import annotations

import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from detection.models import Detection, DetectionBatch, WorkerHeartbeat
from detection.tests.helpers import image_bytes


class DetectionBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DetectionBatch

    owner = factory.SubFactory(UserFactory)


class DetectionFactory(factory.django.DjangoModelFactory):
    """A pending detection with a real stored JPEG; `DetectionFactory(done=True)` has a verdict."""

    class Meta:
        model = Detection

    class Params:
        done = factory.Trait(
            status=Detection.Status.DONE,
            label=Detection.Label.FAKE,
            fake_probability=0.87,
            model_name="fake-model",
            model_version="fake-model-20260101-abcdef123456",
            threshold=0.5,
            uncertain_low=0.4,
            uncertain_high=0.6,
            face_box=[4, 3, 20, 24],
            attempts=1,
            inference_ms=15.0,
            started_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )

    owner = factory.SubFactory(UserFactory)
    image = factory.django.FileField(filename="upload.jpg", data=image_bytes())
    original_name = factory.Sequence(lambda n: f"photo-{n}.jpg")
    sha256 = "0" * 64
    width = 64
    height = 48
    format = "JPEG"
    byte_size = factory.LazyAttribute(lambda o: o.image.size if o.image else 0)
    status = Detection.Status.PENDING
    queued_at = factory.LazyFunction(timezone.now)


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory):
    """A worker that beat just now with a loaded model; `last_seen` sets how long ago."""

    class Meta:
        model = WorkerHeartbeat

    hostname = "worker-1"
    pid = 4242
    model_name = "residual-cnn"
    model_version = "1.0"
    last_seen = factory.LazyFunction(timezone.now)
    started_at = factory.LazyAttribute(lambda o: o.last_seen)
