"""The benchmark suite behind ``make bench`` (see docs/performance.md).

Each section is a module run in its own process (``python -m bench.<section> --json OUT``), so a
section that loads TensorFlow, one that configures Django and one that starts servers never share
a process. A section writes one JSON object with ``section_result``; ``python -m bench`` runs them,
merges the objects into ``var/bench/<date>.json``, prints the tables and rewrites
``docs/performance.md``. Speed is reported here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def section_result(
    *,
    section: str,
    title: str,
    columns: list[str],
    rows: list[list[object]],
    targets: list[dict] | None = None,
    data: dict | None = None,
    notes: list[str] | None = None,
) -> dict:
    """One section's figures: a table (columns, rows), the targets it checks
    ([{"target", "measured", "met"}], met True/False/None for not measured), the raw data, and
    notes for the reader (what a figure means, what was left out)."""
    return {
        "section": section,
        "title": title,
        "columns": list(columns),
        "rows": [list(r) for r in rows],
        "targets": list(targets or []),
        "data": dict(data or {}),
        "notes": list(notes or []),
    }


def section_args(description: str) -> argparse.ArgumentParser:
    """The arguments every section takes: --json OUT and --quick (a smaller, faster run)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, required=True, help="write the section's figures here")
    parser.add_argument("--quick", action="store_true", help="fewer images/rows: a smoke run")
    return parser


def section_write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))


def timed_ms(fn: Callable[[object], object], items: Sequence[object], *, warm: int = 3,
             per: int = 1) -> list[float]:
    """Milliseconds of ``fn(item)`` for each item (divided by ``per``: items of ``per`` images),
    after ``warm`` untimed calls on the first items."""
    for item in items[:warm]:
        fn(item)
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000.0 / per)
    return out
