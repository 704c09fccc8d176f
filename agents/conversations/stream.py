"""The live bot reply as server-sent events, served asynchronously: an open stream costs a coroutine and a
Redis connection, not a web thread.

Production routes these URLs to the ASGI process (gunicorn with uvicorn workers, platform/Procfile
`stream`; platform/nginx.conf sends them there); the WSGI process can serve the view too (it then consumes
the generator in one thread, which is fine for `make dev` and tests). The reader waits on the run's Redis
channel (agents.runs.streams), never polls, and stops when the run ends or after STREAM_SECONDS.

Open streams are capped per user and per store (STREAM_MAX_PER_USER, STREAM_MAX_PER_STORE) with Redis
counters that expire on their own if a process dies holding one: a member cannot hold every connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import weakref
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.translation import gettext

from agents import selectors
from agents.conversations import services
from agents.models import Run
from agents.runs import streams
from tokenhub.api.exceptions import error_json_response

logger = logging.getLogger(__name__)

# An open stream ends after this (the run's own deadline is shorter); the page's polling shows the reply.
STREAM_SECONDS = 120
# A comment line this often keeps proxies and browsers from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
SLOT_PREFIX = "streams:open:"

# One asyncio Redis pool per event loop: a uvicorn worker has one loop; WSGI (async_to_sync) and tests
# make short-lived ones, whose pools go with them.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def _client() -> aioredis.Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    return _clients[loop]


class StreamSlots:
    """The per-user and per-store count of open streams: taken before streaming, given back after."""

    def __init__(self, *, user_id: Any, merchant_id: Any):
        self.keys = [f"{SLOT_PREFIX}user:{user_id}", f"{SLOT_PREFIX}store:{merchant_id}"]
        self.limits = [settings.STREAM_MAX_PER_USER, settings.STREAM_MAX_PER_STORE]

    async def take(self, client: aioredis.Redis) -> bool:
        ttl = STREAM_SECONDS + 60  # a slot a dead process never gave back frees itself
        pipe = client.pipeline()
        for key in self.keys:
            pipe.incr(key)
            pipe.expire(key, ttl)
        counts = (await pipe.execute())[::2]
        if all(count <= limit for count, limit in zip(counts, self.limits, strict=True)):
            return True
        await self.give_back(client)
        return False

    async def give_back(self, client: aioredis.Redis) -> None:
        pipe = client.pipeline()
        for key in self.keys:
            pipe.decr(key)
        await pipe.execute()


def _event(reply: str) -> str:
    return f"data: {json.dumps({'reply': reply})}\n\n"


def _let_go_of_the_database() -> None:
    """Close this thread's connection between queries: a stream lives for minutes, and under ASGI each
    request has a thread (and so a connection) of its own; 50 open streams must not hold 50 connections.
    Inside a transaction (tests, a WSGI view's atomic block) the connection stays."""
    if not connection.in_atomic_block:
        connection.close()


def _finished_sync(run_id: Any) -> bool:
    try:
        return Run.objects.filter(pk=run_id, status__in=Run.TERMINAL).exists()
    finally:
        _let_go_of_the_database()


async def _finished(run_id: Any) -> bool:
    return await sync_to_async(_finished_sync)(run_id)


async def reply_events(run_id: Any, slots: StreamSlots) -> AsyncGenerator[str, None]:
    """The reply so far each time the worker adds to it, then `done`; gives the stream's slots back.

    It takes its own Redis client: a WSGI server runs the view and this generator in different loops."""
    client = _client()
    if client is None:  # the view streams only with Redis
        yield "event: done\ndata: {}\n\n"
        return
    pubsub = client.pubsub()
    try:
        yield ": open\n\n"  # servers send the headers with the first bytes: the browser knows it is connected
        await pubsub.subscribe(streams.events_channel(run_id))
        deadline = time.monotonic() + STREAM_SECONDS
        sent, check_finished = None, True
        while True:
            pieces = await client.lrange(streams.stream_key(run_id), 0, -1)
            reply = streams.partial_reply("".join(p.decode() if isinstance(p, bytes) else p for p in pieces))
            if reply and reply != sent:
                sent = reply
                yield _event(reply)
            if check_finished and await _finished(run_id):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=min(remaining, KEEPALIVE_SECONDS)
            )
            if message is None:
                yield ": keepalive\n\n"
                check_finished = True  # a lost `d` must not keep the stream open to its deadline
                continue
            check_finished = message.get("data") == streams.DONE
    except Exception:
        logger.warning("The live reply of run %s stopped early.", run_id, exc_info=True)
    finally:
        try:
            await pubsub.aclose()
            await slots.give_back(client)
        except Exception:
            logger.warning("Could not close the live reply of run %s cleanly.", run_id, exc_info=True)
    yield "event: done\ndata: {}\n\n"


def _sync_events(run_id: Any, slots: StreamSlots) -> Iterator[str]:
    """The same events for a WSGI server (the browser tests' live server, a WSGI-only deployment), which
    would otherwise collect an async stream whole before sending any of it: one event loop of its own,
    driven a step at a time from the WSGI thread."""
    loop = asyncio.new_event_loop()
    events = reply_events(run_id, slots)
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(events))
            except StopAsyncIteration:
                break
    finally:
        loop.run_until_complete(events.aclose())
        if (client := _clients.pop(loop, None)) is not None:
            loop.run_until_complete(client.aclose())
        loop.close()


def _member_run(request: HttpRequest, run_id: Any) -> tuple[Any, Any, Run | None]:
    try:
        membership = request.membership  # type: ignore[attr-defined]
        if not membership:
            return None, None, None
        merchant = membership.merchant
        return membership, merchant, selectors.run_of(merchant=merchant, run_id=run_id)
    finally:
        _let_go_of_the_database()


async def support_run_stream(request: HttpRequest, run_id: Any) -> HttpResponseBase:
    """Server-sent events: the bot's reply as the worker streams it, then `done` once the run finished."""
    user = await request.auser()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    membership, merchant, run = await sync_to_async(_member_run)(request, run_id)
    if membership is None or run is None or run.tool != services.TOOL:
        raise Http404(gettext("There is no such run in this store."))
    client = _client()
    if client is None or not settings.RUN_STREAM_REPLIES:
        # No Redis (embedded dev): nothing is streamed; the page's polling shows the stored reply.
        response: HttpResponse | StreamingHttpResponse = HttpResponse(
            "event: done\ndata: {}\n\n", content_type="text/event-stream"
        )
    else:
        slots = StreamSlots(user_id=user.pk, merchant_id=merchant.pk)
        if not await slots.take(client):
            retry_after = math.ceil(KEEPALIVE_SECONDS)
            refused = error_json_response(
                "rate_limited",
                gettext(
                    "Too many live replies are open for you or your store. Close some tabs of the support "
                    "console; replies still appear when they are finished."
                ),
                {"retry_after": retry_after},
            )
            refused["Retry-After"] = str(retry_after)
            return refused
        served_by_asgi = isinstance(request, ASGIRequest)
        content = reply_events(run.pk, slots) if served_by_asgi else _sync_events(run.pk, slots)
        response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
