"""Self-blended training fakes (after Shiohara & Yamasaki, CVPR 2022, "SBI"), made on the fly.

A real face is blended with a slightly altered copy of itself through a soft, face-shaped mask.
The result has no generator's look at all, only what every face swap and composite leaves
behind: a blending boundary, a small colour or sharpness mismatch inside it and a slight
misalignment. A network that must tell these from the untouched original learns those traces
instead of one generator's style, which is what held-out face swaps need.

The shared faces are centre crops with the face in the middle (``ml/faces.py`` measured the
framing: face box 0.47-0.70 of the width, centre at 0.55 of the height), so the mask is a
jittered, irregular ellipse there rather than a landmark hull. numpy + OpenCV only, so it runs
inside ``tf.data`` through ``numpy_function``; the randomness comes from the generator passed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # as in the SBI paper: mostly full blends


@dataclass(frozen=True)
class BlendConfig:
    share: float = 0.0  # fraction of each training batch that is a self-blended fake (0: off)
    max_shift_px: float = 3.0  # misalignment of the altered copy, at 128 px
    max_scale: float = 0.04  # +- relative resize of the altered copy
    mask_blur_min: float = 2.0  # soft edge of the mask, Gaussian sigma in px at 128 px
    mask_blur_max: float = 8.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> BlendConfig:
        d = dict(d or {})
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def enabled(self) -> bool:
        return self.share > 0


def face_mask(size: int, rng: np.random.Generator, *, blur_min: float = 2.0,
              blur_max: float = 8.0) -> np.ndarray:
    """A soft float32 (size, size) mask in 0..1: an irregular ellipse around the face centre."""
    import cv2

    s = size / 128.0
    cx = size * (0.5 + rng.uniform(-0.04, 0.04))
    cy = size * (0.56 + rng.uniform(-0.05, 0.04))
    ax = size * rng.uniform(0.22, 0.34)  # half-width: inner face to whole face
    ay = ax * rng.uniform(1.15, 1.45)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    # A smooth random wobble of the radius, so the boundary is not a perfect ellipse.
    wobble = np.zeros_like(angles)
    for k in (2, 3, 4):
        wobble += rng.uniform(-0.06, 0.06) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    rot = rng.uniform(-0.2, 0.2)
    xs = cx + ax * (1 + wobble) * np.cos(angles) * np.cos(rot) - ay * (1 + wobble) * np.sin(
        angles) * np.sin(rot)
    ys = cy + ax * (1 + wobble) * np.cos(angles) * np.sin(rot) + ay * (1 + wobble) * np.sin(
        angles) * np.cos(rot)
    mask = np.zeros((size, size), np.float32)
    pts = np.stack([xs, ys], 1).round().astype(np.int32)
    cv2.fillPoly(mask, [pts], 1.0)
    if rng.random() < 0.5:  # shrink or grow the hard mask a little before softening
        k = max(1, int(round(rng.uniform(1, 5) * s)))
        kernel = np.ones((k, k), np.uint8)
        mask = (cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel))
    sigma = rng.uniform(blur_min, blur_max) * s
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma)
    peak = float(mask.max())
    return mask / peak if peak > 0 else mask


def altered_copy(img: np.ndarray, rng: np.random.Generator, *, max_shift_px: float = 3.0,
                 max_scale: float = 0.04) -> np.ndarray:
    """The same face, changed slightly: colour, sharpness and a small shift or resize."""
    import cv2

    size = img.shape[0]
    x = img.astype(np.float32)
    # Colour: per-channel gain and offset, then brightness/contrast.
    if rng.random() < 0.8:
        x = x * rng.uniform(0.92, 1.08, 3) + rng.uniform(-12, 12, 3)
    if rng.random() < 0.5:
        mean = x.mean()
        x = (x - mean) * rng.uniform(0.85, 1.15) + mean + rng.uniform(-10, 10)
    # Sharpness: blur or sharpen (a generated or re-rendered face is rarely as sharp).
    r = rng.random()
    if r < 0.35:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=rng.uniform(0.5, 1.3))
    elif r < 0.55:
        soft = cv2.GaussianBlur(x, (0, 0), sigmaX=1.0)
        x = x + rng.uniform(0.3, 1.0) * (x - soft)
    elif r < 0.75:  # down and up again: the resampling trace of a pasted face
        f = rng.uniform(0.5, 0.85)
        small = cv2.resize(x, (max(8, int(size * f)),) * 2, interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    # Geometry: a small resize about the centre and a shift.
    scale = 1 + rng.uniform(-max_scale, max_scale)
    dx, dy = rng.uniform(-max_shift_px, max_shift_px, 2) * size / 128.0
    m = np.array([[scale, 0, (1 - scale) * size / 2 + dx],
                  [0, scale, (1 - scale) * size / 2 + dy]], np.float32)
    x = cv2.warpAffine(x, m, (size, size), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)
    return np.clip(x, 0, 255)


def self_blend(img: np.ndarray, rng: np.random.Generator,
               config: BlendConfig | None = None) -> np.ndarray:
    """A self-blended fake made from the real face ``img`` (uint8 (S, S, 3)) -> uint8."""
    cfg = config or BlendConfig()
    size = img.shape[0]
    src = altered_copy(img, rng, max_shift_px=cfg.max_shift_px, max_scale=cfg.max_scale)
    mask = face_mask(size, rng, blur_min=cfg.mask_blur_min, blur_max=cfg.mask_blur_max)
    mask = mask * float(rng.choice(BLEND_RATIOS))
    out = mask[..., None] * src + (1 - mask[..., None]) * img.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
