"""One Redis client per URL and process, built once under a lock, failing fast.

Every part that uses Redis (API rate limits, the model rate limiter, reply streams, heartbeats, metrics,
the recovery lock) shares it. A client built twice by racing threads left the loser's connection pool to
the garbage collector, which closed sockets other threads were still reading (`OSError: Bad file
descriptor` under load). redis-py's default of retrying with backoff would stall a request for seconds
when Redis is gone; callers here degrade instead (see each caller), so one quick retry is enough.
`REDIS_ERRORS` is what a caller catches: redis-py raises OSError subclasses outside RedisError too.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_client(url: str) -> redis.Redis:
    """A new client that fails fast (for code that must not share the process-wide one)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def shared_redis(url: str) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis_client(url)
    return client


# Callers on the request path (API rate limit, API key cache) skip Redis for a few seconds after it failed,
# so an unreachable Redis costs one connect timeout per process every few seconds, not one per request.
_down_until: dict[str, float] = {}


def redis_skipped(url: str) -> bool:
    return time.monotonic() < _down_until.get(url, 0.0)


def redis_failed(url: str, seconds: float = 5.0) -> None:
    _down_until[url] = time.monotonic() + seconds


def redis_failures_forget() -> None:
    _down_until.clear()
