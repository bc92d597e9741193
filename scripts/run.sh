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
echo
echo "    Deepfake Detector is starting at  http://127.0.0.1:${PORT}/"
echo "    Health:                           http://127.0.0.1:${PORT}/health/"
echo "    Press Ctrl-C to stop everything."
echo
exec .venv/bin/honcho --procfile Procfile.dev start
