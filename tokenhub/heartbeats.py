"""Liveness of the background processes, as heartbeats rather than guesses.

Each worker process (from its heartbeat thread) and beat record `beat(kind)` every few seconds; /healthz
reads `last_seen(kind)`. In Redis a heartbeat is a key per process that expires by itself, so a dead
process disappears without anyone cleaning up. Without Redis (the embedded dev mode) it is a file per
process under `.dev/heartbeats/`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, cast

from django.conf import settings

from tokenhub.redis import REDIS_ERRORS, shared_redis

logger = logging.getLogger(__name__)

PREFIX = "tokenhub:heartbeat"
TTL_SECONDS = 120
_IDENTITY = f"{socket.gethostname()}:{os.getpid()}"


def _folder() -> Path:
    return Path(settings.BASE_DIR) / ".dev" / "heartbeats"


def beat(kind: str, **info: Any) -> None:
    record = json.dumps({"at": time.time(), "process": _IDENTITY, **info})
    if settings.REDIS_URL:
        try:
            shared_redis(settings.REDIS_URL).set(f"{PREFIX}:{kind}:{_IDENTITY}", record, ex=TTL_SECONDS)
        except REDIS_ERRORS:
            logger.warning("Could not record the %s heartbeat in Redis.", kind, exc_info=True)
        return
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{kind}-{_IDENTITY.replace(':', '-')}.json").write_text(record)


def last_seen(kind: str) -> float | None:
    """When any process of this kind last beat (Unix time), or None if none did within the TTL."""
    records: list[str] = []
    if settings.REDIS_URL:
        client = shared_redis(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{PREFIX}:{kind}:*", count=100))
        # The shared client does not decode responses, so values come back as bytes.
        values = cast("list[bytes | None]", client.mget(keys)) if keys else []
        records = [value.decode() for value in values if value]
    elif _folder().is_dir():
        records = [path.read_text() for path in _folder().glob(f"{kind}-*.json")]
    times = []
    for record in records:
        try:
            times.append(float(json.loads(record)["at"]))
        except (ValueError, KeyError, TypeError):
            continue
    latest = max(times, default=None)
    return latest if latest is not None and time.time() - latest < TTL_SECONDS else None
