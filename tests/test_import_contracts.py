"""The architecture rules in .importlinter: their lists are whole, and the custom cycle contract
really finds cycles. (`make test` runs the contracts themselves with lint-imports.)"""

from __future__ import annotations

import configparser
import pkgutil
import sys
from pathlib import Path

import grimp

from tests.import_contracts import import_cycles

ROOT = Path(__file__).resolve().parent.parent
# Not web code: the worker package itself, and tests and migrations.
NOT_WEB = {"worker", "tests", "migrations"}


def _contracts() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def _lines(value: str) -> set[str]:
    return {line.strip() for line in value.splitlines() if line.strip()}


def test_every_detection_module_but_the_worker_is_under_the_web_side_rule():
    contract = _contracts()["importlinter:contract:web-side"]
    listed = {m for m in _lines(contract["source_modules"]) if m.startswith("detection.")}
    present = {
        f"detection.{info.name}"
        for info in pkgutil.iter_modules([str(ROOT / "detection")])
        if info.name not in NOT_WEB
    }
    assert listed == present
    assert {"ml", "tensorflow", "detection.worker"} <= _lines(contract["forbidden_modules"])


def test_the_cycle_contract_covers_every_root_package():
    config = _contracts()
    roots = _lines(config["importlinter"]["root_packages"])
    assert roots == {"accounts", "deepfake_site", "detection", "ml"}
    assert _lines(config["importlinter:contract:no-cycles"]["containers"]) == roots


def test_import_cycles_finds_a_cycle_across_subpackages_and_nothing_in_a_clean_tree(
    tmp_path, monkeypatch
):
    package = tmp_path / "cyclepkg"
    (package / "web").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "web" / "__init__.py").write_text("")
    (package / "services.py").write_text("from cyclepkg.web import views\n")
    (package / "web" / "views.py").write_text("from cyclepkg import models\n")
    (package / "models.py").write_text("import cyclepkg.services\n")
    (package / "clean.py").write_text("import cyclepkg.models\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        graph = grimp.build_graph("cyclepkg", cache_dir=None)
        modules = set(graph.modules)
        assert import_cycles(graph, modules) == [
            ["cyclepkg.models", "cyclepkg.services", "cyclepkg.web.views"]
        ]
        (package / "models.py").write_text("")
        graph = grimp.build_graph("cyclepkg", cache_dir=None)
        assert import_cycles(graph, set(graph.modules)) == []
    finally:
        sys.modules.pop("cyclepkg", None)
