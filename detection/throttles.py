"""Rate limits: API reads per request (a DRF throttle), uploads per image (the upload budget).

The rates are in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]: "reads" counts requests,
"uploads" (per minute) and "uploads_daily" count images.

The upload budget is a fixed window per user and scope (the current minute, the current UTC day)
counted with cache.add + cache.incr: one atomic INCRBY in Redis, so parallel requests of one user
on any number of web processes can never together pass the limit (DRF's throttles read, then
write a request history: parallel requests all pass). The in-process cache of the tests is atomic
too; the folder cache of a first run with no Redis is not (it reads, then writes). A fixed window
lets a burst of twice the limit straddle a window's end; that is the price of one atomic counter.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, UserRateThrottle

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Counters outlive their window a little: a clock a few seconds off must not reset a budget.
_KEY_SLACK_SECONDS = 60


def _now() -> float:
    """The clock of the windows (tests hold it still, so a test never straddles a window's end)."""
    return time.time()


@dataclass(frozen=True)
class _Budget:
    scope: str
    limit: int
    window: int  # seconds


def _budgets() -> list[_Budget]:
    # Read on every call (not once at import like DRF's throttles): a changed setting applies.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    budgets = []
    for scope in ("uploads", "uploads_daily"):
        rate = rates.get(scope)
        if rate:
            count, period = rate.split("/")
            budgets.append(_Budget(scope, int(count), _PERIODS[period.strip()[0]]))
    return budgets


def _window(budget: _Budget, *, user_id: int, now: float) -> tuple[str, int]:
    """The cache key of the current window and the seconds until it ends."""
    index = int(now // budget.window)
    wait = max(1, math.ceil((index + 1) * budget.window - now))
    return f"upload-budget:{budget.scope}:{user_id}:{index}", wait


def _charge(key: str, *, images: int, ttl: int) -> int:
    """Add `images` to the counter atomically; returns the new count."""
    for _ in range(3):
        cache.add(key, 0, timeout=ttl)
        try:
            count = cache.incr(key, images)
        except ValueError:  # expired or evicted between add and incr: start it again
            continue
        # The folder cache's incr rewrites the entry with the default timeout; restore the window.
        cache.touch(key, timeout=ttl)
        return count
    raise RuntimeError(f"upload budget counter {key} keeps vanishing")


def upload_budget_wait(*, user_id: int, now: float | None = None) -> int | None:
    """Seconds until the user can upload again when a budget is already spent, else None.

    Charges nothing: the cheap check made before a request body is read.
    """
    now = _now() if now is None else now
    waits = []
    for budget in _budgets():
        key, wait = _window(budget, user_id=user_id, now=now)
        if (cache.get(key) or 0) >= budget.limit:
            waits.append(wait)
    return max(waits) if waits else None


def upload_budget_charge(*, user_id: int, images: int, now: float | None = None) -> int | None:
    """Charge `images` to every upload budget of the user, before anything is stored.

    Returns None when they fit (they stay charged, even if validation then refuses a file: the
    budget pays for the checking and re-encoding, and a refused file must not be free to send
    again and again). Otherwise returns the seconds to wait and refunds this request's charge:
    nothing of it was stored or checked, and a batch too large for what is left must not use up
    the rest of the window.
    """
    now = _now() if now is None else now
    charged: list[str] = []
    for budget in _budgets():
        key, wait = _window(budget, user_id=user_id, now=now)
        count = _charge(key, images=images, ttl=wait + _KEY_SLACK_SECONDS)
        charged.append(key)
        if count > budget.limit:
            for refund in charged:
                with contextlib.suppress(ValueError):  # the window ended meanwhile
                    cache.decr(refund, images)
            return wait
    return None


class UploadBudgetThrottle(BaseThrottle):
    """The API's pre-check: 429 before the body is read when a budget is already spent. The
    images themselves are charged by the upload (detection.shared.upload_budget_charge)."""

    def allow_request(self, request, view) -> bool:
        self._wait = upload_budget_wait(user_id=request.user.pk)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class ReadRateThrottle(UserRateThrottle):
    scope = "reads"
