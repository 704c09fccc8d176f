"""A store's own usage per tool per week on its home page, and what each tool did."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.models import Conversation, Message, Run
from analytics.selectors import store_usage_by_week
from merchants.actors import Actor
from tests import factories
from tests.factories import MembershipFactory, MerchantFactory
from wallets import services

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def succeeded(merchant, *, tool: str, cost: int, key: str) -> Run:
    wallet = services.wallet_of(merchant=merchant)
    hold = services.hold_create(wallet=wallet, amount=cost * 2, key=f"{key}:hold", actor=SYSTEM)
    settlement = services.hold_post(hold=hold, amount=cost, key=f"{key}:settle", actor=SYSTEM)
    return Run.objects.create(
        merchant=merchant, tool=tool, status="succeeded", input={"product_name": key}, output={},
        model="qwen-plus", held=cost * 2, cost=cost, hold=hold, settlement=settlement,
        finished_at=settlement.created_at,
    )  # fmt: skip


def fund(merchant) -> None:
    factories.fund(merchant, 100_000, key=f"fund:{merchant.pk}")


def test_a_store_sees_its_runs_tokens_and_listings_written_this_week_and_nothing_of_others(client):
    member = MembershipFactory()
    other = MerchantFactory()
    fund(member.merchant), fund(other)
    succeeded(member.merchant, tool="listing-writer", cost=1_000, key="a")
    succeeded(member.merchant, tool="listing-writer", cost=500, key="b")
    succeeded(other, tool="listing-writer", cost=9_999, key="c")
    resolved = Conversation.objects.create(merchant=member.merchant)
    replied = timezone.now() - timedelta(days=2)
    Message.objects.create(conversation=resolved, role="customer", content="Hi", created_at=replied)
    Message.objects.create(conversation=resolved, role="assistant", content="Hello", created_at=replied)
    Conversation.objects.create(merchant=member.merchant, status="closed", handed_over_at=timezone.now())
    succeeded(member.merchant, tool="customer-service", cost=50, key="d")

    rows = {row["tool"]: row for row in store_usage_by_week(merchant=member.merchant)}

    assert (rows["listing-writer"]["runs"], rows["listing-writer"]["tokens"]) == (2, 1_500)
    assert rows["listing-writer"]["listings"] == 2
    assert rows["customer-service"]["resolved"] == 1  # the handed-over one was not the bot's
    client.force_login(member.user)
    page = client.get(reverse("home")).content.decode()
    assert 'data-testid="weekly-usage"' in page and "2 listings written" in page and "9,999" not in page


def test_a_store_without_runs_is_told_what_will_appear(client):
    member = MembershipFactory()
    client.force_login(member.user)
    page = client.get(reverse("home")).content.decode()
    assert "what they did each week" in page


def test_bot_outcomes_follow_the_support_outcomes_rule_for_every_store():
    from analytics.selectors import bot_outcomes
    from analytics.services import economics_refresh

    long_ago = timezone.now() - timedelta(days=3)
    first, second = MerchantFactory(), MerchantFactory()

    def conversation(merchant, *, replied_at=None, customer_after=False, handed=False):
        c = Conversation.objects.create(
            merchant=merchant, created_at=long_ago, handed_over_at=long_ago if handed else None
        )
        Message.objects.create(
            conversation=c, role="customer", content="Where is my order?", created_at=long_ago
        )
        if replied_at is not None:
            Message.objects.create(
                conversation=c, role="assistant", content="On its way.", created_at=replied_at
            )
        if customer_after:
            Message.objects.create(
                conversation=c, role="customer", content="It is not.", created_at=timezone.now()
            )

    conversation(first, replied_at=long_ago)  # resolved
    conversation(second, replied_at=long_ago)  # resolved, another store
    conversation(first, replied_at=timezone.now())  # pending: inside the 24 hours
    conversation(first, replied_at=long_ago, customer_after=True)  # open: the customer wrote last
    conversation(second, replied_at=long_ago, handed=True)  # handed over

    economics_refresh()  # the staff page reads the outcomes as of the last rebuild
    outcomes = bot_outcomes(since=long_ago.date() - timedelta(days=7), until=timezone.now().date())

    assert (outcomes.resolved, outcomes.pending, outcomes.open, outcomes.handed_over) == (2, 1, 1, 1)
    assert outcomes.resolution_rate == 50.0  # 2 of the 4 decided
