"""The live reply stream (an async view): it follows the worker's pieces through Redis without polling,
ends as soon as the run does, and each user and store may hold only so many open at once."""

import json
import threading
import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.urls import reverse

from agents.conversations import services as conversations
from agents.conversations import stream
from agents.runs import streams
from agents.runs.settle import run_cancel
from tests.factories import MembershipFactory
from tests.plugins.workers import SYSTEM, funded

pytestmark = [pytest.mark.redis]


@pytest.fixture(autouse=True)
def _no_open_slots():
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{stream.SLOT_PREFIX}*"))
    if keys:
        client.delete(*keys)


def _member_with_a_waiting_run():
    merchant = funded(1_000_000)
    membership = MembershipFactory(merchant=merchant, role="staff")
    _, _, run = conversations.conversation_start(
        merchant=merchant, actor=SYSTEM, message="Do you ship to Canada?"
    )
    return membership, run


def _events(body: str) -> list[str]:
    return [json.loads(line[6:])["reply"] for line in body.split("\n") if line.startswith('data: {"reply')]


@pytest.mark.django_db(transaction=True)
def test_the_stream_follows_the_workers_pieces_and_ends_when_the_run_does(client):
    membership, run = _member_with_a_waiting_run()
    client.force_login(membership.user)

    def worker():
        time.sleep(0.5)
        streams.stream_publish(run.pk, '{"reply": "We ship')
        time.sleep(0.2)
        streams.stream_publish(run.pk, ' to Canada."')
        time.sleep(0.2)
        run_cancel(run=run, actor=SYSTEM)  # any end of the run announces itself on the channel
        connection.close()

    thread = threading.Thread(target=worker)
    started = time.monotonic()
    thread.start()
    response = client.get(reverse("support-run-stream", args=[run.pk]))
    body = b"".join(response).decode()
    thread.join()

    assert response["Content-Type"] == "text/event-stream"
    assert _events(body)[-1] == "We ship to Canada."
    assert body.endswith("event: done\ndata: {}\n\n")
    assert time.monotonic() - started < 5  # the `done` message ended it, not the deadline
    slots = redis.Redis.from_url(settings.REDIS_URL)
    assert int(slots.get(f"{stream.SLOT_PREFIX}user:{membership.user.pk}")) == 0  # given back


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["user", "store"])
def test_one_stream_too_many_is_refused_with_429_and_the_error_body(client, whose):
    membership, run = _member_with_a_waiting_run()
    client.force_login(membership.user)
    owner_id = membership.user.pk if whose == "user" else membership.merchant.pk
    limit = settings.STREAM_MAX_PER_USER if whose == "user" else settings.STREAM_MAX_PER_STORE
    slots = redis.Redis.from_url(settings.REDIS_URL)
    slots.set(f"{stream.SLOT_PREFIX}{whose}:{owner_id}", limit)

    response = client.get(reverse("support-run-stream", args=[run.pk]))

    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and "Too many live replies" in error["message"]
    assert int(slots.get(f"{stream.SLOT_PREFIX}user:{membership.user.pk}") or 0) == (
        limit if whose == "user" else 0
    )  # the refused request took nothing


@pytest.mark.django_db
def test_another_stores_run_has_no_stream(client):
    _, run = _member_with_a_waiting_run()
    client.force_login(MembershipFactory().user)

    assert client.get(reverse("support-run-stream", args=[run.pk])).status_code == 404
