"""The shared cache (Redis), with a per-process stand-in while Redis cannot be reached.

The cache holds only rate-limit counters (DRF's read throttle, the upload budget in
detection.throttles, allauth's sign-in lockout); sessions are in the database. Django's
RedisCache raises when Redis is down, which made every page and API call a 500. This one answers
from a process-local memory cache instead, so the limits still hold, per web process (at most the
number of processes times each limit), rather than failing open (no limits at all during an
outage) or closed (no uploads, reads or sign-ins until Redis is back). After an error Redis is
retried at most every RETRY_SECONDS, so an unreachable host costs one socket timeout per process
every few seconds, not one per cache call.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
# Unreachable or too slow only: any other Redis error is a bug, and stays one.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
_METHODS = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
)

# Per process, per Redis location: Django makes one cache object per thread.
_down_until: dict[str, float] = {}
_state_lock = threading.Lock()


class _ClientPerPool(RedisCacheClient):
    """Django's client builds a new ``redis.Redis`` for every cache call, and its constructor
    alone cost about 0.13 ms, eight times per upload (bench.stages). A client is thread-safe and
    holds nothing but its pool: one per pool is enough."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ClientPerPool
        self._location = server if isinstance(server, str) else ",".join(server)
        # LocMemCache objects with one name share their data: one stand-in per process.
        self._stand_in = LocMemCache(f"redis-stand-in:{self._location}", {"TIMEOUT": None})

    @property
    def is_down(self) -> bool:
        return _down_until.get(self._location, 0.0) > time.monotonic()

    def _went_down(self, method: str) -> None:
        with _state_lock:
            was_up = self._location not in _down_until
            _down_until[self._location] = time.monotonic() + RETRY_SECONDS
        if was_up:
            logger.warning(
                "Redis cache unreachable (%s); rate limits are counted per process until it is "
                "back",
                method,
                exc_info=True,
            )

    def _came_back(self) -> None:
        with _state_lock:
            was_down = _down_until.pop(self._location, None) is not None
        if was_down:
            logger.warning("Redis cache reachable again")


def _with_stand_in(name: str):
    redis_method = getattr(DjangoRedisCache, name)

    def method(self: RedisCache, *args, **kwargs):
        if self.is_down:
            return getattr(self._stand_in, name)(*args, **kwargs)
        try:
            result = redis_method(self, *args, **kwargs)
        except UNREACHABLE:
            self._went_down(name)
            return getattr(self._stand_in, name)(*args, **kwargs)
        if self._location in _down_until:
            self._came_back()
        return result

    method.__name__ = name
    method.__doc__ = redis_method.__doc__
    return method


for _name in _METHODS:
    setattr(RedisCache, _name, _with_stand_in(_name))
