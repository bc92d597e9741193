"""The client's file name, made safe to show. It is never used as a storage path."""

from __future__ import annotations

import re
import unicodedata

_MAX_NAME_CHARS = 100
_FALLBACK_NAME = "image"
# Never shown: controls (NUL, newlines, escapes), line/paragraph separators, lone surrogates, and
# bidirectional overrides, which make "photo\u202egpj.exe" display as "photoexe.jpg".
_DROPPED_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_DROPPED_CHARS = set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
_PATH_SEPARATORS = re.compile(r"[/\\]")
_EXTENSION = re.compile(r"\.[^.\s]{1,10}\Z")


def filename_sanitize(name: str | None) -> str:
    """The client's file name, fit for display only (never a storage path)."""
    if not name:
        return _FALLBACK_NAME
    kept = "".join(
        ch
        for ch in str(name)
        if unicodedata.category(ch) not in _DROPPED_CATEGORIES and ch not in _DROPPED_CHARS
    )
    # Basename for both POSIX and Windows paths: "../../etc/passwd", "C:\\x\\y.png".
    base = unicodedata.normalize("NFC", _PATH_SEPARATORS.split(kept)[-1]).strip()
    if not base.strip("."):
        return _FALLBACK_NAME  # "", ".", ".."
    if len(base) > _MAX_NAME_CHARS:
        match = _EXTENSION.search(base)
        ext = match.group() if match and match.start() > 0 else ""
        base = base[: _MAX_NAME_CHARS - len(ext)].rstrip() + ext
    return base
