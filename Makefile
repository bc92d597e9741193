.PHONY: run test setup lint train

# Set up everything and run web + worker + broker in the foreground (Ctrl-C stops all).
run:
	scripts/run.sh

# The whole test suite (needs PostgreSQL and Redis; see README).
test:
	scripts/test.sh

setup:
	scripts/setup.sh --dev

lint:
	.venv/bin/ruff check .

# Retrain the shipped default model (see ml/models/default/card.md).
train:
	.venv/bin/python -m ml train --data ../shared/datasets/faces128 --out var/models/default
