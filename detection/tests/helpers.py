"""Test helpers: small real images, and a fake inference engine that counts its calls."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color=(200, 120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (40, 30), (10, 20, 30))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model X"  # Model
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def upload(name: str = "face.jpg", content: bytes | None = None, content_type="image/jpeg"):
    return SimpleUploadedFile(name, image_bytes() if content is None else content, content_type)


# The one face of FakeEngine's default answer, in image pixels (x, y, w, h).
FAKE_FACE_BOX = (4, 3, 20, 24)


@dataclass(frozen=True)
class FakeFace:
    """A face for FakeEngine to report: where it is and how likely fake the model finds it."""

    box: tuple[int, int, int, int]
    probability: float
    detector_confidence: float = 0.98


class FakeEngine:
    """Stands in for ml.inference.Engine in unit tests; `calls` counts predict() calls.

    By default it finds one face (FAKE_FACE_BOX) with P(fake) `probability`. `faces` sets the
    faces instead, largest first as the detector reports them; `faces=()` finds none.
    """

    name = "fake-model"
    version = "fake-model-20260101-abcdef123456"
    threshold = 0.5
    uncertain_low = 0.4
    uncertain_high = 0.6

    def __init__(
        self,
        probability: float = 0.91,
        error: BaseException | None = None,
        faces: tuple[FakeFace, ...] | list[FakeFace] | None = None,
    ) -> None:
        self.probability = probability
        self.error = error
        self.faces = faces
        self.calls = 0
        self.inputs: list[bytes] = []
        self._lock = threading.Lock()
        # heatmaps(): how often it ran, and an error to raise instead.
        self.heatmap_calls = 0
        self.heatmap_error: BaseException | None = None

    def label_for(self, p: float) -> str:
        if p > self.uncertain_high:
            return "fake"
        return "real" if p < self.uncertain_low else "uncertain"

    def predict(self, image):
        # The engine's own result types, so a change of their shape in ml/ shows up in these
        # tests; imported here, so that web tests using this module never import ml.
        from ml.inference import NO_FACE, FaceVerdict, Prediction

        with self._lock:
            self.calls += 1
        self.inputs.append(image)
        if self.error is not None:
            raise self.error
        faces = self.faces
        if faces is None:
            faces = (FakeFace(box=FAKE_FACE_BOX, probability=self.probability),)
        verdicts = tuple(
            FaceVerdict(
                box=tuple(face.box),
                fake_probability=face.probability,
                label=self.label_for(face.probability),
                detector_confidence=face.detector_confidence,
            )
            for face in faces
        )
        # As the engine decides: the most suspicious face; no face, no real/fake verdict.
        top = max(verdicts, key=lambda v: v.fake_probability) if verdicts else None
        return Prediction(
            fake_probability=top.fake_probability if top else None,
            label=top.label if top else NO_FACE,
            model_name=self.name,
            model_version=self.version,
            faces=verdicts,
            inference_ms=12.5,
        )

    def predict_frames(self, frames):
        """Video frames (ml.video): each frame gets predict()'s answer, so the faces stay put and
        form one track each; `calls` counts frames."""
        return [self.predict(frame) for frame in frames]

    def heatmaps(self, prediction):
        """A tiny real RGBA PNG per face, over a square around its box."""
        from ml.inference import FaceHeatmap

        with self._lock:
            self.heatmap_calls += 1
        if self.heatmap_error is not None:
            raise self.heatmap_error
        return [
            FaceHeatmap(png=heatmap_png_bytes(), region=fake_heatmap_region(face.box))
            for face in prediction.faces
        ]


def fake_heatmap_region(box) -> tuple[int, int, int, int]:
    """The square FakeEngine says the model saw for a face box."""
    x, y, w, h = box
    return (x, y, max(w, h), max(w, h))


def heatmap_png_bytes(size: int = 4) -> bytes:
    """A small RGBA PNG, as the worker stores per face."""
    buffer = io.BytesIO()
    Image.new("RGBA", (size, size), (250, 120, 10, 180)).save(buffer, format="PNG")
    return buffer.getvalue()
