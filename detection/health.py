"""Health of the service's dependencies, for /health/ and for people running it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from deepfake_site.celery import app, broker_description
from detection.selectors import worker_heartbeats_fresh


@dataclass
class HealthReport:
    checks: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check["ok"] for check in self.checks.values())

    def as_dict(self, *, details: bool = False) -> dict[str, object]:
        """Up or down per check for anyone; with details (broker URL, error class names, worker
        count, model name and version) only for operators: they map the deployment for an
        attacker and say when its workers are down or which model to craft images against."""
        if details:
            checks = self.checks
        else:
            checks = {name: {"ok": check["ok"]} for name, check in self.checks.items()}
        return {"status": "ok" if self.ok else "unavailable", "checks": checks}


def _check_database() -> dict[str, object]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported not raised
        return {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}


def _check_broker() -> dict[str, object]:
    url = broker_description(app.conf.broker_url)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.REDIS_SOCKET_TIMEOUT)
            # Opening a channel makes lazy transports (Redis) really talk to the server.
            channel = conn.default_channel
            client = getattr(channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()
        return {"ok": True, "url": url}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "url": url, "error": exc.__class__.__name__}


def _check_workers() -> tuple[dict[str, object], dict[str, object]]:
    try:
        fresh = worker_heartbeats_fresh()
    except Exception as exc:  # noqa: BLE001
        error = {"ok": False, "error": exc.__class__.__name__}
        return error, error
    workers = {"ok": bool(fresh), "count": len(fresh)}
    loaded = [beat for beat in fresh if beat.model_version]
    if loaded:
        model = {"ok": True, "name": loaded[0].model_name, "version": loaded[0].model_version}
    else:
        model = {"ok": False, "error": "no worker has loaded a model"}
    return workers, model


def health_report() -> HealthReport:
    report = HealthReport()
    report.checks["database"] = _check_database()
    report.checks["broker"] = _check_broker()
    workers, model = _check_workers()
    report.checks["workers"] = workers
    report.checks["model"] = model
    return report
