"""The customer-service bot's conversations, worked by a real Celery worker against the simulator.

Each customer turn is a held run that replays the conversation; the reply joins the conversation in the
same commit as the charge; a hand-over stops the bot (and the charges); moderation drops a message from
later turns; the ledger reconciles after every scenario.
"""

import pytest

from agents.conversations import services as conversations
from agents.errors import ConversationClosed
from agents.models import Conversation, Message, Run
from agents.runs.estimate import run_messages, tool_of
from tests.factories import UserFactory
from tests.plugins.workers import (
    SYSTEM,
    charged,
    funded,
    wait_finished,
    wallet,
)
from wallets.exceptions import InsufficientTokens
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

TOKENS = 5_000_000
KNOWLEDGE = (
    "Shipping: we ship to Canada and the United States; delivery takes 5 to 7 days.\n\n"
    "Returns: unworn shoes can be returned within 30 days for a full refund."
)


def store(tokens: int = TOKENS):
    return funded(tokens, knowledge_base=KNOWLEDGE)


def turn(conversation, text, **fields):
    message, run = conversations.message_post(conversation=conversation, content=text, actor=SYSTEM, **fields)
    return message, run


def test_a_customer_message_is_a_held_run_and_the_reply_joins_the_conversation(llm_endpoint, celery_worker):
    merchant = store()
    conversation, asked, run = conversations.conversation_start(
        merchant=merchant, actor=SYSTEM, customer_ref="cust-1", message="Do you ship to Canada?"
    )
    assert run.status == "queued" and run.held > 0 and run.tool == "customer-service"
    assert asked.run_id == run.pk and asked.role == "customer"
    assert run.input == {"conversation": str(conversation.pk), "message": "Do you ship to Canada?"}

    (run,) = wait_finished(run)

    assert run.status == "succeeded", run.error_message
    assert run.cost == charged(run) > 0
    reply = Message.objects.get(run=run, role="assistant")
    assert reply.conversation_id == conversation.pk
    assert "Canada" in reply.content and reply.sources == ["kb-1"]
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert wallet(merchant).balance == TOKENS - run.cost
    assert reconcile_ledger() == []


def test_the_second_turn_replays_the_first_and_its_hold_covers_it(llm_endpoint, celery_worker):
    merchant = store()
    conversation, first, run1 = conversations.conversation_start(
        merchant=merchant, actor=SYSTEM, message="Do you ship to Canada?"
    )
    (run1,) = wait_finished(run1)
    _, run2 = turn(conversation, "And how long does delivery take to Canada?")
    (run2,) = wait_finished(run2)
    assert run2.status == "succeeded", run2.error_message

    messages = run_messages(
        tool=tool_of("customer-service"), input=run2.input, merchant=merchant, before=run2.created_at
    )
    reply1 = Message.objects.get(run=run1, role="assistant")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == first.content
    assert messages[2]["content"] == reply1.content
    assert messages[3]["content"] == "And how long does delivery take to Canada?"
    # Each turn bills the whole history again: the second prompt is the first plus two turns.
    assert run2.input_tokens > run1.input_tokens
    assert run2.held > run1.held
    assert [m.role for m in conversation.messages.all()] == ["customer", "assistant", "customer", "assistant"]
    assert reconcile_ledger() == []


def test_a_hand_over_stops_the_bot_and_later_messages_are_not_charged(llm_endpoint, celery_worker):
    merchant = store()
    conversation, _, run = conversations.conversation_start(
        merchant=merchant, actor=SYSTEM, message="I want to speak to a person about my order."
    )
    (run,) = wait_finished(run)
    conversation.refresh_from_db()
    assert run.status == "succeeded"
    assert conversation.status == "needs_human" and conversation.handed_over_at is not None
    balance = wallet(merchant).balance
    transfers = Transfer.objects.count()

    waiting, no_run = turn(conversation, "Hello? Is anyone there?")

    assert no_run is None and waiting.run is None
    assert Run.objects.filter(merchant=merchant).count() == 1
    assert (wallet(merchant).balance, Transfer.objects.count()) == (balance, transfers)

    # Staff answer for free, then hand back to the bot: the next message is a paid run again.
    staff = UserFactory()
    reply = conversations.staff_reply(
        conversation=conversation, user=staff, content="Hi, Anna here.", then="bot"
    )
    assert reply.role == "staff" and reply.author == staff and reply.run is None
    assert (wallet(merchant).balance, Transfer.objects.count()) == (balance, transfers)
    conversation.refresh_from_db()
    assert conversation.status == "open"
    _, run2 = turn(conversation, "Do you ship to Canada?")
    (run2,) = wait_finished(run2)
    history = run_messages(
        tool=tool_of("customer-service"), input=run2.input, merchant=merchant, before=run2.created_at
    )
    assert {"role": "assistant", "content": "Hi, Anna here."} in history
    assert {"role": "user", "content": "Hello? Is anyone there?"} in history
    assert reconcile_ledger() == []


def test_a_moderated_message_is_flagged_and_left_out_of_the_next_turn(llm_endpoint, celery_worker):
    merchant = store()
    conversation = conversations.conversation_start(merchant=merchant, actor=SYSTEM)[0]
    llm_endpoint.fault("moderation", match="forbidden words")
    bad, run1 = turn(conversation, "Some forbidden words about shipping")
    (run1,) = wait_finished(run1)
    assert run1.status == "failed" and run1.error_code == "moderation"
    assert charged(run1) == 0 and run1.cost == 0
    bad.refresh_from_db()
    assert bad.flagged

    _, run2 = turn(conversation, "Do you ship to Canada?")
    (run2,) = wait_finished(run2)

    assert run2.status == "succeeded", run2.error_message
    history = run_messages(
        tool=tool_of("customer-service"), input=run2.input, merchant=merchant, before=run2.created_at
    )
    assert all("forbidden words" not in m["content"] for m in history)
    assert reconcile_ledger() == []


@pytest.mark.django_db(transaction=False)
def test_too_few_tokens_stores_no_message_and_holds_nothing():
    merchant = store(tokens=10)
    conversation = conversations.conversation_start(merchant=merchant, actor=SYSTEM)[0]

    with pytest.raises(InsufficientTokens):
        turn(conversation, "Do you ship to Canada?")
    with pytest.raises(InsufficientTokens):
        conversations.conversation_start(merchant=merchant, actor=SYSTEM, message="Do you ship to Canada?")

    assert Message.objects.count() == 0
    assert Conversation.objects.filter(merchant=merchant).count() == 1
    assert Run.objects.count() == 0
    assert wallet(merchant).debits_pending == 0
    assert reconcile_ledger() == []


@pytest.mark.django_db(transaction=False)
def test_a_closed_conversation_refuses_messages_and_a_replayed_key_answers_the_first_message():
    merchant = store()
    conversation = conversations.conversation_start(merchant=merchant, actor=SYSTEM)[0]
    first, run = turn(conversation, "Do you ship to Canada?", idempotency_key="k-1")
    again, same = turn(conversation, "Do you ship to Canada?", idempotency_key="k-1")
    assert (again.pk, same.pk) == (first.pk, run.pk)
    assert Message.objects.count() == 1

    conversations.staff_reply(conversation=conversation, user=UserFactory(), then="close")
    with pytest.raises(ConversationClosed):
        turn(conversation, "Hello?")
    assert Message.objects.count() == 1
    assert reconcile_ledger() == []


def test_the_worker_streams_the_reply_and_the_dashboard_reads_it_over_sse(
    llm_endpoint, celery_worker, client
):
    from django.urls import reverse

    from agents.runs import streams
    from tests.factories import MembershipFactory

    membership = MembershipFactory()
    merchant = membership.merchant
    merchant.knowledge_base = KNOWLEDGE
    merchant.save()
    from wallets.services import promotion_credit, wallet_of

    promotion_credit(wallet=wallet_of(merchant=merchant), amount=TOKENS, key="test:sse", actor=SYSTEM)
    _, _, run = conversations.conversation_start(
        merchant=merchant, actor=SYSTEM, message="Do you ship to Canada?"
    )
    (run,) = wait_finished(run)
    assert run.status == "succeeded", run.error_message

    streamed = streams.stream_text(run.pk)
    reply = Message.objects.get(run=run, role="assistant").content
    assert streams.partial_reply(streamed) == reply == run.output["reply"]
    assert run.cost == charged(run)

    client.force_login(membership.user)
    response = client.get(reverse("support-run-stream", args=[run.pk]))
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response).decode()  # the async stream, consumed as a WSGI server would
    assert body.startswith(": open\n\ndata: ") and "Canada" in body
    assert body.endswith("event: done\ndata: {}\n\n")
    other = MembershipFactory()
    client.force_login(other.user)
    assert client.get(reverse("support-run-stream", args=[run.pk])).status_code == 404
    assert reconcile_ledger() == []


def test_a_partial_reply_is_read_from_json_that_is_still_arriving():
    from agents.runs.streams import partial_reply

    assert partial_reply('{"rep') == ""
    assert partial_reply('{"reply": "Yes, we ship to Can') == "Yes, we ship to Can"
    assert (
        partial_reply(
            '{"reply": "Say \\"hi\\" \\u00e9',
        )
        == 'Say "hi" é'
    )
    assert partial_reply('{"reply": "cut \\u00') == "cut "
    assert partial_reply('{"reply": "done", "needs_human": false}') == "done"
