"""Enqueueing and duplicates, on real Redis (a private server) and PostgreSQL, without a worker.

Messages are counted in the queue's Redis list; the queue has no consumer.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone

from detection import services
from detection.models import Detection
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import FakeEngine, upload
from detection.worker import engine as worker_engine
from detection.worker import services as worker_services
from tests.faults.conftest import app_broker, queued_messages

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(private_redis):
    name = f"faults-enqueue-{uuid.uuid4().hex[:12]}"
    with app_broker(private_redis.url, name):
        yield name


def test_upload_in_a_rolled_back_transaction_enqueues_nothing_and_keeps_no_file(
    user, private_redis, queue, settings
):
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        [detection] = services.detection_create_many(user=user, uploads=[upload("gone.jpg")])
        raise Rollback

    assert Detection.objects.count() == 0
    assert queued_messages(private_redis, queue) == []
    # The file was written before the enclosing transaction rolled back; the sweeper's clean-up
    # of unreferenced files removes it once past the grace period (not before: it could belong
    # to a transaction still open).
    stored = settings.MEDIA_ROOT / detection.image.name
    assert stored.is_file()
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1)) == 0
    later = timezone.now() + dt.timedelta(hours=2)
    assert services.detection_orphan_files_delete(older_than=dt.timedelta(hours=1), now=later) == 1
    assert not stored.exists()


def test_upload_enqueues_exactly_one_message_on_commit(user, private_redis, queue):
    with transaction.atomic():
        [detection] = services.detection_create_many(user=user, uploads=[upload("kept.jpg")])
        # Not before the commit: a worker must never look for a row it cannot see yet.
        assert queued_messages(private_redis, queue) == []

    [message] = queued_messages(private_redis, queue)
    assert (message.task, message.args) == ("detection.run", [detection.id])


def test_sweeping_twice_queues_a_stale_row_once(private_redis, queue, settings):
    stale = DetectionFactory(queued_at=timezone.now() - dt.timedelta(minutes=10))
    fresh = DetectionFactory(queued_at=timezone.now())

    assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 1
    assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 0

    assert [m.args for m in queued_messages(private_redis, queue)] == [[stale.id]]
    fresh.refresh_from_db()
    assert fresh.status == Detection.Status.PENDING


def _redis_backlog(count: int) -> list[Detection]:
    """Pending rows each with its run message published to the queue, 30 minutes ago."""
    rows = DetectionFactory.create_batch(count, queued_at=None)
    for row in rows:
        assert services.detection_enqueue(detection_id=row.id)
    Detection.objects.filter(id__in=[row.id for row in rows]).update(
        queued_at=timezone.now() - dt.timedelta(minutes=30)
    )
    return rows


def test_a_backlog_still_queued_gets_no_duplicates_and_a_lost_message_comes_back_once(
    private_redis, queue
):
    rows = _redis_backlog(50)
    assert len(queued_messages(private_redis, queue)) == 50

    for minute in range(3):  # sweep after sweep while no worker takes anything
        later = timezone.now() + dt.timedelta(minutes=minute)
        assert services.detection_sweep(older_than=dt.timedelta(minutes=2), now=later) == 0
    assert len(queued_messages(private_redis, queue)) == 50

    # The broker loses one message (removed from kombu's list, as a Redis restart without
    # persistence loses them all): it is published again, once.
    lost = rows[17]
    client = private_redis.client()
    [raw] = [
        raw for raw in client.lrange(queue, 0, -1)
        if [lost.id] == json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
    ]
    assert client.lrem(queue, 1, raw) == 1
    for _sweep in range(3):
        services.detection_sweep(older_than=dt.timedelta(minutes=2))

    messages = queued_messages(private_redis, queue)
    assert len(messages) == 50
    assert sorted(m.args[0] for m in messages) == sorted(row.id for row in rows)
    lost.refresh_from_db()
    assert lost.message_id == next(m.task_id for m in messages if m.args == [lost.id])


def test_a_message_a_worker_holds_unacknowledged_is_not_published_again(private_redis, queue):
    from deepfake_site.celery import app

    [row] = _redis_backlog(1)
    # Taken by a "worker" that does not acknowledge it (still running it, or killed): kombu
    # keeps it in its unacked hash and delivers it again after the visibility timeout.
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        taken = channel.basic_get(queue, no_ack=False)
        assert taken is not None and queued_messages(private_redis, queue) == []
        assert private_redis.client().hlen(channel.unacked_key) == 1

        assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 0
        assert queued_messages(private_redis, queue) == []

        taken.ack()  # done with, but the row is still pending: the message is lost now
        assert services.detection_sweep(older_than=dt.timedelta(minutes=2)) == 1
        assert [m.args for m in queued_messages(private_redis, queue)] == [[row.id]]


def test_a_failed_publish_is_published_by_the_sweeper_once(user, private_redis, queue):
    private_redis.kill()
    try:
        [row] = services.detection_create_many(user=user, uploads=[upload("later.jpg")])
    finally:
        private_redis.start()
    row.refresh_from_db()
    assert row.message_id == "" and row.status == Detection.Status.PENDING

    later = timezone.now() + dt.timedelta(minutes=5)
    for minute in range(3):
        services.detection_sweep(
            older_than=dt.timedelta(minutes=2), now=later + dt.timedelta(minutes=minute)
        )
    assert [m.args for m in queued_messages(private_redis, queue)] == [[row.id]]


class SlowEngine(FakeEngine):
    """Holds the model call long enough for a concurrent run to try the same row."""

    def predict(self, image):
        time.sleep(0.5)
        return super().predict(image)


@pytest.fixture
def slow_engine(monkeypatch):
    engine = SlowEngine()
    monkeypatch.setattr(worker_engine, "_engine", engine)
    return engine


def _run_at_once(detection_id: int, tokens: list[str]) -> list[Detection | None]:
    """detection_run from one thread per token (each its own PostgreSQL connection), released
    together by a barrier: two messages for one row delivered to two workers at once."""
    barrier = threading.Barrier(len(tokens))
    results: list[Detection | None] = [None] * len(tokens)
    errors: list[BaseException] = []

    def run(i: int, token: str) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = worker_services.detection_run(detection_id=detection_id, claim_token=token)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_two_runs_at_once_give_one_verdict_and_one_model_call(slow_engine):
    assert connection.vendor == "postgresql"
    detection = DetectionFactory()

    results = _run_at_once(detection.id, ["message-from-sweep-1", "message-from-sweep-2"])

    assert slow_engine.calls == 1
    assert sum(result is not None for result in results) == 1
    detection.refresh_from_db()
    assert detection.status == Detection.Status.DONE
    assert detection.attempts == 1
    assert detection.fake_probability == pytest.approx(slow_engine.probability)
    assert list(detection.faces.values_list("index", flat=True)) == [1]  # one set of faces


def test_two_sweeps_at_once_then_their_messages_at_once_give_one_model_call(
    private_redis, queue, slow_engine
):
    stale = DetectionFactory(queued_at=timezone.now() - dt.timedelta(minutes=10))
    barrier = threading.Barrier(2)

    def sweep() -> None:
        try:
            barrier.wait(timeout=10)
            services.detection_sweep(older_than=dt.timedelta(minutes=2))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Two beat processes may both see the row before either marks it queued: one or two
    # messages. Whatever the count, the row gets one model call.
    messages = queued_messages(private_redis, queue)
    assert 1 <= len(messages) <= 2
    assert {tuple(m.args) for m in messages} == {(stale.id,)}

    _run_at_once(stale.id, [m.task_id for m in messages] + ["a-redelivered-duplicate"])

    assert slow_engine.calls == 1
    stale.refresh_from_db()
    assert (stale.status, stale.attempts) == (Detection.Status.DONE, 1)
