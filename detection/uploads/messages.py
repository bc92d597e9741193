"""The refusals, worded for people. Each carries one of the agreed codes the API reports."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from detection.uploads.containers import allowed_signature, sniff_other_format
from detection.uploads.formats import ACCEPTED_FOR_PEOPLE, MAX_JPEG_SCANS


def empty() -> ValidationError:
    return ValidationError(_("The file is empty."), code="empty")


def too_large(size: int, limit: int) -> ValidationError:
    return ValidationError(
        _("The file is too large (%(size)s); the limit is %(limit)s."),
        code="too_large",
        params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
    )


def not_an_image() -> ValidationError:
    return ValidationError(
        _("This file is not an image we can read. Upload a %(formats)s image."),
        code="not_an_image",
        params={"formats": ACCEPTED_FOR_PEOPLE},
    )


def unsupported(kind: str) -> ValidationError:
    return ValidationError(
        _("%(kind)s files are not supported. Upload a %(formats)s image."),
        code="unsupported_format",
        params={"kind": kind, "formats": ACCEPTED_FOR_PEOPLE},
    )


def truncated() -> ValidationError:
    return ValidationError(
        _(
            "The image file is incomplete or damaged and cannot be read. "
            "Try saving or exporting it again."
        ),
        code="truncated",
    )


def too_many_scans() -> ValidationError:
    # One of the agreed codes: like libjpeg-turbo, we treat an absurd scan count as a broken file.
    return ValidationError(
        _(
            "This JPEG is built from an unusually large number of scans (more than %(limit)s), "
            "which makes it too slow to decode. Save it again from any image editor and upload "
            "the new file."
        ),
        code="truncated",
        params={"limit": MAX_JPEG_SCANS},
    )


def too_many_pixels(width: int | None, height: int | None, limit: int) -> ValidationError:
    params = {"limit": f"{limit / 1_000_000:g}"}
    if width is None or height is None:
        message = _("The image has too many pixels; the limit is %(limit)s megapixels.")
    else:
        message = _(
            "The image has too many pixels (%(width)s × %(height)s); "
            "the limit is %(limit)s megapixels."
        )
        params |= {"width": f"{width:,}", "height": f"{height:,}"}
    return ValidationError(message, code="too_many_pixels", params=params)


def unidentified(data: bytes) -> ValidationError:
    """Pillow (restricted to the allowed formats) could not open it: say what it is, if we can."""
    if allowed_signature(data):
        # Starts like a JPEG/PNG/WebP but its header cannot be parsed: cut short or damaged.
        return truncated()
    kind = sniff_other_format(data)
    if kind:
        return unsupported(kind)
    return not_an_image()


def request_too_large(
    *, limit: int, max_files: int, max_bytes: int, max_video_bytes: int
) -> ValidationError:
    return ValidationError(
        _(
            "The upload is too large in all; the limit is %(limit)s per request "
            "(up to %(max_files)d files: images of at most %(max_bytes)s, videos of at most "
            "%(max_video_bytes)s)."
        ),
        code="too_large",
        params={
            "limit": filesizeformat(limit),
            "max_files": max_files,
            "max_bytes": filesizeformat(max_bytes),
            "max_video_bytes": filesizeformat(max_video_bytes),
        },
    )


def file_too_large_while_streaming(limit: int) -> ValidationError:
    return ValidationError(
        _("The file is too large; the limit is %(limit)s."),
        code="too_large",
        params={"limit": filesizeformat(limit)},
    )


def naming_file(*, file: str, error: ValidationError) -> list[ValidationError]:
    """One error per message of `error`, each saying which file it is about.

    The file name and the bare reason stay in ``params`` ("file", "reason"), so the API can report
    them as separate fields.
    """
    return [
        ValidationError(
            "%(file)s: %(reason)s",
            code=getattr(error, "code", None) or "invalid",
            params={"file": file, "reason": message},
        )
        for message in error.messages
    ]
