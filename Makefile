.PHONY: run test setup lint train bench

# Set up everything and run web + worker + broker in the foreground (Ctrl-C stops all).
run:
	bash scripts/run.sh

# The whole test suite (needs PostgreSQL and Redis; see README).
test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh --dev

# The benchmark suite (docs/performance.md): model, stages, end to end (web + worker + Redis, and
# the embedded first-run setup), memory, growth. Writes var/bench/<date>.json, prints the tables
# and rewrites docs/performance.md with its plot. About 5 minutes on 2 cores; a smoke run:
# make bench BENCH_ARGS=--quick. PostgreSQL for the database sections:
# BENCH_DATABASE_URL=postgres://user@host:5432/postgres (private databases are made there).
bench:
	bash scripts/setup.sh
	.venv/bin/python -m bench $(BENCH_ARGS)

lint:
	.venv/bin/ruff check .

# Retrain the default model the way the shipped one was made (ml/models/default/card.md): it is
# the earlier model (ml/models/v1) fine-tuned on every source with self-blended fakes. First the
# recipe's leave-one-source-out folds for the sources v1 never saw (resumable; they calibrate
# the model for unseen sources), then the model itself, into var/models/default; point
# ML_MODEL_DIR there to serve it. About 40 minutes on 2 CPU cores.
RECIPE = --sbi 0.25 --batch-size 32 --lr 5e-4 --init-weights ml/models/v1/model.keras
train:
	.venv/bin/python -m ml loso --data ../shared/datasets/faces128 --out var/loso/default \
	  --epochs 3 --steps-per-epoch 200 $(RECIPE) \
	  --held-out dfdc_faces224 --held-out ecuador_flux --held-out utkface_real
	.venv/bin/python -m ml train --data ../shared/datasets/faces128 --out var/models/default \
	  --epochs 6 --steps-per-epoch 400 --patience 3 $(RECIPE) --loso var/loso/default \
	  --name deepfake-nprnet-v2
