"""The deployment files agree with the settings module and with each other."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_runs_the_whole_stack_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "redis", "postgres"} <= set(services)
    for name in ("web", "worker", "redis", "postgres"):
        assert "healthcheck" in services[name], name
    assert "gunicorn" in (ROOT / "Dockerfile").read_text()
    assert {"pgdata", "media"} <= set(compose["volumes"])
    # Web and worker must see the same uploads.
    assert "media:/app/var/media" in services["web"]["volumes"]
    assert "media:/app/var/media" in services["worker"]["volumes"]


def test_env_example_lists_every_environment_variable_the_settings_read():
    settings_source = (ROOT / "deepfake_site" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'env\.db_url\(\s*"([A-Z_]+)"', settings_source))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern found no settings: fix the test"
    assert read - listed == set()


def test_requirements_are_all_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "-r")):
                continue
            assert "==" in line, f"{name}: {line} is not pinned"
