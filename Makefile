.PHONY: run test setup lint train

# Set up everything and run web + worker + broker in the foreground (Ctrl-C stops all).
run:
	bash scripts/run.sh

# The whole test suite (needs PostgreSQL and Redis; see README).
test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh --dev

lint:
	.venv/bin/ruff check .

# Retrain the default model the way the shipped one was made (ml/models/default/card.md), into
# var/models/default; point ML_MODEL_DIR there to serve it.
train:
	.venv/bin/python -m ml train --data ../shared/datasets/faces128 --out var/models/default --epochs 14 --max-minutes 22
