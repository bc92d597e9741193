"""The worker side of detection: only Celery worker processes import this package.

``services`` is the run state machine (claim, run, retry, fail) and the heartbeat's writes,
``engine`` the model's life cycle in each worker process, ``tasks`` the thin Celery tasks. The web
publishes tasks by name (``detection.publish``) and never imports anything here; the import
contracts in ``.importlinter`` enforce that.
"""
