from __future__ import annotations

import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from detection.models import Detection, DetectionBatch, DetectionFace, WorkerHeartbeat
from detection.tests.helpers import image_bytes


class DetectionBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DetectionBatch

    owner = factory.SubFactory(UserFactory)


_FINISHED = {
    "status": Detection.Status.DONE,
    "model_name": "fake-model",
    "model_version": "fake-model-20260101-abcdef123456",
    "threshold": 0.5,
    "uncertain_low": 0.4,
    "uncertain_high": 0.6,
    "attempts": 1,
    "inference_ms": 15.0,
    "started_at": factory.LazyFunction(timezone.now),
    "finished_at": factory.LazyFunction(timezone.now),
}


class DetectionFaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DetectionFace

    index = factory.Sequence(lambda n: n + 1)
    box = factory.LazyFunction(lambda: [4, 3, 20, 24])
    fake_probability = 0.87
    label = DetectionFace.Label.FAKE
    detector_confidence = 0.98


class DetectionFactory(factory.django.DjangoModelFactory):
    """A pending detection with a real stored JPEG. `done=True` has a verdict made on one face
    (face 1, at face_box, which decided); `no_face=True` is done without a face found.
    `faces=[{...}, ...]` gives a done row those faces instead (DetectionFace fields, numbered
    1.. unless an index is given); `faces=[]` none."""

    class Meta:
        model = Detection
        skip_postgeneration_save = True  # the faces hook writes faces, not the detection

    class Params:
        done = factory.Trait(
            label=Detection.Label.FAKE,
            fake_probability=0.87,
            face_box=[4, 3, 20, 24],
            deciding_face=1,
            **_FINISHED,
        )
        no_face = factory.Trait(
            label=Detection.Label.NO_FACE,
            fake_probability=None,
            face_box=None,
            deciding_face=None,
            **_FINISHED,
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

    @factory.post_generation
    def faces(obj: Detection, create: bool, extracted: list[dict] | None, **kwargs) -> None:
        if not create:
            return
        if extracted is None:
            if obj.status != Detection.Status.DONE or obj.fake_probability is None:
                return
            # The verdict's own face, as the worker stores a one-face verdict.
            extracted = [
                {"box": obj.face_box, "fake_probability": obj.fake_probability, "label": obj.label}
            ]
        for number, face in enumerate(extracted, start=1):
            DetectionFaceFactory(detection=obj, **{"index": number, **face})


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


# Three faces on the factory's 64 x 48 image, largest first; face 2 is the most likely fake.
THREE_FACES = [
    {"box": [0, 0, 32, 24], "fake_probability": 0.2, "label": "real", "detector_confidence": 0.99},
    {"box": [32, 24, 16, 12], "fake_probability": 0.83, "label": "fake"},
    {"box": [48, 0, 8, 8], "fake_probability": 0.5, "label": "uncertain"},
]


def detection_with_three_faces(**fields):
    """A done detection with THREE_FACES, decided by face 2."""
    return DetectionFactory(
        done=True,
        fake_probability=0.83,
        face_box=[32, 24, 16, 12],
        deciding_face=2,
        faces=THREE_FACES,
        **fields,
    )
