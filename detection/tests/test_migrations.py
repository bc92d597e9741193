"""The data steps of detection's migrations, run for real: migrate back, write rows as the old
schema had them, migrate forward (and back), look at what became of them."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE_FACES = [("detection", "0002_detection_message_id")]
FACES = [("detection", "0003_detection_faces")]

faces_migration = importlib.import_module("detection.migrations.0003_detection_faces")

# Migrations change the schema outside a test transaction's rollback: these tests flush instead.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def migrate():
    """migrate(targets) -> the apps of that state; afterwards every app is back at its latest."""
    executor = MigrationExecutor(connection)

    def _migrate(targets):
        executor.loader.build_graph()  # the graph reflects what has been applied so far
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield _migrate
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_row(apps, owner, **fields):
    now = timezone.now()
    values = {
        "owner": owner,
        "image": "uploads/2026/01/old.jpg",
        "sha256": "0" * 64,
        "width": 64,
        "height": 48,
        "format": "JPEG",
        "byte_size": 100,
        "created_at": now,
        **fields,
    }
    return apps.get_model("detection", "Detection").objects.create(**values)


def _verdict(label: str, probability: float, face_box) -> dict:
    return {
        "status": "done",
        "label": label,
        "fake_probability": probability,
        "threshold": 0.5,
        "uncertain_low": 0.4,
        "uncertain_high": 0.6,
        "face_box": face_box,
        "finished_at": timezone.now(),
    }


def test_each_old_verdict_becomes_face_1_which_decided(migrate):
    old = migrate(BEFORE_FACES)
    owner = old.get_model("accounts", "User").objects.create(username="old-user")
    with_box = _old_row(old, owner, **_verdict("fake", 0.87, [4, 3, 20, 24]))
    # The old model judged the whole image when it found no face: no box to show.
    whole_image = _old_row(old, owner, **_verdict("real", 0.12, None))
    pending = _old_row(old, owner)
    failed = _old_row(old, owner, status="failed", error="The image could not be decoded.")

    new = migrate(FACES)
    Detection = new.get_model("detection", "Detection")
    faces = new.get_model("detection", "DetectionFace").objects
    assert list(
        faces.filter(detection_id=with_box.id).values_list(
            "index", "box", "fake_probability", "label", "detector_confidence"
        )
    ) == [(1, [4, 3, 20, 24], 0.87, "fake", None)]
    assert list(
        faces.filter(detection_id=whole_image.id).values_list("index", "box", "label")
    ) == [(1, None, "real")]
    assert not faces.filter(detection_id__in=[pending.id, failed.id]).exists()
    decided = dict(Detection.objects.values_list("id", "deciding_face"))
    assert decided == {with_box.id: 1, whole_image.id: 1, pending.id: None, failed.id: None}
    # The verdict itself is untouched.
    row = Detection.objects.get(id=with_box.id)
    assert (row.label, row.fake_probability, row.face_box) == ("fake", 0.87, [4, 3, 20, 24])


def test_reversed_no_face_verdicts_become_failed_with_the_reason(migrate):
    new = migrate(FACES)
    owner = new.get_model("accounts", "User").objects.create(username="new-user")
    kept = _old_row(new, owner, deciding_face=1, **_verdict("real", 0.2, [1, 2, 3, 4]))
    new.get_model("detection", "DetectionFace").objects.create(
        detection=kept, index=1, box=[1, 2, 3, 4], fake_probability=0.2, label="real"
    )
    no_face = _old_row(
        new,
        owner,
        status="done",
        label="no_face",
        threshold=0.5,
        uncertain_low=0.4,
        uncertain_high=0.6,
        finished_at=timezone.now(),
    )

    old = migrate(BEFORE_FACES)  # would raise on the old check constraint if no_face stayed done
    Detection = old.get_model("detection", "Detection")
    row = Detection.objects.get(id=no_face.id)
    assert (row.status, row.label, row.fake_probability) == ("failed", "", None)
    assert row.error == faces_migration.NO_FACE_ROLLED_BACK
    row = Detection.objects.get(id=kept.id)
    assert (row.status, row.label, row.fake_probability) == ("done", "real", 0.2)


BEFORE_PRIVATE = [("detection", "0007_detection_progress_points")]
PRIVATE = [("detection", "0008_private_check")]


def test_private_check_migration_leaves_existing_rows_as_they_were(migrate):
    old = migrate(BEFORE_PRIVATE)
    owner = old.get_model("accounts", "User").objects.create(username="before-private")
    row = _old_row(old, owner, **_verdict("fake", 0.9, [1, 2, 30, 30]))
    before = old.get_model("detection", "Detection").objects.filter(id=row.id).values().get()

    new = migrate(PRIVATE)
    after = new.get_model("detection", "Detection").objects.filter(id=row.id).values().get()
    assert after == before
    assert after["kind"] == "image" and after["image"] == "uploads/2026/01/old.jpg"

    # And back: the constraint goes, the rows stay.
    back = migrate(BEFORE_PRIVATE)
    assert back.get_model("detection", "Detection").objects.filter(id=row.id).values().get() == (
        before
    )
