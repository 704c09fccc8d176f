"""The operator's analytics page and a store's weekly usage in headless Chromium: CSP-clean, screenshots."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Run
from analytics.services import economics_refresh
from merchants.actors import Actor
from tests.factories import PASSWORD, MembershipFactory, TopupPaymentFactory, UserFactory
from wallets import services

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SYSTEM = Actor.system("test")


def charged_run(merchant, *, tool: str, cost: int, weeks_ago: int, provider_usd: str) -> None:
    wallet = services.wallet_of(merchant=merchant)
    key = uuid.uuid4().hex
    hold = services.hold_create(wallet=wallet, amount=cost * 2, key=f"{key}:hold", actor=SYSTEM)
    settlement = services.hold_post(hold=hold, amount=cost, key=f"{key}:settle", actor=SYSTEM)
    created = timezone.now() - timedelta(weeks=weeks_ago)
    Run.objects.create(
        merchant=merchant, tool=tool, status="succeeded", input={"product_name": key}, output={},
        model="qwen-plus" if tool != "customer-service" else "qwen-flash", held=cost * 2, cost=cost,
        hold=hold, settlement=settlement, created_at=created, finished_at=created,
        provider_input_tokens=cost, provider_output_tokens=cost // 3, provider_cost_usd=Decimal(provider_usd),
    )  # fmt: skip


def test_the_analytics_page_draws_its_charts_and_cohorts_under_the_csp(page, screenshot):
    stores = [MembershipFactory(merchant__name=f"Store {n}").merchant for n in range(4)]
    for n, merchant in enumerate(stores):
        session = f"cs_test_{uuid.uuid4().hex}"
        transfer = services.topup_credit(
            wallet=services.wallet_of(merchant=merchant),
            amount=2_000_000,
            key=f"stripe:{session}",
            actor=SYSTEM,
        )
        TopupPaymentFactory(merchant=merchant, tokens=2_000_000, amount_cents=1_000, transfer=transfer,
                            checkout_session_id=session)  # fmt: skip
        for weeks_ago in range(6 - n, 0, -1):
            charged_run(
                merchant, tool="listing-writer", cost=40_000, weeks_ago=weeks_ago, provider_usd="0.05"
            )
            if n % 2:
                charged_run(
                    merchant, tool="customer-service", cost=5_000, weeks_ago=weeks_ago, provider_usd="0.4"
                )
    economics_refresh()
    staff = UserFactory(email="ops@tokenhub.example", is_staff=True, is_superuser=True)

    page.goto("/admin/login/")
    page.locator("#id_username").fill(staff.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Usage, revenue, provider cost, margin and retention").click()

    expect(page.get_by_test_id("analytics-tools")).to_contain_text("listing-writer")
    expect(page.get_by_test_id("analytics-top-loss")).to_contain_text("Store")
    assert page.locator("svg rect").count() > 10
    expect(page.get_by_test_id("analytics-cohorts")).to_contain_text("%")
    screenshot(page, "staff-analytics")


def test_a_store_sees_what_its_tools_did_each_week(page, log_in, screenshot):
    membership = MembershipFactory(merchant__name="Bamboo Goods")
    services.promotion_credit(
        wallet=services.wallet_of(merchant=membership.merchant), amount=500_000, key="e2e:fund", actor=SYSTEM
    )
    for weeks_ago in (0, 1, 1, 2):
        charged_run(
            membership.merchant, tool="listing-writer", cost=1_200, weeks_ago=weeks_ago, provider_usd="0"
        )
    log_in(membership.user)
    expect(page.get_by_test_id("weekly-usage")).to_contain_text("2 listings written")
    screenshot(page, "home-weekly-usage")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "home-weekly-usage-phone")
