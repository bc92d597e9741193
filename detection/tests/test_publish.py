"""What the sweeper asks the broker, on the embedded SQLite broker (a file, no server)."""

from __future__ import annotations

from detection import publish
from tests.faults.conftest import app_broker

# The real function: the autouse broker_held fixture replaces the module's attribute.
run_messages_held = publish.run_messages_held


def test_the_embedded_broker_holds_queued_messages_until_delivered(tmp_path, monkeypatch):
    from deepfake_site.celery import app

    # The Redis options (when the suite runs on Redis) are no arguments for SQLAlchemy.
    monkeypatch.setitem(app.conf, "broker_transport_options", {"max_retries": 1})
    with app_broker(f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}", "held-test"):
        assert run_messages_held() == set()
        ids = {app.send_task(publish.RUN_TASK, args=[n]).id for n in range(3)}
        assert run_messages_held() == ids

        with app.connection_for_write() as connection:
            delivered = connection.default_channel.basic_get("held-test", no_ack=False)
            # Delivered is gone for this broker: it never delivers a message twice, so a
            # worker that dies holding it has lost it.
            assert run_messages_held() == ids - {delivered.headers["id"]}
