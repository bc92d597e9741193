"""Stored images follow their rows: a deleted Detection (directly, by purge, or by the cascade
from a deleted user) removes its file once the deletion is committed."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from detection.models import Detection


@receiver(post_delete, sender=Detection, dispatch_uid="detection_file_delete")
def _detection_file_delete(sender: type[Detection], instance: Detection, **kwargs: object) -> None:
    from detection.services import detection_file_delete

    name = instance.image.name
    if name:
        # After commit: a rolled-back delete must keep its file.
        transaction.on_commit(lambda: detection_file_delete(name=name), robust=True)
