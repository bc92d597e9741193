"""A detection finished: the worker announces it, and an API request waiting for it wakes up.

Clients used to poll for a verdict, and on a 2-core box their polls (a full API request each,
about 5 ms of web CPU) took the cores the worker needed. Now a client may wait in one request
(``GET /api/v1/detections/<id>/?wait=<seconds>``); the request sleeps until the worker says the
row is finished. With Redis that is a pub/sub message on a per-detection channel, so the wait
ends as soon as the verdict is committed and costs nothing while it lasts. Without Redis (the
first-run setup), or while Redis is unreachable, the waiting request re-reads its row every
``WAIT_POLL_SECONDS`` instead: one small query, never a lost verdict.

Both sides import this module: the worker announces, the web listens. The row stays the truth:
a message only says "look again".
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from django.conf import settings

logger = logging.getLogger(__name__)

WAIT_POLL_SECONDS = 0.05  # re-reading the row, when there is no Redis to be woken by
WAIT_RECHECK_SECONDS = 2.0  # with Redis, the row is re-read this often anyway (a lost message)
_CHANNEL = "detection-finished:{id}"

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def _redis():
    """The process's Redis client for these messages (one pool per URL), or None without
    Redis."""
    url = settings.REDIS_URL
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                import redis

                client = _clients[url] = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                )
    return client


def detection_finished_announce(*, detection_id: int) -> None:
    """Wake whoever waits for this detection (call after its final state is committed). Never
    raises: a waiter that misses the message finds the row finished at its next re-read."""
    client = _redis()
    if client is None:
        return
    try:
        client.publish(_CHANNEL.format(id=detection_id), b"1")
    except Exception:  # noqa: BLE001 - Redis down: waiters fall back to re-reading the row
        logger.debug("Could not announce detection %s", detection_id, exc_info=True)


@contextlib.contextmanager
def detection_finished_listen(
    *, detection_ids: Sequence[int]
) -> Iterator[Callable[[float], None]]:
    """Listen for the announcements of these detections. Yields ``sleep(seconds)``, which
    returns when one of them may have finished (an announcement) or after ``seconds``, whichever
    comes first. Subscribe first, then check the rows, then sleep: no announcement is missed."""
    client = _redis()
    pubsub = None
    if client is not None:
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(*(_CHANNEL.format(id=i) for i in detection_ids))
        except Exception:  # noqa: BLE001 - Redis down: re-read the rows instead
            logger.debug("Could not listen for detections %s", detection_ids, exc_info=True)
            pubsub = None

    def sleep(seconds: float) -> None:
        nonlocal pubsub
        if pubsub is None:
            time.sleep(min(seconds, WAIT_POLL_SECONDS))
            return
        try:
            pubsub.get_message(timeout=min(seconds, WAIT_RECHECK_SECONDS))
        except Exception:  # noqa: BLE001 - Redis went away mid-wait: re-read the row instead
            logger.debug("Lost the listener for detections %s", detection_ids, exc_info=True)
            with contextlib.suppress(Exception):
                pubsub.close()
            pubsub = None

    try:
        yield sleep
    finally:
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()
