#!/usr/bin/env bash
# Idempotent set-up: virtual environment, pinned packages, database, static files.
#   scripts/setup.sh          what `make run` needs
#   scripts/setup.sh --dev    also test tools and the Chromium the browser test drives
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
dev=false
[ "${1:-}" = "--dev" ] && dev=true
reqs=requirements.txt
$dev && reqs=requirements-dev.txt

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the pinned requirements change.
stamp=.venv/.installed-$(cat requirements.txt "$reqs" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> Installing $reqs (first run takes a few minutes: TensorFlow is large)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$reqs"
  touch "$stamp"
fi

if $dev && ! command -v chromium >/dev/null 2>&1; then
  # Playwright cannot download its own browsers here; the browser test drives Debian's Chromium.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing Chromium for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "!! Chromium is missing: install the 'chromium' package (the browser test needs it)." >&2
  fi
fi

echo "==> Migrating the database and collecting static files"
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
