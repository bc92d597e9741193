"""The gate every upload passes before it is stored (web side only).

One module per job: ``validate`` (the flow), ``containers`` (byte-level reading of the file
formats), ``reencode`` (pixels to a fresh file), ``messages`` (refusals for people), ``filenames``
(names fit for display), ``streaming`` (refusals while the body streams in), ``formats``;
``provenance`` (what the metadata says about the file, read before it is dropped), with
``metadata_readers`` (EXIF, PNG text, XMP, C2PA) and ``generators`` (the names it recognises).
"""

from detection.uploads.filenames import filename_sanitize
from detection.uploads.formats import ACCEPT_ATTR, ALLOWED_FORMATS
from detection.uploads.streaming import upload_refusal_get
from detection.uploads.validate import CleanImage, image_validate

__all__ = [
    "ACCEPT_ATTR",
    "ALLOWED_FORMATS",
    "CleanImage",
    "filename_sanitize",
    "image_validate",
    "upload_refusal_get",
]
