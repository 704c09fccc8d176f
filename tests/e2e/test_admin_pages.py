"""Every admin page at 1280 px in headless Chromium, as Support sees it: screenshots to look at, and the
columns that used to be cut (a transfer's amount, balance and actor; a request's status and deciders)."""

import uuid

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import expect

from merchants.actors import Actor
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from wallets import adjustments, services
from wallets.models import Account

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support_desk(settings):
    settings.ADJUSTMENT_APPROVAL_THRESHOLD = 1_000_000
    agent = UserFactory(email="agent@tokenhub.example", is_staff=True)
    agent.groups.add(Group.objects.get(name="Support"))
    other = UserFactory(email="second@tokenhub.example", is_staff=True)
    other.groups.add(Group.objects.get(name="Support"))
    membership = MembershipFactory(merchant__name="Juniper Outfitters", merchant__slug="juniper")
    wallet = services.wallet_of(merchant=membership.merchant)
    services.promotion_credit(
        wallet=wallet, amount=5_000_000, key="e2e:admin:fund", actor=Actor.system("test")
    )
    adjustments.adjustment_submit(
        wallet=wallet, staff=other, amount=1_000_000, reason="Goodwill", key=f"adjust:{uuid.uuid4()}"
    )
    adjustments.adjustment_submit(
        wallet=wallet, staff=agent, amount=-2_500_000, reason="Chargeback", key=f"adjust:{uuid.uuid4()}"
    )
    return agent, membership.merchant, wallet


def _admin_log_in(page, user):
    page.goto("/admin/login/")
    page.locator("#id_username").fill(user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_every_admin_page_fits_1280_px_for_support(page, support_desk, screenshot):
    agent, merchant, wallet = support_desk
    _admin_log_in(page, agent)

    page.goto(reverse("admin:merchants_merchant_change", args=[merchant.pk]))
    expect(page.get_by_text("6,000,000").first).to_be_visible()
    screenshot(page, "admin-merchant-page")
    page.get_by_role("link", name="Wallet", exact=True).click()
    screenshot(page, "admin-wallet")
    page.goto(reverse("admin:wallets_account_adjust", args=[wallet.pk]))
    screenshot(page, "admin-adjust-balance")

    page.goto(reverse("admin:wallets_transfer_changelist"))
    amount = page.get_by_text("6,000,000", exact=True).first
    expect(amount).to_be_in_viewport()
    expect(page.get_by_role("columnheader", name="Actor")).to_be_in_viewport(ratio=1)
    expect(page.get_by_text("Support staff: second@tokenhub.example").first).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    screenshot(page, "admin-transfers")
    page.goto(reverse("admin:wallets_adjustmentrequest_changelist"))
    expect(page.get_by_text("Waiting for approval").first).to_be_in_viewport()
    expect(page.get_by_role("columnheader", name="Decided by")).to_be_in_viewport(ratio=1)
    expect(page.get_by_role("columnheader", name="Transfer")).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    screenshot(page, "admin-adjustment-requests")

    for model, _model_admin in admin.site._registry.items():
        opts = model._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            continue
        response = page.goto(url)
        if response.status == 403:  # not a Support page
            continue
        screenshot(page, f"admin-list-{opts.app_label}-{opts.model_name}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, url


def test_a_wallet_row_is_read_only_for_support(page, support_desk):
    agent, _merchant, wallet = support_desk
    _admin_log_in(page, agent)

    page.goto(reverse("admin:wallets_account_change", args=[wallet.pk]))

    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    assert Account.objects.get(pk=wallet.pk).balance == 6_000_000
