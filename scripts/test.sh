#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, import contracts, migrations check, deploy check,
# then pytest on PostgreSQL + Redis (the production path) and once more on SQLite (the first-run
# path).
#
# PostgreSQL and Redis come from TEST_DATABASE_URL / TEST_REDIS_URL, defaulting to the local
# servers (127.0.0.1:5432 database "test", 127.0.0.1:6379). If they are unreachable the run FAILS:
# the tests about them are never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --dev
PY=.venv/bin/python

export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/9}

echo "==> ruff"
.venv/bin/ruff check .

echo "==> import contracts (.importlinter)"
.venv/bin/lint-imports --no-cache

echo "==> makemigrations --check"
$PY manage.py makemigrations --check --dry-run

echo "==> check --deploy with production settings"
DJANGO_DEBUG=false \
DJANGO_SECRET_KEY="ci-only-$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')" \
DJANGO_ALLOWED_HOSTS=detector.example.com \
  $PY manage.py check --deploy --fail-level WARNING

echo "==> PostgreSQL and Redis must be reachable"
$PY scripts/wait_for_services.py "$TEST_DATABASE_URL" "$TEST_REDIS_URL"

echo "==> pytest on PostgreSQL + Redis"
DATABASE_URL=$TEST_DATABASE_URL REDIS_URL=$TEST_REDIS_URL $PY -m pytest "$@"

echo "==> pytest on SQLite + embedded broker (database and web layers)"
# ml/ has no database: its tests ran in the first pass already.
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL \
  $PY -m pytest -m "not slow and not services" -q accounts detection deepfake_site tests "$@"
