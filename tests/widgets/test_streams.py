"""The widget's event stream: the reply as the worker streams it, new messages, a person joining; it ends
once nothing is awaited, and only the conversation's own visitor may read it."""

import json

import pytest

from agents.conversations import services as conversations
from agents.models import Run
from agents.runs import streams
from agents.runs.settle import run_cancel
from merchants.actors import Actor
from tests.factories import MembershipFactory, WidgetFactory
from tests.plugins.workers import funded
from wallets.reconcile import reconcile_ledger
from widgets import services

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SHOP = "https://shop.example"


def events_of(response):
    buffer = ""
    for chunk in response.streaming_content:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            lines = dict(line.split(": ", 1) for line in block.splitlines())
            yield lines["event"], json.loads(lines["data"])


def open_stream(client, widget, visitor_id, token, after=0):
    return client.get(
        f"/widget/v1/conversations/{visitor_id}/events",
        {"after": after},
        HTTP_X_WIDGET_KEY=widget.public_key,
        HTTP_ORIGIN=SHOP,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_stream_shows_the_reply_as_it_is_written_and_ends_when_the_run_does(client, broker):
    widget = WidgetFactory(merchant=funded(1_000_000))
    visitor, token = services.visitor_start(widget=widget, origin=SHOP, client="1.2.3.4")
    _message, run = services.visitor_message(visitor=visitor, content="Do you ship to Canada?")
    streams.stream_publish(run.pk, '{"reply": "Yes, we ship to Can')

    response = open_stream(client, widget, visitor.pk, token)
    assert response["Content-Type"] == "text/event-stream" and response["Access-Control-Allow-Origin"] == SHOP
    seen = []
    for name, data in events_of(response):
        seen.append((name, data.get("reply") or data.get("role") or data.get("status") or ""))
        if name == "reply":
            run_cancel(run=Run.objects.get(pk=run.pk), actor=Actor.system("test"))

    assert seen[:3] == [("status", "open"), ("message", "customer"), ("reply", "Yes, we ship to Can")]
    assert seen[-1][0] == "end"
    assert reconcile_ledger() == []


def test_while_a_person_is_awaited_their_reply_arrives_on_the_stream(client, broker):
    widget = WidgetFactory(merchant=funded(1_000_000))
    visitor, token = services.visitor_start(widget=widget, origin=SHOP, client="1.2.3.4")
    services.visitor_hand_over(visitor=visitor)
    user = MembershipFactory(merchant=widget.merchant).user

    response = open_stream(client, widget, visitor.pk, token)
    seen = []
    for name, data in events_of(response):
        seen.append((name, data))
        if name == "status" and data["human"]:
            conversations.staff_reply(conversation=visitor.conversation, user=user, content="Hi, Sam here.")
        if name == "message":
            conversations.staff_reply(conversation=visitor.conversation, user=user, then="bot")

    assert seen[0] == ("status", {"status": "needs_human", "human": True})
    assert ("message", "staff", "Hi, Sam here.") in [(n, d.get("role"), d.get("content")) for n, d in seen]
    assert seen[-1][0] == "end"  # handed back to the bot: nothing is awaited any more


def test_another_visitors_token_reads_no_stream(client):
    widget = WidgetFactory(merchant=funded(0))
    visitor, _token = services.visitor_start(widget=widget, origin=SHOP, client="1.2.3.4")
    _other, other_token = services.visitor_start(widget=widget, origin=SHOP, client="1.2.3.5")

    response = open_stream(client, widget, visitor.pk, other_token)

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
