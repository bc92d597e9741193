"""Queue again detections whose message was lost (what the beat schedule runs every minute)."""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand

from detection.services import detection_sweep


class Command(BaseCommand):
    help = "Queue again pending detections older than --older-than seconds (and dead running ones)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=settings.DETECTION_STALE_AFTER)

    def handle(self, *args, older_than: int, **options):
        count = detection_sweep(older_than=dt.timedelta(seconds=older_than))
        self.stdout.write(f"Queued {count} detection(s) again.")
