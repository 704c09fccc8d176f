"""The end of a run is announced on its live-reply channel only where a reply streams: the bot's."""

import time

import pytest
import redis
from django.conf import settings

from agents.conversations import services as conversations
from agents.runs import streams
from agents.runs.create import run_create
from agents.runs.settle import run_cancel
from tests.plugins.workers import SYSTEM, funded, listing

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


def _announced_ends(subscriber, seconds: float = 0.5) -> list[bytes]:
    ends, until = [], time.monotonic() + seconds
    while (
        message := subscriber.get_message(ignore_subscribe_messages=True, timeout=until - time.monotonic())
    ) or (time.monotonic() < until):
        if message and message["data"] == streams.DONE:
            ends.append(message["channel"])
    return ends


def test_a_bot_runs_end_is_announced_and_a_listing_runs_is_not(django_capture_on_commit_callbacks):
    merchant = funded(1_000_000)
    subscriber = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    subscriber.psubscribe(streams.events_channel("*"))
    _, _, bot_run = conversations.conversation_start(merchant=merchant, actor=SYSTEM, message="Do you ship?")
    listing_run = run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM)

    with django_capture_on_commit_callbacks(execute=True):
        run_cancel(run=listing_run, actor=SYSTEM)
        run_cancel(run=bot_run, actor=SYSTEM)

    assert _announced_ends(subscriber) == [streams.events_channel(bot_run.pk).encode()]
    subscriber.close()
