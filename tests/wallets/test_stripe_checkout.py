"""Buying a pack: the Checkout Session we ask Stripe for, and the dashboard pages around it."""

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory
from tests.wallets.fake_stripe import deliver, event, fake_stripe_server, session_object
from wallets.models import TopupPack, TopupPayment
from wallets.payments import client as payment_client
from wallets.payments.exceptions import PaymentError
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    with fake_stripe_server() as server:
        yield server


@pytest.fixture
def pack(db) -> TopupPack:
    return TopupPack.objects.create(name="Test pack", tokens=250_000, price_cents=1_999, currency="usd")


@pytest.fixture
def owner_client(client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    client.membership = membership
    return client


def test_checkout_creates_a_session_with_the_packs_price_and_our_metadata(fake, pack):
    membership = MembershipFactory(role="owner")

    payment = payment_client.checkout_create(
        merchant=membership.merchant,
        pack=pack,
        user=membership.user,
        success_url="https://tokenhub.test/wallet/topup/{payment_id}/",
        cancel_url="https://tokenhub.test/wallet/",
    )

    [request] = fake.requests
    form = request.form
    assert request.path == "/v1/checkout/sessions"
    assert request.headers["Authorization"] == "Bearer sk_test_fake"
    assert request.headers["Idempotency-Key"] == f"tokenhub-checkout:{payment.reference}"
    assert form["mode"] == "payment"
    assert form["line_items[0][quantity]"] == "1"
    assert form["line_items[0][price_data][unit_amount]"] == "1999"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert "250,000 tokens" in form["line_items[0][price_data][product_data][name]"]
    assert form["metadata[merchant_id]"] == str(membership.merchant.pk)
    assert form["metadata[pack_id]"] == str(pack.pk)
    assert form["metadata[tokens]"] == "250000"
    assert form["payment_intent_data[metadata][merchant_id]"] == str(membership.merchant.pk)
    assert form["client_reference_id"] == str(payment.reference)
    assert form["success_url"] == f"https://tokenhub.test/wallet/topup/{payment.pk}/"
    payment.refresh_from_db()
    assert payment.checkout_session_id.startswith("cs_test_")
    assert payment.checkout_url.endswith(payment.checkout_session_id)
    assert (payment.status, payment.tokens, payment.amount_cents) == ("created", 250_000, 1_999)
    assert reconcile_ledger() == []


def test_when_stripe_refuses_the_checkout_no_payment_is_left_behind(fake, pack):
    membership = MembershipFactory(role="owner")
    fake.fail_with = 400

    with pytest.raises(PaymentError):
        payment_client.checkout_create(
            merchant=membership.merchant, pack=pack, user=membership.user, success_url="https://t/",
            cancel_url="https://t/",
        )  # fmt: skip

    assert len(fake.requests) == 1
    assert not TopupPayment.objects.exists()


def test_the_wallet_page_offers_a_buy_button_per_pack_and_no_coming_soon_note(owner_client, pack):
    page = owner_client.get(reverse("wallet")).content.decode()

    assert f'data-testid="buy-{pack.pk}"' in page
    assert "coming" not in page


def test_buying_redirects_to_the_stripe_checkout_page(fake, owner_client, pack):
    response = owner_client.post(reverse("wallet-topup"), {"pack": pack.pk})

    payment = TopupPayment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == payment.checkout_url
    assert payment.merchant == owner_client.membership.merchant
    assert payment.created_by == owner_client.membership.user
    assert fake.requests[0].form["success_url"] == f"http://testserver/wallet/topup/{payment.pk}/"
    assert fake.requests[0].form["cancel_url"] == f"http://testserver/wallet/topup/{payment.pk}/canceled/"


def test_staff_role_sees_no_buy_button_and_cannot_buy(fake, client, pack):
    membership = MembershipFactory(role="staff")
    client.force_login(membership.user)

    page = client.get(reverse("wallet")).content.decode()
    response = client.post(reverse("wallet-topup"), {"pack": pack.pk})

    assert f'data-testid="buy-{pack.pk}"' not in page
    assert response.status_code == 403
    assert fake.requests == []
    assert not TopupPayment.objects.exists()


def test_an_inactive_pack_cannot_be_bought(fake, owner_client, pack):
    pack.active = False
    pack.save()

    assert owner_client.post(reverse("wallet-topup"), {"pack": pack.pk}).status_code == 404
    assert fake.requests == []


def test_the_success_page_shows_pending_until_the_webhook_credits_then_the_tokens(fake, owner_client, pack):
    owner_client.post(reverse("wallet-topup"), {"pack": pack.pk})
    payment = TopupPayment.objects.get()
    url = reverse("wallet-topup-status", args=[payment.pk])

    pending = owner_client.get(url).content.decode()
    poll = owner_client.get(url, headers={"HX-Request": "true"}).content.decode()
    deliver(owner_client, event("checkout.session.completed", session_object(payment)))
    credited = owner_client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert "Payment pending" in pending and 'hx-trigger="every 2s"' in pending
    assert "<html" not in poll and "Payment pending" in poll
    assert "250,000 tokens added" in credited
    assert "hx-get" not in credited  # polling stops once credited
    assert reconcile_ledger() == []


def test_another_merchants_payment_page_is_not_found(fake, owner_client, pack, client):
    owner_client.post(reverse("wallet-topup"), {"pack": pack.pk})
    payment = TopupPayment.objects.get()
    other = MembershipFactory(role="owner")
    owner_client.force_login(other.user)

    assert owner_client.get(reverse("wallet-topup-status", args=[payment.pk])).status_code == 404
    assert owner_client.get(reverse("wallet-topup-canceled", args=[payment.pk])).status_code == 404


def test_canceling_checkout_returns_to_the_wallet_with_a_message(fake, owner_client, pack):
    owner_client.post(reverse("wallet-topup"), {"pack": pack.pk})
    payment = TopupPayment.objects.get()

    response = owner_client.get(reverse("wallet-topup-canceled", args=[payment.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("wallet")
    assert "Checkout canceled: nothing was charged." in response.content.decode()
    assert reconcile_ledger() == []


@pytest.mark.django_db
def test_without_stripe_keys_there_is_no_buy_button_and_buying_creates_nothing(owner_client, pack, settings):
    settings.STRIPE_SECRET_KEY = ""

    page = owner_client.get(reverse("wallet")).content.decode()
    response = owner_client.post(reverse("wallet-topup"), {"pack": pack.pk})

    assert "not set up on this server" in page
    assert f'data-testid="buy-{pack.pk}"' not in page
    assert response.status_code == 302
    assert not TopupPayment.objects.exists()
