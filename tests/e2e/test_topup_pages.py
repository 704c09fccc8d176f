"""A manager buys tokens: Buy → Stripe's checkout page → back to a status page that waits for the webhook
and then shows the tokens, which the wallet now holds."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.factories import MembershipFactory
from tests.wallets.fake_stripe import deliver, event, fake_stripe_server, session_object
from wallets.models import TopupPack, TopupPayment
from wallets.reconcile import reconcile_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_buys_a_pack_and_sees_the_tokens_arrive_when_stripe_confirms(page, log_in, screenshot):
    membership = MembershipFactory(role="manager", merchant__name="Tea Garden")
    pack = TopupPack.objects.create(name="Starter", tokens=1_000_000, price_cents=500, currency="usd")
    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        body="<h1>Stripe Checkout (test double)</h1>", content_type="text/html"
    ))  # fmt: skip
    log_in(membership.user)

    with fake_stripe_server():
        page.goto("/wallet/")
        screenshot(page, "wallet-with-packs")
        page.get_by_test_id(f"buy-{pack.pk}").click()
        expect(page.get_by_role("heading", name="Stripe Checkout (test double)")).to_be_visible()

        payment = TopupPayment.objects.get()
        page.goto(f"/wallet/topup/{payment.pk}/")
        expect(page.get_by_test_id("topup-status")).to_contain_text("Payment pending")
        deliver(Client(), event("checkout.session.completed", session_object(payment)))

        expect(page.get_by_test_id("topup-status")).to_contain_text("1,000,000 tokens added", timeout=10_000)
        screenshot(page, "topup-credited")
    page.goto("/wallet/")
    expect(page.get_by_test_id("available")).to_have_text("1,000,000")
    assert reconcile_ledger() == []
