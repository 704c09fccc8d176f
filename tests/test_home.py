"""The dashboard home: balance, tokens used this month, usage per day per tool, recent activity."""

import pytest
from django.urls import reverse

from agents import selectors
from agents.models import Run
from merchants.actors import Actor
from tests.factories import MembershipFactory
from wallets import services

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _charge(merchant, *, tool: str, cost: int, key: str) -> None:
    """A succeeded run as the worker leaves it: held, charged, settled."""
    wallet = services.wallet_of(merchant=merchant)
    hold = services.hold_create(wallet=wallet, amount=cost * 2, key=f"{key}:hold", actor=SYSTEM)
    settlement = services.hold_post(hold=hold, amount=cost, key=f"{key}:settle", actor=SYSTEM)
    Run.objects.create(
        merchant=merchant,
        tool=tool,
        status="succeeded",
        input={"product_name": key},
        output={},
        model="qwen-plus",
        held=cost * 2,
        cost=cost,
        hold=hold,
        settlement=settlement,
        finished_at=settlement.created_at,
    )


@pytest.fixture
def member(client):
    membership = MembershipFactory()
    services.promotion_credit(
        wallet=services.wallet_of(merchant=membership.merchant), amount=100_000, key="home:fund", actor=SYSTEM
    )
    client.force_login(membership.user)
    return membership


def test_home_shows_tokens_used_this_month_net_of_refunds(client, member):
    _charge(member.merchant, tool="listing-writer", cost=1_200, key="a")
    _charge(member.merchant, tool="marketing-copy", cost=300, key="b")
    services.refund_credit(
        wallet=services.wallet_of(merchant=member.merchant), amount=200, key="a:refund", actor=SYSTEM
    )

    page = client.get(reverse("home")).content.decode()

    assert 'data-testid="used-this-month">1,300<' in page


def test_usage_per_day_splits_tokens_by_tool_and_keeps_empty_days(member):
    _charge(member.merchant, tool="listing-writer", cost=1_200, key="a")
    _charge(member.merchant, tool="marketing-copy", cost=300, key="b")

    usage = selectors.usage_by_day(merchant=member.merchant, days=7)

    assert len(usage) == 7
    assert usage[-1]["tools"] == {"listing-writer": 1_200, "marketing-copy": 300}
    assert usage[-1]["total"] == 1_500
    assert all(day["total"] == 0 for day in usage[:-1])


def test_usage_never_counts_another_merchants_runs(member):
    other = MembershipFactory()
    services.promotion_credit(
        wallet=services.wallet_of(merchant=other.merchant), amount=10_000, key="other:fund", actor=SYSTEM
    )
    _charge(other.merchant, tool="listing-writer", cost=999, key="other")

    assert sum(day["total"] for day in selectors.usage_by_day(merchant=member.merchant)) == 0


def test_a_low_balance_shows_a_banner(client):
    membership = MembershipFactory()
    client.force_login(membership.user)

    assert "balance is low" in client.get(reverse("home")).content.decode()


def test_a_healthy_balance_shows_no_banner(client, member):
    assert "balance is low" not in client.get(reverse("home")).content.decode()
