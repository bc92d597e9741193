"""The refusals of a video, worded for people, each with one of the codes the API reports:
"empty", "too_large", "not_a_video", "unsupported_format", "truncated", "no_video",
"too_long", "too_many_pixels", "too_many_frames", "bad_frame_rate"."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from detection.uploads.sniff import VIDEO_ACCEPTED_FOR_PEOPLE

# Video codecs as people know them, for the refusal of any other.
CODECS_FOR_PEOPLE = "H.264, H.265 (HEVC), VP8, VP9 or AV1"


def seconds_text(seconds: float) -> str:
    """125.4 -> "2 min 5 s"; 9.5 -> "9.5 s"."""
    if seconds < 60:
        return f"{round(seconds, 1):g} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def too_large(size: int, limit: int) -> ValidationError:
    return ValidationError(
        _("The video is too large (%(size)s); the limit for a video is %(limit)s."),
        code="too_large",
        params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
    )


def not_a_video() -> ValidationError:
    return ValidationError(
        _("This file is not a video we can read. Upload an %(formats)s video."),
        code="not_a_video",
        params={"formats": VIDEO_ACCEPTED_FOR_PEOPLE},
    )


def unsupported(kind: str) -> ValidationError:
    return ValidationError(
        _("%(kind)s files are not supported. Upload an %(formats)s video."),
        code="unsupported_format",
        params={"kind": kind, "formats": VIDEO_ACCEPTED_FOR_PEOPLE},
    )


def unsupported_codec(codec: str) -> ValidationError:
    return ValidationError(
        _(
            "This video is encoded as %(codec)s, which we do not support. Upload a video "
            "encoded as %(codecs)s (phones and video editors export H.264 MP4 by default)."
        ),
        code="unsupported_format",
        params={"codec": codec, "codecs": CODECS_FOR_PEOPLE},
    )


def truncated() -> ValidationError:
    return ValidationError(
        _(
            "The video file is incomplete or damaged and cannot be read. "
            "Try downloading or exporting it again."
        ),
        code="truncated",
    )


def no_video_track() -> ValidationError:
    return ValidationError(
        _("This file has no video in it (it may hold only sound). Upload a video."),
        code="no_video",
    )


def no_frames() -> ValidationError:
    return ValidationError(
        _("The video is empty: it has no frames."),
        code="no_video",
    )


def too_long(seconds: float, limit: float, *, at_least: bool = False) -> ValidationError:
    message = (
        _("The video is too long (at least %(duration)s); the limit is %(limit)s.")
        if at_least
        else _("The video is too long (%(duration)s); the limit is %(limit)s.")
    )
    return ValidationError(
        message + " " + _("Trim it to the part you want checked and upload that."),
        code="too_long",
        params={"duration": seconds_text(seconds), "limit": seconds_text(limit)},
    )


def too_many_pixels(width: int, height: int, limit: int) -> ValidationError:
    return ValidationError(
        _(
            "The video's frames are too large (%(width)s × %(height)s); the limit is "
            "%(limit)s megapixels a frame. Export it at a lower resolution."
        ),
        code="too_many_pixels",
        params={"width": f"{width:,}", "height": f"{height:,}", "limit": f"{limit / 1e6:.1f}"},
    )


def no_frame_size() -> ValidationError:
    return ValidationError(
        _("The video's frames have no size (0 pixels); the file is damaged."),
        code="truncated",
    )


def too_many_frames(count: int, limit: int, *, at_least: bool = False) -> ValidationError:
    message = (
        _("The video has too many frames (more than %(count)s); the limit is %(limit)s.")
        if at_least
        else _("The video has too many frames (%(count)s); the limit is %(limit)s.")
    )
    return ValidationError(
        message + " " + _("Trim it, or export it at a lower frame rate."),
        code="too_many_frames",
        params={"count": f"{count:,}", "limit": f"{limit:,}"},
    )


def bad_frame_rate(rate: float | None, limit: float) -> ValidationError:
    if rate is not None and math.isinf(rate):
        message = _(
            "The video's frames all have the same time, which no real video has; the file "
            "is damaged."
        )
        params: dict[str, str] = {}
    elif rate is None or rate <= 0:
        message = _(
            "The video's frame rate is missing or zero, which no real video has; the file "
            "is damaged."
        )
        params = {}
    else:
        message = _(
            "The video's frame rate (%(rate)s frames a second) is above the limit of %(limit)s; "
            "the file is damaged, or export it at a lower frame rate."
        )
        params = {"rate": f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}", "limit": f"{limit:g}"}
    return ValidationError(message, code="bad_frame_rate", params=params)


def too_complex(tracks: int, limit: int) -> ValidationError:
    return ValidationError(
        _(
            "The video has %(tracks)s tracks; at most %(limit)s are accepted. Export it again "
            "with its video and sound only."
        ),
        code="unsupported_format",
        params={"tracks": tracks, "limit": limit},
    )
