"""Grad-CAM (ml.explain) and the engine's heatmaps."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml import DEFAULT_MODEL_DIR, read_card
from ml.explain import COLOUR_MAP, GradCam, feature_layer, heatmap_png, heatmap_rgba
from ml.model import ARCHITECTURES, build_model
from ml.preprocess import DEFAULT_MAX_PIXELS
from ml.tests.helpers import FACES128, make_image

SIZE = 32


def _region_model():
    """A toy model whose output depends only on the top-right quarter of its 32 px input
    (rows 0-15, columns 16-31): the features elsewhere are masked to zero."""
    import keras
    from keras import layers

    class TopRight(layers.Layer):
        def call(self, x):
            mask = np.zeros((1, SIZE // 2, SIZE // 2, 1), np.float32)
            mask[:, : SIZE // 4, SIZE // 4 :, :] = 1.0
            return x * mask

    inp = keras.Input((SIZE, SIZE, 3))
    x = layers.Rescaling(1.0 / 255.0)(inp)
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu",
                      kernel_initializer="ones", name="conv")(x)
    x = TopRight(name="top_right")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(1, activation="sigmoid", kernel_initializer="ones", name="p_fake")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def region_model():
    return _region_model()


def _inputs(n: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.stack([np.asarray(make_image(seed + i, (size, size))) for i in range(n)])


def test_the_map_is_high_where_the_output_depends_and_low_elsewhere(region_model):
    maps = GradCam(region_model).maps(_inputs(3))
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    for m in maps:
        assert m.min() >= 0.0 and m.max() == pytest.approx(1.0)
        # Well inside the top-right quarter vs the rest of the image (bilinear upsampling
        # blurs the border by a cell).
        assert m[2:14, 18:30].mean() > 0.5
        assert m[20:, :].max() < 0.05  # bottom half
        assert m[:, :12].max() < 0.05  # left side: a transposed or mirrored map fails here


def test_explaining_the_other_verdict_gives_an_empty_map_here(region_model):
    # Every feature of the toy raises P(fake): nothing speaks for "real".
    cam = GradCam(region_model)
    maps = cam.maps(_inputs(2), toward=[-1, 1])
    assert maps[0].max() == 0.0
    assert maps[1].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one sign per input"):
        cam.maps(_inputs(2), toward=[1])


def test_flips_average_the_mirrored_map_back_into_place(region_model):
    maps = GradCam(region_model).maps(_inputs(1), flips=True)
    m = maps[0]
    # The mirrored input's evidence sits in its own top-right, which is the original top-left.
    assert m[2:14, 2:14].mean() > 0.3 and m[2:14, 18:30].mean() > 0.3
    assert m[20:, :].max() < 0.05


def test_bad_inputs_are_refused(region_model):
    cam = GradCam(region_model)
    with pytest.raises(ValueError, match="inputs must be"):
        cam.maps(np.zeros((1, SIZE + 1, SIZE + 1, 3), np.uint8))
    assert cam.maps(np.zeros((0, SIZE, SIZE, 3), np.uint8)).shape == (0, SIZE, SIZE)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_registered_architecture_is_explained(arch):
    spec = ARCHITECTURES[arch]
    size = max(64, spec.min_size)
    size += -size % spec.size_multiple
    model = build_model(arch, size)
    layer = feature_layer(model)
    assert layer.name == {"nprnet": "s3a_relu", "seed002": "dconv3"}.get(arch, layer.name)
    shape = tuple(layer.output.shape)
    assert len(shape) == 4 and shape[1] * shape[2] > 1
    # The last spatial map: everything after it is pooled or dense.
    later = model.layers[model.layers.index(layer) + 1 :]
    assert all(len(tuple(lay.output.shape)) != 4 for lay in later)
    maps = GradCam(model).maps(_inputs(2, size), toward=[1, -1])
    assert maps.shape == (2, size, size)
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0


def test_png_is_small_rgba_with_alpha_rising_with_the_value():
    cam = np.tile(np.linspace(0.0, 1.0, 128, dtype=np.float32), (128, 1))  # 0 left, 1 right
    data = heatmap_png(cam)
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == (64, 64)
    alpha = np.asarray(img)[..., 3].astype(int)
    assert alpha[:, 0].max() == 0  # low values stay see-through
    assert alpha[:, -1].min() > 150  # the hottest area shows, but never fully opaque
    assert alpha[:, -1].max() < 255
    assert (np.diff(alpha[0]) >= 0).all()
    assert len(data) < 8_000
    full = Image.open(io.BytesIO(heatmap_png(cam, size=None)))
    assert full.size == (128, 128)


def test_colours_come_from_the_table():
    rgba = heatmap_rgba(np.array([[0.0, 0.5, 1.0, np.nan]]))
    assert rgba.shape == (1, 4, 4) and rgba.dtype == np.uint8
    assert (rgba[0, 0, :3] == COLOUR_MAP[0]).all() and (rgba[0, 2, :3] == COLOUR_MAP[255]).all()
    assert rgba[0, 3, 3] == 0  # a NaN is nothing, not an error
    # Perceptual map: lightness rises with the value.
    grey = COLOUR_MAP.astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(grey) >= -1).all() and grey[-1] > grey[0] + 200
    with pytest.raises(ValueError):
        heatmap_rgba(np.zeros((2, 2, 2)))


# ----------------------------------------------------------------------------- the engine

needs_model = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "card.json").is_file(),
                                 reason="no shipped default model")


@pytest.fixture(scope="module")
def bare_engine():
    """The shipped model in an Engine, without the face detector's warm-up (faster)."""
    from ml.inference import Engine
    from ml.model import load_model

    card = read_card(DEFAULT_MODEL_DIR)
    model = load_model(DEFAULT_MODEL_DIR / card.get("weights_file", "model.keras"))
    return Engine(model, card, DEFAULT_MODEL_DIR, max_pixels=DEFAULT_MAX_PIXELS)


def _prediction(engine, arrays, regions, probabilities):
    from ml.inference import FaceVerdict, ModelInputs, Prediction

    faces = tuple(FaceVerdict(box=r, fake_probability=p, label="fake", detector_confidence=1.0)
                  for r, p in zip(regions, probabilities, strict=True))
    return Prediction(fake_probability=max(probabilities, default=None), label="fake",
                      model_name=engine.name, model_version=engine.version, faces=faces,
                      inference_ms=1.0, inputs=ModelInputs(np.asarray(arrays, np.uint8),
                                                           tuple(regions)))


@needs_model
def test_engine_heatmaps_on_the_shipped_model(bare_engine):
    s = bare_engine.image_size
    arrays = _inputs(2, s, seed=7)
    regions = ((10, 20, 300, 300), (0, 0, 50, 50))
    heatmaps = bare_engine.heatmaps(_prediction(bare_engine, arrays, regions, [0.9, 0.1]))
    assert [h.region for h in heatmaps] == list(regions)
    for h in heatmaps:
        img = Image.open(io.BytesIO(h.png))
        assert img.mode == "RGBA" and img.size == (64, 64)
    maps = GradCam(bare_engine._model).maps(arrays)
    assert maps.shape == (2, s, s) and 0.0 <= maps.min() and maps.max() <= 1.0
    assert feature_layer(bare_engine._model).name == "s3a_relu"


@needs_model
def test_engine_heatmaps_need_the_kept_inputs(bare_engine):
    from dataclasses import replace

    pred = _prediction(bare_engine, _inputs(1, bare_engine.image_size), [(0, 0, 9, 9)], [0.5])
    with pytest.raises(ValueError, match="kept no model inputs"):
        bare_engine.heatmaps(replace(pred, inputs=None))
    empty = _prediction(bare_engine, np.zeros((0, 128, 128, 3)), [], [])
    assert bare_engine.heatmaps(empty) == []


@needs_model
def test_predict_keeps_the_inputs_and_the_region_each_face_came_from(bare_engine):
    """A face in a larger picture: its input is a crop (region = faces.crop_box_for); a face
    filling the frame: the centre square."""
    from ml.faces import crop_box_for

    files = sorted((FACES128 / "lfw_faceswap_rees451" / "test" / "real").glob("*.jpg"))[:1]
    if not files:
        pytest.skip("faces128 data set not present")
    face = Image.open(files[0]).convert("RGB")
    canvas = Image.new("RGB", (640, 400), (120, 120, 120))
    canvas.paste(face, (400, 200))
    wide = Image.new("RGB", (180, 128), (120, 120, 120))
    wide.paste(face, (26, 0))
    for picture in (canvas, wide):
        pred = bare_engine.predict(picture)
        assert len(pred.faces) == 1, picture.size
        arrays, found = bare_engine.prepare(picture)
        assert np.array_equal(pred.inputs.arrays, np.stack(arrays))
        crop = crop_box_for(found[0], *picture.size)
        want = crop or (26, 0, 128, 128)  # the centre square of 180 x 128
        assert pred.inputs.regions == (want,)
        assert (crop is None) == (picture is wide)
        (heatmap,) = bare_engine.heatmaps(pred)
        assert heatmap.region == want
        # as_dict (what callers log and compare) is unchanged by the kept inputs.
        assert "inputs" not in pred.as_dict()
