"""The benchmark's own logic (bench/): the targets it checks and the page it rewrites. The
figures themselves come from `make bench`, never from a test."""

from __future__ import annotations

import bench.__main__ as bench_main
from bench import section_result
from bench.e2e import _percentile, procfile_commands


def _e2e(images_per_s: float, p50: float, p99: float, *, errors: int = 0, lost: int = 0):
    level = {"clients": 8, "images_per_s": images_per_s, "p50_ms": p50, "p99_ms": p99,
             "errors": errors, "lost": lost}
    return section_result(section="e2e", title="e2e", columns=[], rows=[], data={
        "runs": [{"setup": "redis", "database": "PostgreSQL", "levels": [level]}]})


def _model(engine_ms: float):
    return section_result(section="model", title="model", columns=[], rows=[],
                          data={"figures": {"engine_predict_end_to_end": engine_ms}})


def _met(targets: list[dict], starts: str) -> bool:
    [target] = [t for t in targets if t["target"].startswith(starts)]
    return target["met"]


def test_the_pipeline_is_judged_against_the_bare_engine():
    # Engine: 10 ms an image, 100 images/s; 0.7x is 70 images/s.
    assert _met(bench_main.cross_targets([_model(10.0), _e2e(71, 100, 300)]),
                "redis (PostgreSQL): 8 clients")
    assert not _met(bench_main.cross_targets([_model(10.0), _e2e(69, 100, 300)]),
                    "redis (PostgreSQL): 8 clients")


def test_latency_targets_need_the_p50_bound_the_p99_ratio_and_nothing_lost():
    engine = _model(10.0)  # p50 bound: 2 x 10 + 100 = 120 ms
    assert _met(bench_main.cross_targets([engine, _e2e(50, 120, 480)]), "redis (PostgreSQL), 8")
    assert not _met(bench_main.cross_targets([engine, _e2e(50, 121, 480)]),
                    "redis (PostgreSQL), 8")
    assert not _met(bench_main.cross_targets([engine, _e2e(50, 100, 401)]),
                    "redis (PostgreSQL), 8")
    assert not _met(bench_main.cross_targets([engine, _e2e(50, 100, 300, lost=1)]),
                    "redis (PostgreSQL), 8")


def test_memory_is_judged_on_the_process_that_holds_the_model():
    memory = section_result(section="memory", title="memory", columns=[], rows=[], data={
        "detections": 1000,
        "rss_mb_loaded": {"main": 99.0, "child1": 86.0, "child2": 590.0},
        "rss_mb_after": {"main": 99.0, "child1": 86.0, "child2": 630.0},
    })
    targets = bench_main.cross_targets([memory])
    assert _met(targets, "worker RSS <= 600 MB")
    assert not _met(targets, "no RSS growth")  # +40 MB over 1,000 detections


def test_a_failed_section_is_not_judged():
    failed = section_result(section="model", title="model: FAILED", columns=[], rows=[],
                            data={"failed": True})
    assert bench_main.cross_targets([failed, _e2e(50, 100, 300)]) == []


def test_the_page_keeps_its_hand_written_text_around_the_generated_part(tmp_path, monkeypatch):
    page = tmp_path / "performance.md"
    page.write_text(f"# Title\n\nWritten by hand.\n\n{bench_main.BEGIN}\nold table\n"
                    f"{bench_main.END}\n\nMore by hand.\n")
    monkeypatch.setattr(bench_main, "DOC", page)
    report = {"date": "2026-12-02", "command": "make bench", "quick": False,
              "machine": {"cpu": "x", "cores": 2, "python": "3.11", "packages": {}},
              "sections": [section_result(section="s", title="A section", columns=["a", "b"],
                                          rows=[[1, None]], targets=[
                                              {"target": "t", "measured": "m", "met": False}])],
              "targets": []}
    bench_main.doc_update(report)
    text = page.read_text()
    assert text.startswith("# Title\n\nWritten by hand.\n")
    assert text.endswith("More by hand.\n")
    assert "old table" not in text
    assert "| t | m | no |" in text and "| 1 | - |" in text


def test_percentiles_interpolate_and_an_empty_level_has_none():
    assert _percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert _percentile([10.0], 0.99) == 10.0
    assert _percentile([], 0.5) is None


def test_the_end_to_end_section_starts_what_make_run_starts():
    commands = procfile_commands()
    assert set(commands) == {"web", "worker"}
    assert "gunicorn" in commands["web"] and "celery" in commands["worker"]
