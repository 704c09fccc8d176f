"""Invariant 6: every paid Stripe checkout session has exactly one top-up transfer, and only those do."""

import pytest
from django.db import connection

from tests.factories import MerchantFactory
from tests.wallets.fake_stripe import new_id
from tests.wallets.helpers import SYSTEM
from wallets import services
from wallets.models import TopupPack, TopupPayment
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(db) -> TopupPayment:
    pack = TopupPack.objects.create(name="Small", tokens=500, price_cents=100, currency="usd")
    return TopupPayment.objects.create(
        merchant=MerchantFactory(), pack=pack, tokens=500, amount_cents=100, currency="usd",
        checkout_session_id=new_id("cs"),
    )  # fmt: skip


def _codes() -> set[tuple[int, str]]:
    return {(v.invariant, v.code) for v in reconcile_ledger()}


def test_a_stripe_topup_without_a_paid_payment_is_a_violation(payment):
    wallet = services.wallet_of(merchant=payment.merchant)
    services.topup_credit(
        wallet=wallet, amount=500, key=f"stripe:{payment.checkout_session_id}", actor=SYSTEM
    )

    assert _codes() == {(6, "topup_without_payment")}


def test_a_paid_payment_whose_transfer_is_not_its_sessions_topup_is_a_violation(payment):
    wallet = services.wallet_of(merchant=payment.merchant)
    other = services.topup_credit(wallet=wallet, amount=500, key="manual:1", actor=SYSTEM)
    payment.status, payment.transfer = "paid", other
    payment.save()

    assert _codes() == {(6, "paid_without_topup")}


def test_a_topup_of_another_amount_than_the_payments_tokens_is_a_violation(payment):
    wallet = services.wallet_of(merchant=payment.merchant)
    transfer = services.topup_credit(
        wallet=wallet, amount=499, key=f"stripe:{payment.checkout_session_id}", actor=SYSTEM
    )
    payment.status, payment.transfer = "paid", transfer
    payment.save()

    assert _codes() == {(6, "paid_without_topup")}


@pytest.mark.postgres  # SQLite does not enforce the CHECK this corruption has to get around
def test_a_paid_payment_without_any_transfer_is_a_violation(payment):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE wallets_topuppayment DROP CONSTRAINT topup_payment_fulfilled_has_transfer"
        )  # rolled back with the test's transaction
        cursor.execute("UPDATE wallets_topuppayment SET status = 'paid' WHERE id = %s", [payment.pk])

    assert _codes() == {(6, "paid_without_topup")}
