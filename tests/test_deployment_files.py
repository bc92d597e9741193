"""The deployment files agree with the settings module and with each other."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.processes import free_port, http_get, web_server_running

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


def _dockerfile_collectstatic() -> tuple[dict[str, str], list[str]]:
    """The environment assignments and the command of the Dockerfile's collectstatic step."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"((?:[A-Z_]+=\S+\s+)*)python (manage\.py collectstatic[^&\n]*)", dockerfile)
    assert match, "the Dockerfile has no `python manage.py collectstatic` step: fix the test"
    assignments = dict(item.split("=", 1) for item in shlex.split(match.group(1)))
    return assignments, shlex.split(match.group(2))


def _dockerfile_gunicorn_command(port: int) -> str:
    """The image's CMD (gunicorn), bound to a local port instead of 0.0.0.0:8000."""
    [cmd] = re.findall(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    argv = json.loads(cmd)
    assert argv[0] == "gunicorn", argv
    argv[0] = f"{sys.executable} -m gunicorn"
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    return " ".join(argv)


def test_compose_web_health_check_fetches_a_page_not_a_static_file():
    web = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]
    url = web["healthcheck"]["test"][-1]
    assert url.startswith("http://localhost:8000/"), url
    # A static file is served by whitenoise without rendering anything: a broken image passed.
    assert "/static/" not in url


@pytest.mark.slow
def test_image_static_files_built_as_the_dockerfile_does_serve_pages_in_production(tmp_path):
    """collectstatic exactly as the Dockerfile runs it, then the image's gunicorn command with
    DJANGO_DEBUG=false: the home page renders (200, also for the compose health check) and the
    hashed static URLs it links to are served."""
    assignments, command = _dockerfile_collectstatic()
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))
    }
    # /app/var in the image: STATIC_ROOT is its staticfiles folder, SQLite lives there too.
    base_env |= {"DJANGO_VAR_DIR": str(tmp_path / "var"), "PYTHONDONTWRITEBYTECODE": "1"}
    build = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**base_env, **assignments},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    # What docker-compose.yml gives the web service (its database is not needed for these pages).
    run_env = base_env | {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "test-only-production-mode-key-" + "x" * 30,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
    }
    port = free_port()
    with web_server_running(
        command=_dockerfile_gunicorn_command(port), env=run_env,
        log_path=tmp_path / "gunicorn.log", port=port,
    ) as server:
        status, _, body = http_get(f"{server.url}/")
        assert status == 200, server.log_tail()
        html = body.decode()
        # Hashed names come from the manifest: the production storage is the one in use.
        stylesheets = re.findall(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', html)
        assert stylesheets, html[:2000]
        status, headers, css = http_get(f"{server.url}{stylesheets[0]}")
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        assert b".face-box" in css
        # The Private check's WebAssembly (vendored TF.js) under its hashed name, as WebAssembly:
        # browsers compile it while it streams only with this type.
        names = json.loads((tmp_path / "var" / "staticfiles" / "staticfiles.json").read_text())
        wasm = names["paths"]["vendor/tfjs/tfjs-backend-wasm-simd.wasm"]
        status, headers, body = http_get(f"{server.url}/static/{wasm}")
        assert status == 200 and headers["Content-Type"] == "application/wasm", headers
        assert body[:4] == b"\0asm"

        # The compose health check itself, pointed at this server.
        healthcheck = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        probe = healthcheck["services"]["web"]["healthcheck"]["test"][1:]
        probe[-1] = probe[-1].replace("localhost:8000", f"127.0.0.1:{port}")
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
