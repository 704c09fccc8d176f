"""The support bot in the browser: a test conversation answered by a real worker against the simulator,
then handed to a person, who replies from the inbox."""

import pytest
from playwright.sync_api import expect

from merchants.actors import Actor
from wallets.reconcile import reconcile_ledger

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def test_the_bot_answers_a_test_conversation_then_hands_over_to_staff(
    page, logged_in, llm_endpoint, celery_worker, screenshot
):
    page.goto("/")
    page.get_by_role("link", name="Support").click()
    page.get_by_label("Pretend customer").fill("Ana (test)")
    page.get_by_label("First message").fill("Do you ship to Canada?")
    page.get_by_role("button", name="Start conversation").click()

    expect(page.get_by_test_id("message-assistant")).to_contain_text("Canada", timeout=30_000)
    expect(page.get_by_test_id("message-assistant")).to_contain_text("kb-1")
    screenshot(page, "support-bot-reply")

    page.get_by_label("Customer message").fill("I want to talk to a person about a refund.")
    page.get_by_role("button", name="Send as customer").click()
    expect(page.get_by_test_id("message-assistant")).to_have_count(2, timeout=30_000)
    page.reload()
    expect(page.get_by_test_id("conversation-status")).to_have_text("Needs a human")

    page.get_by_role("link", name="← Support bot").click()
    expect(page.get_by_test_id("inbox")).to_contain_text("Ana (test)")
    screenshot(page, "support-inbox")
    page.get_by_test_id("inbox").get_by_role("link", name="Ana (test)").click()
    page.get_by_label("Staff reply").fill("Hi Ana, this is Sam. I have refunded your order.")
    page.get_by_role("button", name="Reply & hand back to bot").click()
    expect(page.get_by_test_id("message-staff")).to_contain_text("this is Sam")
    expect(page.get_by_test_id("conversation-status")).to_have_text("Open")
    screenshot(page, "support-staff-reply")
    assert reconcile_ledger() == []


def test_the_reply_shows_live_while_the_worker_streams_it(page, logged_in, broker, screenshot):
    from agents.conversations import services as conversations
    from agents.runs import streams
    from agents.runs.settle import run_cancel

    conversation, _, run = conversations.conversation_start(
        merchant=logged_in.merchant,
        actor=Actor.system("test"),
        customer_ref="Live",
        message="Ship to Canada?",
    )
    # No worker: the run stays queued while we publish what a streaming worker would.
    streams.stream_publish(run.pk, '{"reply": "Yes! We ship to Canada; delivery ')
    streams.stream_publish(run.pk, "takes 5 to")

    page.goto(f"/support/{conversation.pk}/")

    expect(page.get_by_test_id("live-reply")).to_have_text("Yes! We ship to Canada; delivery takes 5 to")
    expect(page.get_by_test_id("bot-typing")).to_be_visible()
    screenshot(page, "support-live-reply")
    run_cancel(run=run, actor=Actor.system("test"))  # ends the event stream
    expect(page.get_by_test_id("live-reply")).to_be_hidden(timeout=5_000)
    assert reconcile_ledger() == []
