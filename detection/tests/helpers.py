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


@dataclass(frozen=True)
class FakePrediction:
    fake_probability: float
    label: str
    model_name: str
    model_version: str
    face_found: bool
    face_box: tuple[int, int, int, int] | None
    inference_ms: float


class FakeEngine:
    """Stands in for ml.inference.Engine in unit tests; `calls` counts predict() calls."""

    name = "fake-model"
    version = "fake-model-20260101-abcdef123456"
    threshold = 0.5
    uncertain_low = 0.4
    uncertain_high = 0.6

    def __init__(self, probability: float = 0.91, error: BaseException | None = None) -> None:
        self.probability = probability
        self.error = error
        self.calls = 0
        self.inputs: list[bytes] = []
        self._lock = threading.Lock()

    def predict(self, image) -> FakePrediction:
        with self._lock:
            self.calls += 1
        self.inputs.append(image)
        if self.error is not None:
            raise self.error
        p = self.probability
        label = "fake" if p > self.uncertain_high else "real" if p < self.uncertain_low else (
            "uncertain"
        )
        return FakePrediction(
            fake_probability=p,
            label=label,
            model_name=self.name,
            model_version=self.version,
            face_found=True,
            face_box=(4, 3, 20, 24),
            inference_ms=12.5,
        )
