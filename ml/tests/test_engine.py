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


def _shared_faces(n: int, source="lfw_faceswap_rees451", label="real"):
    if not FACES128.is_dir():
        pytest.skip("faces128 data set not present")
    return sorted((FACES128 / source / "test" / label).glob("*.jpg"))[:n]


def test_predict_and_batch_agree(engine, tmp_path):
    files = _shared_faces(3) + _shared_faces(1, label="fake")
    inputs = [files[0].read_bytes(), str(files[1]), Image.open(files[2]),
              jpeg_bytes(make_image(5, size=(300, 200)))]
    singles = [engine.predict(x) for x in inputs]
    batch = engine.predict_batch(inputs)
    assert len(batch) == 4
    for a, b in zip(singles, batch, strict=True):
        assert a.label == b.label and len(a.faces) == len(b.faces)
        if a.fake_probability is not None:
            assert abs(a.fake_probability - b.fake_probability) < 1e-4
        assert a.model_version == engine.version
    assert [p.label == "no_face" for p in singles] == [False, False, False, True]
    assert engine.predict_batch([]) == []
    d = singles[0].as_dict()
    assert set(d) == {"fake_probability", "label", "model_name", "model_version", "faces",
                      "deciding_face", "inference_ms"}
    assert set(d["faces"][0]) == {"box", "fake_probability", "label", "detector_confidence"}
    json.dumps(d)


def test_a_tight_face_crop_is_one_face_judged_like_training(engine):
    """Every shared image is a tight crop: one face, and the model input is exactly the
    training preprocessing of the file (no extra crop, no extra resampling)."""
    from ml.preprocess import DEFAULT_MAX_PIXELS, prepare_path

    for path in _shared_faces(3) + _shared_faces(2, "140k_ffhq_stylegan_zoya2244", "fake"):
        arrays, found = engine.prepare(path.read_bytes())
        assert len(found) == 1, path
        want = prepare_path(str(path), engine.image_size, DEFAULT_MAX_PIXELS)
        assert np.array_equal(arrays[0], want), path
        pred = engine.predict(path.read_bytes())
        raw = engine.predict_array(want)
        from ml import calibration

        assert pred.fake_probability == pytest.approx(
            float(calibration.apply(np.array([raw]), engine.card.get("calibration"))[0]))


def test_faceless_image_is_no_face_not_real(engine):
    for img in (make_image(5, size=(300, 200)), make_image(6, size=(640, 480))):
        p = engine.predict(jpeg_bytes(img))
        assert p.label == "no_face" and p.fake_probability is None
        assert p.faces == () and p.face_found is False and p.face_box is None
        assert p.deciding_face is None and p.inference_ms > 0


def test_every_face_gets_a_verdict_and_the_most_suspicious_decides(engine):
    real, fake = _shared_faces(1)[0], _shared_faces(1, "140k_ffhq_stylegan_zoya2244", "fake")[0]
    canvas = Image.fromarray(np.full((420, 900, 3), 190, np.uint8))
    canvas.paste(Image.open(real).convert("RGB").resize((256, 256)), (40, 80))
    canvas.paste(Image.open(fake).convert("RGB").resize((256, 256)), (560, 80))
    p = engine.predict(jpeg_bytes(canvas))
    assert len(p.faces) == 2
    centres = sorted((f.box[0] + f.box[2] / 2) for f in p.faces)
    assert 40 < centres[0] < 296 and 560 < centres[1] < 816
    top = max(p.faces, key=lambda f: f.fake_probability)
    assert p.fake_probability == top.fake_probability and p.label == top.label
    assert p.faces[p.deciding_face] is top and p.face_box == top.box
    # each face was judged on its own crop: not both on the whole picture
    assert p.faces[0].fake_probability != p.faces[1].fake_probability


def test_flips_average_the_image_and_its_mirror(engine, monkeypatch):
    from ml import calibration

    arr = np.asarray(make_image(8, size=(engine.image_size, engine.image_size)))
    plain = float(engine._fn(arr[None]).numpy().reshape(-1)[0])
    mirror = float(engine._fn(arr[None, :, ::-1]).numpy().reshape(-1)[0])
    monkeypatch.setattr(engine, "flips", True)
    want = calibration.sigmoid((calibration.logit(plain) + calibration.logit(mirror)) / 2)
    assert engine.predict_array(arr) == pytest.approx(float(want), abs=1e-6)
    monkeypatch.setattr(engine, "flips", False)
    assert engine.predict_array(arr) == pytest.approx(plain, abs=1e-6)


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
    assert large.predict(image).label == "no_face"  # decoded: no refusal
    for bad in (0, -5, None, "40000000", 1.5, True):
        with pytest.raises((ValueError, TypeError)):
            Engine.load(max_pixels=bad)
    with pytest.raises(TypeError):
        Engine.load()  # no silent default: the caller states its limit


def test_crop_rule_only_for_small_faces():
    # a face filling the frame (as in the training crops) is never cropped
    assert faces.crop_box_for((30, 30, 68, 68), 128, 128) is None
    # ... unless several faces share the picture: then each gets its own square
    x, y, w, h = faces.crop_box_for((30, 30, 68, 68), 128, 128, whole_image_ok=False)
    assert w == h == round(faces.FACE_MARGIN * 68) and 0 <= x and x + w <= 128
    # a small face in a large photo gets a square crop around it, inside the image
    x, y, w, h = faces.crop_box_for((900, 100, 100, 100), 1000, 800)
    assert w == h == round(faces.FACE_MARGIN * 100)
    assert 0 <= x and x + w <= 1000 and 0 <= y and y + h <= 800
    assert x <= 900 and x + w >= 1000 and y <= 100


def test_face_found_on_small_face_in_large_photo(engine):
    src = _shared_faces(1)[0]
    face = Image.open(src).convert("RGB")
    canvas = Image.fromarray(np.full((720, 960, 3), 200, np.uint8))
    canvas.paste(face.resize((200, 200)), (600, 300))
    p = engine.predict(jpeg_bytes(canvas))
    assert p.face_found is True and len(p.faces) == 1
    x, y, w, h = p.face_box
    assert 600 <= x + w / 2 <= 800 and 300 <= y + h / 2 <= 500
    assert p.faces[0].detector_confidence >= faces.MIN_CONFIDENCE


def test_no_face_rate_on_shared_test_faces_is_near_zero():
    """The face step finds the face in (nearly) every tight crop of every source; the card's
    serving-path table has the full figure."""
    if not FACES128.is_dir():
        pytest.skip("faces128 data set not present")
    det = faces.FaceDetector()
    missed, total = [], 0
    for source in sorted(p.name for p in FACES128.iterdir() if p.is_dir()):
        for label in ("real", "fake"):
            for path in sorted((FACES128 / source / "test" / label).glob("*.jpg"))[:6]:
                total += 1
                if not det.detect(np.asarray(Image.open(path).convert("RGB"))):
                    missed.append(path.name)
    assert total >= 40
    assert len(missed) <= max(1, total // 25), missed


def test_max_faces_caps_the_faces_judged(engine):
    from ml.inference import Engine
    from ml.preprocess import DEFAULT_MAX_PIXELS

    real, fake = _shared_faces(1)[0], _shared_faces(1, "140k_ffhq_stylegan_zoya2244", "fake")[0]
    canvas = Image.fromarray(np.full((420, 900, 3), 190, np.uint8))
    canvas.paste(Image.open(real).convert("RGB").resize((256, 256)), (40, 80))
    canvas.paste(Image.open(fake).convert("RGB").resize((220, 220)), (560, 100))
    both = engine.predict(jpeg_bytes(canvas)).faces
    assert len(both) == 2
    one = Engine.load(max_pixels=DEFAULT_MAX_PIXELS, max_faces=1)
    p = one.predict(jpeg_bytes(canvas))
    largest = max(both, key=lambda f: f.box[2] * f.box[3])
    assert len(p.faces) == 1 and p.faces[0].box == largest.box  # the largest face is kept
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            Engine.load(max_pixels=DEFAULT_MAX_PIXELS, max_faces=bad)
