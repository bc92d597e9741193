"""The web process must never import TensorFlow, ml or the worker package: only workers do.

The import contracts (.importlinter) forbid it statically; this proves it at run time, with every
page module, the API and the publishing path loaded and a few pages served.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")
import django
django.setup()
from django.test import Client
from django.urls import reverse
import deepfake_site.urls, detection.api.views, detection.views, detection.services  # noqa
import detection.publish  # noqa: the web publishes run messages by task name
client = Client()
for name in ("home", "api-schema", "health"):
    client.get(reverse(name))
loaded = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("tensorflow", "keras", "ml") or m.startswith("detection.worker")
)
print("LOADED " + " ".join(loaded) if loaded else "CLEAN")
"""


def test_web_code_imports_neither_tensorflow_nor_ml_nor_the_worker(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "DJANGO_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("CLEAN"), result.stdout[-2000:]
