"""The gate every upload passes before it is stored (web side only).

One module per job: ``validate`` (the flow), ``containers`` (byte-level reading of the file
formats), ``reencode`` (pixels to a fresh file), ``messages`` (refusals for people), ``filenames``
(names fit for display), ``streaming`` (refusals while the body streams in), ``formats``;
``provenance`` (what the metadata says about the file, read before it is dropped), with
``metadata_readers`` (EXIF, PNG text, XMP, C2PA) and ``generators`` (the names it recognises).
Videos: ``gate`` (images or videos, by content: ``sniff``), ``video`` (the flow and the
metadata-free copy), ``video_containers`` (what MP4/MOV/WebM headers declare), ``video_messages``.
"""

from detection.uploads.filenames import filename_sanitize
from detection.uploads.formats import ACCEPT_ATTR, ALLOWED_FORMATS
from detection.uploads.gate import upload_validate
from detection.uploads.sniff import VIDEO_ACCEPT_ATTR, VIDEO_FORMATS
from detection.uploads.streaming import upload_refusal_get
from detection.uploads.validate import CleanImage, image_validate
from detection.uploads.video import CleanVideo, video_validate

__all__ = [
    "ACCEPT_ATTR",
    "ALLOWED_FORMATS",
    "VIDEO_ACCEPT_ATTR",
    "VIDEO_FORMATS",
    "CleanImage",
    "CleanVideo",
    "filename_sanitize",
    "image_validate",
    "upload_refusal_get",
    "upload_validate",
    "video_validate",
]
