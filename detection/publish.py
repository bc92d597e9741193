"""Publishing work for the workers, by task name: the web never imports the worker's modules
(nor, through them, TensorFlow). The tasks themselves are in detection.worker.tasks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from deepfake_site.celery import app

RUN_TASK = "detection.run"
SWEEP_TASK = "detection.sweep"
PURGE_TASK = "detection.purge_expired"
ORPHAN_FILES_TASK = "detection.orphan_files_delete"

# LRANGE batch when reading a Redis queue: a long backlog is read in bounded replies.
_REDIS_BATCH = 1000


def detection_run_publish(*, detection_id: int) -> str:
    """Send the run message for one detection and return its id (the Celery task id, also the
    worker's claim token); broker errors are the caller's to handle."""
    return app.send_task(RUN_TASK, args=[detection_id]).id


def run_messages_held() -> set[str] | None:
    """Ids of the messages the broker can still deliver to a worker; None if it cannot say.

    Held means waiting in the queue, or delivered and not yet acknowledged: Redis keeps those in
    kombu's unacked hash and puts them back in the queue once the visibility timeout has passed
    if their worker died, so they are not lost either. The embedded SQLite broker marks a
    delivered message invisible and never delivers it again, so only its visible messages count.
    Broker errors are the caller's to handle.
    """
    queue = app.conf.task_default_queue
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        driver = connection.transport.driver_name
        if driver == "redis":
            payloads = _redis_payloads(channel, queue)
        elif driver == "sqlalchemy":
            payloads = _sqlalchemy_payloads(channel, queue)
        else:
            return None
        return {message_id for message_id in map(_message_id, payloads) if message_id}


def _redis_payloads(channel, queue: str) -> Iterator[object]:
    client = channel.client
    # Read the queue before the unacked hash: a message a worker takes meanwhile moves from the
    # first to the second, so it is seen in one of them.
    lists = [channel._q_for_pri(queue, priority) for priority in channel.priority_steps]
    for name in dict.fromkeys(lists):
        start = 0
        while batch := client.lrange(name, start, start + _REDIS_BATCH - 1):
            yield from _json_loads(batch)
            start += len(batch)
    for entry in _json_loads(client.hvals(channel.unacked_key)):
        # [message, exchange, routing key]
        yield entry[0] if isinstance(entry, list) and entry else entry


def _sqlalchemy_payloads(channel, queue: str) -> Iterator[object]:
    visible = channel._query_all(queue).filter(channel.message_cls.visible.is_(True))
    try:
        yield from _json_loads(message.payload for message in visible)
    finally:
        channel.session.commit()  # end the read transaction: the SQLite file stays unlocked


def _json_loads(raw: Iterable[bytes | str]) -> Iterator[object]:
    for item in raw:
        try:
            yield json.loads(item)
        except ValueError:
            continue  # not a message of ours


def _message_id(payload: object) -> str:
    if not isinstance(payload, dict):
        return ""
    headers = payload.get("headers") or {}
    properties = payload.get("properties") or {}
    return str(headers.get("id") or properties.get("correlation_id") or "")
