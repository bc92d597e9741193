#!/usr/bin/env bash
# Sets everything up, then runs the whole service in the foreground: web server, Celery worker
# (with the periodic sweeper) and, with no Redis configured, the embedded broker. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PORT=${PORT:-8000}
if [ -z "${REDIS_URL:-}${CELERY_BROKER_URL:-}" ]; then
  echo "==> Broker: embedded (SQLite, no server needed): fine for a first try, slower than Redis"
  echo "    under load (docs/performance.md). For speed: REDIS_URL=redis://127.0.0.1:6379/0 make run"
fi
# What the settings will say (DJANGO_DEBUG from the environment or .env), without starting Django.
debug=$(.venv/bin/python -c 'from deepfake_site import settings; print(settings.DEBUG)' 2>/dev/null || echo unknown)
echo
echo "    Deepfake Detector is starting at  http://127.0.0.1:${PORT}/"
echo "    Health:                           http://127.0.0.1:${PORT}/health/"
echo "    Press Ctrl-C to stop everything."
echo
if [ "$debug" = "True" ]; then
  echo "    This is the DEVELOPMENT mode (DJANGO_DEBUG is on): an error or a missing page shows"
  echo "    Django's debug page, with code and settings, instead of the site's error pages. Keep"
  echo "    it on this machine. Production mode: DJANGO_DEBUG=false with a DJANGO_SECRET_KEY and"
  echo "    HTTPS in front (README.md, \"Configuration\"; docker compose runs it that way)."
  echo
elif [ "$debug" = "False" ]; then
  echo "    Production mode (DJANGO_DEBUG=false): secure cookies, HSTS and a redirect to HTTPS, so"
  echo "    plain http://127.0.0.1 answers with that redirect unless DJANGO_SECURE_SSL_REDIRECT=false."
  echo
fi
exec .venv/bin/honcho --procfile Procfile.dev start
