"""Celery tasks: thin, receive ids, call one service. (Filled in by the detection pipeline.)"""

from __future__ import annotations

# Imported for its signal handlers: every worker process loads the model after the fork.
from detection import worker  # noqa: F401
