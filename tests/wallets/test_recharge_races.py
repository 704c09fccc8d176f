"""Twenty runs crossing the recharge and alert thresholds at once, real threads against PostgreSQL: one
payment, one email, and the webhook credits once."""

from collections import Counter

import pytest
from django.test import Client
from rest_framework.test import APIClient

from merchants.api_keys import api_key_create
from merchants.models import OutboundEmail
from tests.concurrency import run_in_threads
from tests.factories import MembershipFactory, RechargeSettingsFactory, TopupPackFactory
from tests.wallets.fake_stripe import deliver, fake_stripe_server, intent_event
from tests.wallets.helpers import SYSTEM, key, reload
from wallets import alerts, services
from wallets.models import BalanceAlert, RechargeAttempt, Transfer
from wallets.recharge import services as recharge
from wallets.reconcile import reconcile_ledger

LISTING = {"tool": "listing-writer", "input": {"product_name": "Linen apron", "marketplace": "shopify"}}
FUNDS = 100_000


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_runs_crossing_the_threshold_make_exactly_one_payment(broker, monkeypatch):
    owner = MembershipFactory(role="owner")
    wallet = services.wallet_of(merchant=owner.merchant)
    services.topup_credit(wallet=wallet, amount=FUNDS, key=key("topup"), actor=SYSTEM)
    RechargeSettingsFactory(wallet=wallet, threshold=90_000, pack=TopupPackFactory(tokens=40_000))
    alerts.alert_settings_save(
        merchant=owner.merchant, email_enabled=True, percents=[50], alert_at_zero=False
    )
    raw = api_key_create(merchant=owner.merchant, name="race").raw_key
    # The worker's part, in the thread that won the attempt: the Stripe call the task would make.
    monkeypatch.setattr(
        recharge, "charge_enqueue", lambda *, attempt_id: recharge.recharge_charge(attempt_id=attempt_id)
    )

    def create_run(_: int) -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api.post("/api/v1/runs", LISTING, format="json").status_code

    with fake_stripe_server() as fake:
        statuses = run_in_threads(20, create_run, connections=20)
        assert Counter(statuses) == {202: 20}
        held = reload(wallet).debits_pending
        assert FUNDS - held < 50_000  # every run after the first few was below both thresholds

        [attempt] = RechargeAttempt.objects.all()
        assert len(fake.payment_intents) == 1
        assert attempt.status == RechargeAttempt.Status.PENDING
        assert OutboundEmail.objects.filter(template="balance_alert").count() == 1
        assert BalanceAlert.objects.get(wallet=wallet).level == 1

        [intent] = fake.payment_intents.values()
        succeeded = intent_event("payment_intent.succeeded", intent)
        outcomes = run_in_threads(5, lambda _: deliver(Client(), succeeded).json()["outcome"])

    assert Counter(outcomes) == {"credited": 1, "duplicate_event": 4}
    assert reload(wallet).balance == FUNDS + 40_000
    assert Transfer.objects.filter(idempotency_key=f"stripe-recharge:{attempt.reference}").count() == 1
    assert reconcile_ledger() == []
