"""Delete detections (rows and files) past DETECTION_RETENTION_DAYS, as the beat schedule does."""

from django.core.management.base import BaseCommand

from detection.services import detection_purge_expired


class Command(BaseCommand):
    help = "Delete detections and their images older than DETECTION_RETENTION_DAYS (0: never)."

    def handle(self, *args, **options):
        count = detection_purge_expired()
        self.stdout.write(f"Deleted {count} expired detection(s).")
