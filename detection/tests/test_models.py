"""The invariants the tables keep themselves (check and unique constraints)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from detection.models import Detection, DetectionFace
from detection.tests.factories import DetectionFaceFactory, DetectionFactory

pytestmark = pytest.mark.django_db

_BAND = {"uncertain_low": 0.4, "uncertain_high": 0.6}


def _done(detection: Detection, **fields) -> None:
    Detection.objects.filter(id=detection.id).update(status=Detection.Status.DONE, **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"label": "fake", **_BAND},  # a face verdict without its probability
        {"label": "no_face", "fake_probability": 0.3, **_BAND},  # no face, yet a probability
        {"label": "", "fake_probability": 0.3, **_BAND},  # no verdict
        {"label": "no_face"},  # no band
    ],
)
def test_a_done_row_has_a_consistent_verdict(fields):
    detection = DetectionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        _done(detection, **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"label": "real", "fake_probability": 0.1, **_BAND},
        {"label": "no_face", "fake_probability": None, **_BAND},
    ],
)
def test_face_and_no_face_verdicts_are_accepted(fields):
    detection = DetectionFactory()
    _done(detection, **fields)
    assert Detection.objects.get(id=detection.id).status == Detection.Status.DONE


def test_faces_are_numbered_once_from_1_and_listed_in_order():
    detection = DetectionFactory(done=True, faces=[])
    DetectionFaceFactory(detection=detection, index=2)
    DetectionFaceFactory(detection=detection, index=1)
    assert [f.index for f in detection.faces.all()] == [1, 2]
    for index in (2, 0):
        with pytest.raises(IntegrityError), transaction.atomic():
            DetectionFaceFactory(detection=detection, index=index)


@pytest.mark.parametrize("probability", [-0.01, 1.01])
def test_a_face_probability_is_between_0_and_1(probability):
    with pytest.raises(IntegrityError), transaction.atomic():
        DetectionFaceFactory(detection=DetectionFactory(), index=1, fake_probability=probability)


def test_faces_go_with_their_detection():
    detection = DetectionFactory(done=True)
    assert DetectionFace.objects.filter(detection=detection).count() == 1
    detection.delete()
    assert not DetectionFace.objects.exists()


def test_face_box_in_percent_of_the_image():
    detection = DetectionFactory(done=True, face_box=[16, 12, 32, 24], deciding_face=1)
    [face] = detection.faces.all()
    assert face.box_percent == {"left": 25.0, "top": 25.0, "width": 50.0, "height": 50.0}
    assert face.is_deciding
    face.box = None  # a migrated verdict of the old whole-image model
    assert face.box_percent is None
