from kombu import Connection

from deepfake_site.broker import EmbeddedTransport
from deepfake_site.celery import app


def test_the_embedded_broker_is_our_transport_polling_at_the_setting(settings, tmp_path):
    settings.CELERY_EMBEDDED_BROKER_POLL_SECONDS = 0.02
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    with Connection(url, transport_options={"max_retries": 1}) as conn:
        assert isinstance(conn.transport, EmbeddedTransport)
        # kombu's own default is a second between polls: most of a first-run verdict's time.
        assert conn.transport.polling_interval == 0.02
        assert conn.transport.driver_name == "sqlalchemy"  # publish.run_messages_held reads it
        # Still a working broker: a message put is a message got.
        queue = conn.SimpleQueue("bench-test")
        queue.put({"detection": 7})
        message = queue.get(block=True, timeout=5)
        message.ack()
        assert message.payload == {"detection": 7}
        queue.close()


def test_the_app_resolves_an_embedded_broker_url_to_our_transport(tmp_path):
    with app.connection_for_write(f"sqla+sqlite:///{tmp_path / 'b.sqlite3'}") as conn:
        assert isinstance(conn.transport, EmbeddedTransport)


def test_a_queue_created_by_another_process_meanwhile_is_used_not_an_error(
    tmp_path, monkeypatch
):
    from kombu.transport import sqlalchemy as kombu_sqlalchemy
    from sqlalchemy.exc import IntegrityError

    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    with Connection(url, transport_options={"max_retries": 1}) as other, \
            Connection(url, transport_options={"max_retries": 1}) as mine:
        made = other.default_channel._get_or_create("celery")  # the other process won the race

        def lost_the_race(self, queue):
            raise IntegrityError("INSERT INTO kombu_queue", {}, Exception("UNIQUE constraint"))

        monkeypatch.setattr(kombu_sqlalchemy.Channel, "_get_or_create", lost_the_race)
        got = mine.default_channel._get_or_create("celery")
        assert (got.id, got.name) == (made.id, "celery")
