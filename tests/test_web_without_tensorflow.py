"""The web process must never import TensorFlow: only the worker loads the model."""

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
import detection.tasks  # noqa: the web imports it to publish
client = Client()
for name in ("home", "api-schema"):
    client.get(reverse(name))
loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
print("TF" if loaded else "NO-TF")
"""


def test_web_code_does_not_import_tensorflow(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "DJANGO_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("NO-TF"), result.stdout
