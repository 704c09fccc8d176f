"""The Redis broker transport: kombu's, keeping one Redis client per channel for its synchronous commands.

kombu wraps the channel's connection pool in a new `redis.Redis` for every publish (and every other
synchronous command). The pool is what holds connections; the wrapper is thread-safe and costs nothing to
keep, but building one takes a sizeable share of a publish's CPU with redis-py 8. Every run is published
at least once from the web process and again on every retry, so the channel keeps one. The connections,
their pool and its shutdown are kombu's, unchanged. Chosen for `redis://` brokers in settings
(CELERY_BROKER_TRANSPORT).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    @cached_property
    def _sync_client(self) -> Any:
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._sync_client


class Transport(kombu_redis.Transport):
    Channel = Channel
