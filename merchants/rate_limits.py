"""Per-key (and per-user) request counts that hold under concurrency: the core the API's throttle and the
chat widget's limits share.

DRF's cache throttles read the history, decide, then write it back: concurrent requests all read the same
count and all pass (DRF #8127). Here the count is one atomic INCR in Redis (a fixed window per minute,
sent with its EXPIRE in one round trip), so of N simultaneous requests exactly `limit` pass. Without Redis
(embedded dev) an in-process counter under a lock does the same for one process; so does a failing Redis,
and for BYPASS_SECONDS after a failure it is not asked at all, so a dead Redis does not add its connect
timeout to every request.

A caller already talking to Redis can count a hit in its own pipeline (`count_in`, then `decide`): the API
key authentication does, so a call with a known key costs one round trip for both.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

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


@dataclass(frozen=True, slots=True)
class Counted:
    """One hit counted in Redis: the count it made in its window, and when."""

    count: int
    at: float


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


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def key_ident(api_key_id: int) -> str:
    """Whose count a call made with an API key adds to."""
    return f"key:{api_key_id}"


def count_in(pipe: Any, ident: str, now: float) -> None:
    """Queue one hit for `ident` at `now` on a Redis pipeline: its result is the INCR's, then EXPIRE's."""
    key = f"{KEY_PREFIX}{ident}:{_window(now)}"
    # INCR is atomic on its own; the EXPIRE beside it needs no MULTI/EXEC (a second one is harmless).
    pipe.incr(key)
    pipe.expire(key, WINDOW_SECONDS * 2)


def decide(counted: Counted, *, limit: int) -> Decision:
    """Allowed while the hit's count is within `limit`; else when its window ends."""
    ends = (_window(counted.at) + 1) * WINDOW_SECONDS
    return Decision(allowed=counted.count <= limit, retry_after=ends - counted.at)


def hit(ident: str, *, limit: int, now: float | None = None) -> Decision:
    """Count one request for `ident` in the current minute; allowed while the count is within `limit`."""
    now = clock() if now is None else now
    count = None
    if settings.REDIS_URL and not redis_skipped(settings.REDIS_URL):
        try:
            pipe = shared_redis(settings.REDIS_URL).pipeline(transaction=False)
            count_in(pipe, ident, now)
            count, _ = pipe.execute()
        except REDIS_ERRORS:
            # Redis gone: limit per process rather than fail every request or stop limiting at all.
            redis_failed(settings.REDIS_URL, BYPASS_SECONDS)
            logger.warning("rate limiter: Redis unavailable, counting in process", exc_info=True)
    if count is None:
        count = local_counter.incr(ident, _window(now))
    return decide(Counted(count=count, at=now), limit=limit)


def reset() -> None:
    """Forget in-process counts and any Redis bypass (tests)."""
    redis_failures_forget()
    local_counter.clear()
