"""The images every section uses: the same faces, so the sections' figures compare.

Single 128-px faces from the shared data's test split, spread evenly over its sources (the
issue's measurements used such faces). The shared data is beside every checkout and in CI.
"""

from __future__ import annotations

from pathlib import Path

from bench import BASE_DIR

FACES128 = BASE_DIR.parent / "shared" / "datasets" / "faces128"


def bench_image_paths(n: int) -> list[Path]:
    """``n`` test faces, round-robin over the sources, in a fixed order."""
    per_source = [
        sorted((source / "test").glob("*/*.jpg"))
        for source in sorted(p for p in FACES128.iterdir() if p.is_dir())
    ] if FACES128.is_dir() else []
    per_source = [files for files in per_source if files]
    if not per_source:
        raise SystemExit(f"No test faces in {FACES128}: the benchmark needs the shared data set.")
    out: list[Path] = []
    i = 0
    while len(out) < n:
        files = per_source[i % len(per_source)]
        out.append(files[(i // len(per_source) * 7) % len(files)])
        i += 1
    return out


def bench_images(n: int) -> list[bytes]:
    return [p.read_bytes() for p in bench_image_paths(n)]
