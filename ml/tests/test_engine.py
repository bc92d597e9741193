"""The inference engine on the shipped default model."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from ml import DEFAULT_MODEL_DIR, faces
from ml.tests.helpers import FACES128, jpeg_bytes, make_image

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "card.json").is_file(),
                                reason="no shipped default model")


@pytest.fixture(scope="module")
def engine():
    from ml.inference import Engine
    from ml.preprocess import DEFAULT_MAX_PIXELS

    return Engine.load(intra_threads=2, inter_threads=1, max_pixels=DEFAULT_MAX_PIXELS)


def test_engine_metadata(engine):
    card = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    assert engine.name == card["name"]
    assert card["weights_sha256"][:12] in engine.version
    assert engine.uncertain_low <= engine.threshold <= engine.uncertain_high


def test_predict_and_batch_agree(engine, tmp_path):
    imgs = [make_image(i, size=(200, 160), fake=i % 2 == 0) for i in range(4)]
    path = tmp_path / "x.png"
    imgs[0].save(path)
    inputs = [jpeg_bytes(imgs[1]), str(path), imgs[2], jpeg_bytes(imgs[3])]
    singles = [engine.predict(x) for x in inputs]
    batch = engine.predict_batch(inputs)
    assert len(batch) == 4
    for a, b in zip(singles, batch, strict=True):
        assert abs(a.fake_probability - b.fake_probability) < 1e-4
        assert a.label == b.label and a.face_found == b.face_found
        assert a.model_version == engine.version
    assert engine.predict_batch([]) == []
    d = singles[0].as_dict()
    assert set(d) == {"fake_probability", "label", "model_name", "model_version", "face_found",
                      "face_box", "inference_ms"}
    json.dumps(d)


def test_faceless_image(engine):
    p = engine.predict(jpeg_bytes(make_image(5, size=(300, 200))))
    assert p.face_found is False and p.face_box is None
    assert 0.0 <= p.fake_probability <= 1.0 and p.inference_ms > 0


def test_junk_raises_decode_error(engine):
    from ml.inference import ImageDecodeError

    for junk in (b"", b"hello, world", b"\xff\xd8\xff\xe0" + b"\x00" * 50, b"GIF89a" + b"0" * 40):
        with pytest.raises(ImageDecodeError):
            engine.predict(junk)
    gif = io.BytesIO()
    make_image(1).save(gif, format="GIF")  # a real image, but not an allowed format
    with pytest.raises(ImageDecodeError):
        engine.predict(gif.getvalue())
    assert issubclass(ImageDecodeError, ValueError)


@pytest.mark.parametrize("side", [7000, 14000])  # 49 MP (above our bound), 196 MP (Pillow's)
def test_decompression_bomb_refused(engine, side):
    from ml.inference import ImageDecodeError

    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    assert len(buf.getvalue()) < 200_000  # tiny file, huge image
    with pytest.raises(ImageDecodeError, match="too large"):
        engine.predict(buf.getvalue())


def test_pixel_limit_is_the_callers():
    """The limit is whatever Engine.load was given (the service passes its own setting)."""
    from ml.inference import Engine, ImageDecodeError

    image = jpeg_bytes(make_image(3, size=(120, 100)))  # 12,000 pixels
    small = Engine.load(max_pixels=10_000)
    assert small.max_pixels == 10_000
    with pytest.raises(ImageDecodeError, match="too large"):
        small.predict(image)
    with pytest.raises(ImageDecodeError, match="too large"):
        small.predict(make_image(3, size=(120, 100)))  # a PIL image is checked too
    large = Engine.load(max_pixels=12_000)
    assert large.max_pixels == 12_000
    assert 0.0 <= large.predict(image).fake_probability <= 1.0
    for bad in (0, -5, None, "40000000", 1.5, True):
        with pytest.raises((ValueError, TypeError)):
            Engine.load(max_pixels=bad)
    with pytest.raises(TypeError):
        Engine.load()  # no silent default: the caller states its limit


def test_crop_rule_only_for_small_faces():
    # a face filling the frame (as in the training crops) is never cropped
    assert faces.crop_box_for((30, 30, 68, 68), 128, 128) is None
    # a small face in a large photo gets a square crop around it, inside the image
    x, y, w, h = faces.crop_box_for((900, 100, 100, 100), 1000, 800)
    assert w == h == round(faces.FACE_MARGIN * 100)
    assert 0 <= x and x + w <= 1000 and 0 <= y and y + h <= 800
    assert x <= 900 and x + w >= 1000 and y <= 100


def test_face_found_on_small_face_in_large_photo(engine):
    det = faces.FaceDetector()
    if not det.available:
        pytest.skip(f"installed OpenCV has no Haar cascade: {det.backend}")
    if not FACES128.is_dir():
        pytest.skip("faces128 data set not present")
    src = sorted((FACES128 / "lfw_faceswap_rees451" / "test" / "real").glob("*.jpg"))[0]
    face = Image.open(src).convert("RGB")
    canvas = Image.fromarray(np.full((720, 960, 3), 200, np.uint8))
    canvas.paste(face.resize((200, 200)), (600, 300))
    p = engine.predict(jpeg_bytes(canvas))
    assert p.face_found is True
    x, y, w, h = p.face_box
    assert 600 <= x + w / 2 <= 800 and 300 <= y + h / 2 <= 500
