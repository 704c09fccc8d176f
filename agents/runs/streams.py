"""Live replies of the customer-service bot: the worker publishes the model's text to Redis as it arrives,
the dashboard reads it over server-sent events. Best effort: a Redis outage never fails or changes a run
(the stored reply, written when the run settles, is the truth); without REDIS_URL nothing is published.

Per run, a Redis list `run:<id>:stream` of text pieces (the raw JSON answer as streamed), expiring after
STREAM_TTL_SECONDS, and a pub/sub channel `run:<id>:events` that says when the list changed (`p`), started
over (`r`) or the run ended (`d`). Readers (agents.conversations.stream, an async view) wait on the channel
instead of polling, so an open stream costs a Redis connection and a coroutine, never a thread. A reader
stops when the run is finished (the database says so), then shows the stored reply.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from typing import Any

from django.conf import settings

from tokenhub.redis import shared_redis

logger = logging.getLogger(__name__)

STREAM_TTL_SECONDS = 600
_REPLY_START = re.compile(r'"reply"\s*:\s*"')


def stream_key(run_id: Any) -> str:
    return f"run:{run_id}:stream"


def events_channel(run_id: Any) -> str:
    return f"run:{run_id}:events"


PIECE, RESTART, DONE = b"p", b"r", b"d"


def _redis() -> Any | None:
    return shared_redis(settings.REDIS_URL) if settings.REDIS_URL else None


def stream_publish(run_id: Any, piece: str) -> None:
    if (client := _redis()) is None:
        return
    try:
        key = stream_key(run_id)
        (
            client.pipeline()
            .rpush(key, piece)
            .expire(key, STREAM_TTL_SECONDS)
            .publish(events_channel(run_id), PIECE)
            .execute()
        )
    except Exception:
        logger.warning("Could not publish a stream piece of run %s.", run_id, exc_info=True)


def stream_restart(run_id: Any) -> None:
    """A new attempt (a retry, or the repair call) starts the text over."""
    if (client := _redis()) is None:
        return
    try:
        client.pipeline().delete(stream_key(run_id)).publish(events_channel(run_id), RESTART).execute()
    except Exception:
        logger.warning("Could not reset the stream of run %s.", run_id, exc_info=True)


def stream_finish(run_id: Any) -> None:
    """The run ended (called after the commit that ended it): readers stop waiting and show the stored reply."""
    if (client := _redis()) is None:
        return
    try:
        client.publish(events_channel(run_id), DONE)
    except Exception:
        logger.warning("Could not announce the end of run %s.", run_id, exc_info=True)


def stream_text(run_id: Any) -> str:
    """The text streamed so far by the run's current attempt ("" when none, or Redis is unavailable)."""
    if (client := _redis()) is None:
        return ""
    try:
        return "".join(p.decode() for p in client.lrange(stream_key(run_id), 0, -1))
    except Exception:
        logger.warning("Could not read the stream of run %s.", run_id, exc_info=True)
        return ""


def partial_reply(text: str) -> str:
    """The `reply` string of a JSON answer that may still be arriving: what a customer can read so far."""
    match = _REPLY_START.search(text)
    if match is None:
        return ""
    body = text[match.end() :]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == '"':
            break
        if char == "\\":
            escape = body[i : i + 6] if body[i + 1 : i + 2] == "u" else body[i : i + 2]
            if len(escape) < 2 or (escape[1] == "u" and len(escape) < 6):
                break  # the escape is cut off: wait for the next piece
            with contextlib.suppress(ValueError):
                out.append(json.loads(f'"{escape}"'))
            i += len(escape)
            continue
        out.append(char)
        i += 1
    return "".join(out)
