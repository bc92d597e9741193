"""One entry for every upload: images to ``image_validate``, videos to ``video_validate``,
chosen by content (``sniff.upload_kind``), never by the file name alone."""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile

from detection.uploads.sniff import HEAD_BYTES, upload_kind
from detection.uploads.validate import CleanImage, image_validate
from detection.uploads.video import CleanVideo, video_validate


def upload_validate(*, upload: UploadedFile) -> CleanImage | CleanVideo:
    """The checked, metadata-free copy of one upload; ValidationError (for people) if refused."""
    kind = upload_kind(
        head=_head(upload),
        name=upload.name or "",
        content_type=getattr(upload, "content_type", "") or "",
    )
    if kind == "video":
        return video_validate(upload=upload)
    return image_validate(upload=upload)


def _head(upload: UploadedFile) -> bytes:
    try:
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        pass
    head = upload.read(HEAD_BYTES) or b""
    try:
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        pass
    return head
