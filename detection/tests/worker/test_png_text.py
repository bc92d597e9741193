"""A PNG with text past Pillow's bounds, accepted by the upload gate (which drops those chunks),
decodes in the worker: the worker reads the stored copy, re-encoded without text chunks."""

from __future__ import annotations

import pytest

from detection.tests import hostile
from detection.uploads import image_validate
from ml import preprocess

BIG = b"sampler settings, seed and prompt " * 40_000  # 1.36 MB inflated


def _files() -> dict[str, bytes]:
    zbig = hostile.png_text_chunk(b"zTXt", b"Comment", BIG)
    ibig = hostile.png_text_chunk(b"iTXt", b"workflow", BIG)
    small = hostile.png_text_chunk(b"iTXt", b"Software", b"GIMP 2.10")
    plain = hostile.png_chunk(b"tEXt", b"Title\x00a cat")
    many = b"".join(hostile.png_text_chunk(b"zTXt", b"t%d" % i, b"y" * 900) for i in range(8))
    return {
        "zTXt-before": hostile.png_with_chunks(before=zbig),
        "iTXt-after": hostile.png_with_chunks(after=ibig + plain),
        "mixed": hostile.png_with_chunks(before=small + zbig + plain, after=ibig + small),
        "many": hostile.png_with_chunks(before=many, after=zbig),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["zTXt-before", "iTXt-after", "mixed", "many"])
def test_a_png_the_gate_accepts_decodes_in_the_engine(name):
    data = _files()[name]
    clean = image_validate(upload=hostile.upload(data, "render.png", "image/png"))
    # The worker decodes the stored copy, which keeps no text chunk at all.
    assert not any(kind in clean.content for kind in (b"tEXt", b"zTXt", b"iTXt"))
    decoded = preprocess.load_image(clean.content, max_pixels=1_000_000)
    assert decoded.size == (clean.width, clean.height)
