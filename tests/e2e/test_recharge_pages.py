"""An owner saves a card for auto-recharge, switches it on, and sees the low-balance banner on every page."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from merchants.actors import Actor
from tests.factories import MembershipFactory, TopupPackFactory
from tests.wallets.fake_stripe import deliver, fake_stripe_server, setup_session_completed
from wallets import services
from wallets.models import RechargeCardSetup, RechargeSettings
from wallets.reconcile import reconcile_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_owner_saves_a_card_and_switches_auto_recharge_on(page, log_in, screenshot, csp_violations):
    membership = MembershipFactory(role="owner", merchant__name="Tea Garden")
    wallet = services.wallet_of(merchant=membership.merchant)
    services.topup_credit(wallet=wallet, amount=100_000, key="e2e:recharge:topup", actor=Actor.system("test"))
    services.hold_create(wallet=wallet, amount=90_000, key="e2e:recharge:hold", actor=Actor.system("test"))
    pack = TopupPackFactory(name="Starter", tokens=1_000_000, price_cents=500)
    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        body="<h1>Stripe Checkout (test double)</h1>", content_type="text/html"
    ))  # fmt: skip
    log_in(membership.user)

    with fake_stripe_server() as fake:
        page.goto("/runs/")
        expect(page.get_by_test_id("balance-alert")).to_contain_text("below 20% of your last top-up")
        page.goto("/wallet/#recharge")
        page.get_by_test_id("recharge-save-card").click()
        expect(page.get_by_role("heading", name="Stripe Checkout (test double)")).to_be_visible()
        setup = RechargeCardSetup.objects.get()
        deliver(Client(), setup_session_completed(fake, setup.checkout_session_id))

    page.goto("/wallet/#recharge")
    expect(page.get_by_test_id("recharge-card")).to_contain_text("Visa ending in 4242")
    page.get_by_label("When available tokens fall below").fill("20000")
    page.get_by_label("Buy").select_option(str(pack.pk))
    page.get_by_label("At most this many recharges a month").fill("3")
    page.get_by_label("Recharge automatically").check()
    page.get_by_test_id("recharge-submit").click()
    expect(page.get_by_text("Auto-recharge is on.")).to_be_visible()
    screenshot(page, "wallet-recharge-and-alerts")

    rule = RechargeSettings.objects.get(wallet=wallet)
    assert (rule.enabled, rule.threshold, rule.pack_id, rule.monthly_max_count) == (True, 20_000, pack.pk, 3)
    assert csp_violations == []
    assert reconcile_ledger() == []
