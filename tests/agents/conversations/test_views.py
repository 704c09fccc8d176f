"""The support pages: a test console that starts paid bot turns, and the inbox where staff answer free."""

import pytest
from django.urls import reverse

from agents.conversations import services as conversations
from agents.models import Conversation, Message, Run
from merchants.actors import Actor
from tests.api.conftest import settle
from tests.factories import MembershipFactory
from wallets import services
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="staff")
    services.promotion_credit(
        wallet=services.wallet_of(merchant=membership.merchant),
        amount=500_000,
        key=f"fund:{membership.merchant.pk}",
        actor=Actor.system("test"),
    )
    client.force_login(membership.user)
    return membership


def test_the_console_starts_a_conversation_with_a_held_bot_run(client, member):
    response = client.post(reverse("support"), {"customer_ref": "Ana", "message": "Do you ship to Canada?"})

    conversation = Conversation.objects.get(merchant=member.merchant)
    assert response.status_code == 302
    assert response["Location"] == reverse("support-conversation", args=[conversation.id])
    run = Run.objects.get(merchant=member.merchant)
    assert run.tool == "customer-service" and run.status == "queued"
    page = client.get(response["Location"]).content.decode()
    assert "Do you ship to Canada?" in page and "The bot is answering" in page
    assert 'hx-trigger="every 1s"' in page


def test_a_handed_over_conversation_is_in_the_inbox_and_staff_answer_free(client, member):
    conversation, _, run = conversations.conversation_start(
        merchant=member.merchant, actor=Actor.system("t"), customer_ref="Bo", message="A person please"
    )
    settle(run.id, output={"reply": "Handing over.", "needs_human": True, "sources": []})
    inbox = client.get(reverse("support")).content.decode()
    assert "Bo" in inbox and "Needs a human" in inbox and 'href="/support/' in inbox
    transfers = Transfer.objects.count()

    response = client.post(
        reverse("support-staff-reply", args=[conversation.id]), {"content": "Hi, Anna here.", "then": "bot"}
    )

    assert response.status_code == 302
    staff = Message.objects.get(conversation=conversation, role="staff")
    assert staff.author == member.user and staff.run is None
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert Transfer.objects.count() == transfers
    assert (
        "Hi, Anna here."
        in client.get(reverse("support-conversation", args=[conversation.id])).content.decode()
    )
    assert reconcile_ledger() == []


def test_another_stores_conversation_is_404(client, member):
    other = MembershipFactory().merchant
    conversation = Conversation.objects.create(merchant=other)
    assert client.get(reverse("support-conversation", args=[conversation.id])).status_code == 404
    response = client.post(reverse("support-staff-reply", args=[conversation.id]), {"content": "x"})
    assert response.status_code == 404
    assert not Message.objects.exists()
