"""Per-key rate limits that hold under concurrency.

DRF's cache throttles read the history, decide, then write it back: concurrent requests all read the same
count and all pass (DRF #8127). Here the count is one atomic INCR in Redis (a fixed window per minute,
sent with its EXPIRE in one round trip), so of N simultaneous requests exactly `limit` pass. Without Redis
(embedded dev) an in-process counter under a lock does the same for one process; so does a failing Redis,
and for BYPASS_SECONDS after a failure it is not asked at all, so a dead Redis does not add its connect
timeout to every request.
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from merchants.models import ApiKey
from tokenhub.redis import REDIS_ERRORS, redis_failed, redis_failures_forget, redis_skipped, shared_redis

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
KEY_PREFIX = "tokenhub:ratelimit:"
BYPASS_SECONDS = 5.0  # after a Redis failure, how long this process counts alone without asking it
clock = time.time  # a module attribute, so tests can hold the window still


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float


class _LocalCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def incr(self, ident: str, window: int) -> int:
        with self._lock:
            if len(self._counts) > 10_000:  # forget finished windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= window}
            count = self._counts.get((ident, window), 0) + 1
            self._counts[(ident, window)] = count
            return count

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


local_counter = _LocalCounter()


def hit(ident: str, *, limit: int, now: float | None = None) -> Decision:
    """Count one request for `ident` in the current minute; allowed while the count is within `limit`."""
    now = clock() if now is None else now
    window = int(now // WINDOW_SECONDS)
    retry_after = (window + 1) * WINDOW_SECONDS - now
    count = None
    if settings.REDIS_URL and not redis_skipped(settings.REDIS_URL):
        key = f"{KEY_PREFIX}{ident}:{window}"
        try:
            # INCR is atomic on its own; the EXPIRE beside it needs no MULTI/EXEC (a second one is harmless).
            pipe = shared_redis(settings.REDIS_URL).pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count, _ = pipe.execute()
        except REDIS_ERRORS:
            # Redis gone: limit per process rather than fail every request or stop limiting at all.
            redis_failed(settings.REDIS_URL, BYPASS_SECONDS)
            logger.warning("rate limiter: Redis unavailable, counting in process", exc_info=True)
    if count is None:
        count = local_counter.incr(ident, window)
    return Decision(allowed=count <= limit, retry_after=retry_after)


def reset() -> None:
    """Forget in-process counts and any Redis bypass (tests)."""
    redis_failures_forget()
    local_counter.clear()


class ApiKeyRateThrottle(BaseThrottle):
    """A key's own rate_limit_per_minute, else settings.API_RATE_LIMIT_PER_MINUTE, per key (or session user)."""

    def allow_request(self, request, view) -> bool:
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
            if request.auth.rate_limit_per_minute is not None:
                limit = request.auth.rate_limit_per_minute
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return True  # unauthenticated requests are refused before anything is counted
        self.decision = hit(ident, limit=limit)
        return self.decision.allowed

    def wait(self) -> float:
        return self.decision.retry_after
