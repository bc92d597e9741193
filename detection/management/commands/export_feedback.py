"""Write the images of verdicts reported as wrong into DIR/real and DIR/fake, for the ML tools."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from detection.services import EXPORT_MANIFEST, detection_feedback_export


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Write the images whose verdict their owners reported as wrong into DIR/real and "
        "DIR/fake, by what the owner said the image is (reports that say only 'unknown' are "
        "skipped and counted), with DIR/manifest.csv (id, truth, label, fake_probability, "
        "model_version, note, file, ...). The stored copies are written, metadata already "
        "removed. Safe to rerun: files already there are kept, and files an earlier run wrote "
        "that are no longer selected are removed. "
        "Evaluate a model on them from the repository root with: "
        "python -m ml evaluate --model ml/models/default --data DIR --split all "
        "(--split all: every image; the default, test, would take only a hash-chosen 15 percent). "
        "evaluate judges each whole image as its training data (face crops) were judged; for "
        "the verdict the site would give, with its face step: python -m ml predict --model "
        "ml/models/default DIR/fake/* DIR/real/*"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "out_dir", metavar="DIR", type=Path, help="the folder to write into (made if missing)"
        )
        parser.add_argument(
            "--model-version",
            default="",
            help="only reports about verdicts of this model version (as the admin counts them)",
        )
        parser.add_argument(
            "--since",
            type=_date,
            default=None,
            help="only reports made on or after this day (YYYY-MM-DD, the site's time zone)",
        )

    def handle(
        self, *args, out_dir: Path, model_version: str, since: dt.date | None, **options
    ):
        if out_dir.exists() and not out_dir.is_dir():
            raise CommandError(f"{out_dir} exists and is not a folder.")
        since_at = (
            timezone.make_aware(dt.datetime.combine(since, dt.time.min)) if since else None
        )
        try:
            result = detection_feedback_export(
                out_dir=out_dir, model_version=model_version, since=since_at
            )
        except OSError as exc:
            raise CommandError(f"Could not write into {out_dir}: {exc}") from exc
        exported = result.per_truth["real"] + result.per_truth["fake"]
        self.stdout.write(
            f"Exported {exported} image(s) into {out_dir}: {result.per_truth['real']} real, "
            f"{result.per_truth['fake']} fake ({result.written} written now, {result.kept} "
            f"already there)."
        )
        self.stdout.write(f"Manifest: {out_dir / EXPORT_MANIFEST}")
        if result.unknown:
            self.stdout.write(
                f"Skipped {result.unknown} report(s) that say only that the verdict is wrong, "
                "not what the image is."
            )
        if result.removed:
            self.stdout.write(
                f"Removed {result.removed} file(s) of an earlier export that are no longer "
                "selected (withdrawn or changed reports, deleted detections, other filters)."
            )
        if result.missing:
            self.stderr.write(
                f"Could not read the stored image of {result.missing} report(s); they are not "
                "in the export (see the log)."
            )
        if result.others:
            shown = ", ".join(result.others[:5]) + (" ..." if len(result.others) > 5 else "")
            self.stderr.write(
                f"{len(result.others)} other file(s) in the real/fake folders were not written "
                f"by this command and would be evaluated too: {shown}"
            )
        if not exported:
            self.stdout.write("Nothing to evaluate yet: no report says real or fake.")
