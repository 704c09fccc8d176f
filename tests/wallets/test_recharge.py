"""Auto-recharge: saving a card, one off-session payment per crossing, tokens only from the signed webhook."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from merchants.models import OutboundEmail
from tests.factories import MembershipFactory, RechargeSettingsFactory, TopupPackFactory
from tests.wallets.fake_stripe import (
    deliver,
    event,
    fake_stripe_server,
    intent_event,
    setup_session_completed,
)
from tests.wallets.helpers import SYSTEM, key, reload
from wallets import services
from wallets.models import RechargeAttempt, RechargeCardSetup, RechargeSettings, StripeEvent, Transfer
from wallets.recharge import services as recharge
from wallets.recharge.exceptions import RechargeNotReady
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db
Status = RechargeAttempt.Status


@pytest.fixture(autouse=True)
def ledger_stays_consistent():
    yield
    assert reconcile_ledger() == []


@pytest.fixture
def fake():
    with fake_stripe_server() as server:
        yield server


@pytest.fixture
def owner(db):
    return MembershipFactory(role="owner")


@pytest.fixture
def wallet(owner):
    """1,000 tokens, auto-recharge on below 10,000: every check starts a recharge unless one is in flight."""
    account = services.wallet_of(merchant=owner.merchant)
    services.topup_credit(wallet=account, amount=1_000, key=key("topup"), actor=SYSTEM)
    RechargeSettingsFactory(wallet=account, threshold=10_000, pack=TopupPackFactory(tokens=50_000))
    return reload(account)


def charged(fake, wallet) -> RechargeAttempt:
    attempt = recharge.recharge_maybe_start(wallet_id=wallet.pk)
    assert attempt is not None
    recharge.recharge_charge(attempt_id=attempt.pk)
    attempt.refresh_from_db()
    return attempt


def intent_of(fake, attempt: RechargeAttempt) -> dict:
    return fake.payment_intents[attempt.payment_intent_id]


def test_saving_a_card_opens_a_setup_mode_checkout_and_its_webhook_saves_the_card(client, fake, owner):
    setup = recharge.card_setup_start(
        merchant=owner.merchant,
        user=owner.user,
        success_url="https://t.test/ok",
        cancel_url="https://t.test/no",
    )

    customer, session = fake.requests
    assert customer.path == "/v1/customers"
    assert session.path == "/v1/checkout/sessions"
    assert session.form["mode"] == "setup"
    assert session.form["customer"] == customer_id(owner)
    assert session.headers["Idempotency-Key"] == f"tokenhub-card-setup:{setup.reference}"
    assert setup.checkout_url.startswith("https://checkout.stripe.com/")

    completed = setup_session_completed(fake, setup.checkout_session_id)
    first, replay = deliver(client, completed), deliver(client, completed)

    assert (first.json()["outcome"], replay.json()["outcome"]) == ("card_saved", "duplicate_event")
    rule = RechargeSettings.objects.get(wallet__merchant=owner.merchant)
    assert (rule.card_brand, rule.card_last4) == ("visa", "4242")
    assert rule.payment_method_id in fake.payment_methods
    assert RechargeCardSetup.objects.get().completed_at is not None


def customer_id(owner) -> str:
    return RechargeSettings.objects.get(wallet__merchant=owner.merchant).stripe_customer_id


def test_auto_recharge_cannot_be_switched_on_without_a_saved_card(owner):
    with pytest.raises(RechargeNotReady):
        recharge.settings_save(
            merchant=owner.merchant,
            enabled=True,
            threshold=5_000,
            pack=TopupPackFactory(),
            monthly_max_count=3,
            monthly_max_cents=None,
        )


def test_falling_below_the_threshold_makes_one_off_session_payment_and_credits_nothing_yet(fake, wallet):
    attempt = charged(fake, wallet)

    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is None  # one is in flight
    [request] = [r for r in fake.requests if r.path == "/v1/payment_intents"]
    assert request.headers["Idempotency-Key"] == f"tokenhub-recharge:{attempt.reference}"
    assert request.form["off_session"] == "true"
    assert request.form["confirm"] == "true"
    assert request.form["amount"] == "1000"
    assert request.form["metadata[recharge_attempt]"] == str(attempt.reference)
    assert attempt.status == Status.PENDING
    assert reload(wallet).balance == 1_000  # only the webhook credits


def test_sending_an_attempt_twice_makes_one_payment(fake, wallet):
    attempt = charged(fake, wallet)
    recharge.recharge_charge(attempt_id=attempt.pk)  # a second delivery of the task

    assert len(fake.payment_intents) == 1
    assert len([r for r in fake.requests if r.path == "/v1/payment_intents"]) == 2


def test_the_succeeded_webhook_credits_the_attempts_tokens_once(client, fake, wallet):
    attempt = charged(fake, wallet)
    succeeded = intent_event("payment_intent.succeeded", intent_of(fake, attempt))

    outcomes = [deliver(client, succeeded).json()["outcome"] for _ in range(2)]
    # Stripe may also send the same news under a new event id.
    again = intent_event("payment_intent.succeeded", intent_of(fake, attempt))
    outcomes.append(deliver(client, again).json()["outcome"])

    assert outcomes == ["credited", "duplicate_event", "already_credited"]
    attempt.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED
    [topup] = Transfer.objects.filter(
        kind="topup", wallet=wallet, idempotency_key__startswith="stripe-recharge:"
    )
    assert (topup.idempotency_key, topup.amount, attempt.transfer) == (
        f"stripe-recharge:{attempt.reference}",
        50_000,
        topup,
    )
    assert reload(wallet).balance == 51_000


def test_the_tokens_come_from_our_attempt_not_from_the_event(client, fake, wallet):
    attempt = charged(fake, wallet)
    forged = intent_event("payment_intent.succeeded", intent_of(fake, attempt), amount=1)

    assert deliver(client, forged).json()["outcome"] == "mismatch"
    assert reload(wallet).balance == 1_000
    assert not StripeEvent.objects.exists()


def test_a_checkout_top_ups_payment_intent_is_not_a_recharge(client, fake, wallet):
    other = event("payment_intent.succeeded", {"id": "pi_checkout", "amount": 1000, "metadata": {}})

    assert deliver(client, other).json()["outcome"] == "ignored"
    assert not StripeEvent.objects.exists()


def test_a_webhook_that_beats_our_own_stripe_response_is_matched_by_its_metadata(client, fake, wallet):
    attempt = charged(fake, wallet)
    intent = intent_of(fake, attempt)
    RechargeAttempt.objects.filter(pk=attempt.pk).update(payment_intent_id=None)

    assert deliver(client, intent_event("payment_intent.succeeded", intent)).json()["outcome"] == "credited"
    attempt.refresh_from_db()
    assert attempt.payment_intent_id == intent["id"]


def test_a_signed_webhook_is_required(client, fake, wallet):
    attempt = charged(fake, wallet)
    response = deliver(
        client, intent_event("payment_intent.succeeded", intent_of(fake, attempt)), signature="t=1,v1=00"
    )

    assert response.status_code == 400
    assert reload(wallet).balance == 1_000


def _allow_retry_now(wallet) -> None:
    RechargeAttempt.objects.filter(wallet=wallet).update(updated_at=timezone.now() - recharge.RETRY_AFTER)


def test_three_failed_payments_in_a_row_switch_auto_recharge_off_and_tell_the_owner(
    client, fake, wallet, owner
):
    fake.intent_outcome = "processing"
    first = charged(fake, wallet)
    failed = intent_event("payment_intent.payment_failed", intent_of(fake, first))
    assert deliver(client, failed).json()["outcome"] == "failed"
    assert deliver(client, failed).json()["outcome"] == "duplicate_event"

    fake.intent_outcome = "declined"
    for _ in range(2):
        _allow_retry_now(wallet)
        charged(fake, wallet)

    rule = RechargeSettings.objects.get(wallet=wallet)
    assert list(RechargeAttempt.objects.values_list("status", flat=True)) == [Status.FAILED] * 3
    assert (rule.enabled, rule.consecutive_failures) == (False, 3)
    assert "insufficient funds" in rule.disabled_reason
    [mail] = OutboundEmail.objects.filter(template="recharge_disabled")
    assert mail.to == owner.user.email
    _allow_retry_now(wallet)
    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is None
    assert reload(wallet).balance == 1_000


def test_a_paid_recharge_resets_the_failure_count(client, fake, wallet):
    fake.intent_outcome = "declined"
    charged(fake, wallet)
    _allow_retry_now(wallet)
    fake.intent_outcome = "succeeded"
    attempt = charged(fake, wallet)
    deliver(client, intent_event("payment_intent.succeeded", intent_of(fake, attempt)))

    assert RechargeSettings.objects.get(wallet=wallet).consecutive_failures == 0


def test_a_failed_payment_is_not_retried_by_the_next_run_at_once(fake, wallet):
    fake.intent_outcome = "declined"
    charged(fake, wallet)

    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is None


def test_the_monthly_cap_stops_recharging(client, fake, wallet):
    RechargeSettings.objects.filter(wallet=wallet).update(monthly_max_count=None, monthly_max_cents=1_500)
    attempt = charged(fake, wallet)
    deliver(client, intent_event("payment_intent.succeeded", intent_of(fake, attempt)))
    RechargeSettings.objects.filter(wallet=wallet).update(threshold=10**9)  # still below the threshold

    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is None  # 10.00 + 10.00 > 15.00
    RechargeSettings.objects.filter(wallet=wallet).update(monthly_max_cents=None, monthly_max_count=1)
    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is None
    RechargeSettings.objects.filter(wallet=wallet).update(monthly_max_count=2)
    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is not None


def test_above_the_threshold_nothing_starts(wallet):
    RechargeSettings.objects.filter(wallet=wallet).update(threshold=1_000)

    assert recharge.recharge_maybe_start(wallet_id=wallet.pk) is None  # 1,000 available is not below


def test_an_attempt_whose_task_never_ran_is_sent_again_by_the_sweep(fake, wallet, monkeypatch):
    attempt = recharge.recharge_maybe_start(wallet_id=wallet.pk)
    sent = []
    monkeypatch.setattr(recharge, "charge_enqueue", lambda *, attempt_id: sent.append(attempt_id))

    assert recharge.recharges_resume() == 0  # too young: its task may still be on its way
    assert recharge.recharges_resume(now=timezone.now() + timedelta(minutes=5)) == 1
    assert sent == [attempt.pk]
    recharge.recharges_resume(now=timezone.now() + timedelta(days=2))
    attempt.refresh_from_db()
    assert attempt.status == Status.FAILED


def test_the_owner_sets_up_auto_recharge_on_the_wallet_page(client, fake, owner):
    client.force_login(owner.user)
    pack = TopupPackFactory(tokens=80_000, price_cents=2_500)
    account = services.wallet_of(merchant=owner.merchant)
    RechargeSettingsFactory(
        wallet=account, enabled=False, pack=None, card_brand="mastercard", card_last4="4444"
    )

    response = client.post(
        reverse("wallet-recharge"),
        {"enabled": "on", "threshold": "20000", "pack": pack.pk, "monthly_max_count": "4"},
    )

    assert response.status_code == 302
    rule = RechargeSettings.objects.get(wallet=account)
    assert (rule.enabled, rule.threshold, rule.pack, rule.monthly_max_count) == (True, 20_000, pack, 4)
    page = client.get(reverse("wallet")).content.decode()
    assert "Recharge automatically" in page
    assert "Mastercard ending in 4444" in page


def test_an_uncapped_auto_recharge_is_refused(client, fake, owner):
    client.force_login(owner.user)
    RechargeSettingsFactory(wallet=services.wallet_of(merchant=owner.merchant), enabled=False)

    client.post(
        reverse("wallet-recharge"), {"enabled": "on", "threshold": "1", "pack": TopupPackFactory().pk}
    )

    assert not RechargeSettings.objects.get(wallet__merchant=owner.merchant).enabled


def test_a_manager_cannot_change_auto_recharge(client, owner):
    manager = MembershipFactory(merchant=owner.merchant, role="manager")
    client.force_login(manager.user)

    response = client.post(reverse("wallet-recharge"), {"threshold": "1"})

    assert response.status_code == 403


def paid(client, fake, wallet) -> RechargeAttempt:
    attempt = charged(fake, wallet)
    deliver(client, intent_event("payment_intent.succeeded", intent_of(fake, attempt)))
    attempt.refresh_from_db()
    return attempt


def recharge_charge_object(attempt: RechargeAttempt, *, amount_refunded: int) -> dict:
    return {
        "id": f"ch_for_{attempt.payment_intent_id}",
        "object": "charge",
        "amount": attempt.amount_cents,
        "amount_refunded": amount_refunded,
        "currency": attempt.currency,
        "payment_intent": attempt.payment_intent_id,
    }


def test_a_refunded_recharge_claws_back_its_share_of_tokens_once(client, fake, wallet):
    attempt = paid(client, fake, wallet)
    half = event("charge.refunded", recharge_charge_object(attempt, amount_refunded=500))

    outcomes = [deliver(client, half).json()["outcome"] for _ in range(2)]

    assert outcomes == ["clawed_back", "duplicate_event"]
    assert reload(wallet).balance == 1_000 + 25_000
    attempt.refresh_from_db()
    assert (attempt.refunded_cents, attempt.tokens_clawed_back) == (500, 25_000)


def test_a_disputed_recharge_takes_the_tokens_and_a_won_dispute_gives_them_back(client, fake, wallet):
    attempt = paid(client, fake, wallet)
    dispute = {"id": "dp_recharge", "object": "dispute", "payment_intent": attempt.payment_intent_id}

    opened = deliver(client, event("charge.dispute.created", {**dispute, "status": "needs_response"}))
    assert (opened.json()["outcome"], reload(wallet).balance) == ("clawed_back", 1_000)
    won = event("charge.dispute.closed", {**dispute, "status": "won"})
    assert deliver(client, won).json()["outcome"] == "returned"
    again = event("charge.dispute.closed", {**dispute, "status": "won"})
    assert deliver(client, again).json()["outcome"] == "already_returned"
    assert reload(wallet).balance == 51_000


def test_a_refund_before_the_recharge_was_credited_is_asked_for_again(client, fake, wallet):
    attempt = charged(fake, wallet)  # paid at Stripe, succeeded webhook not here yet

    response = deliver(
        client, event("charge.refunded", recharge_charge_object(attempt, amount_refunded=1_000))
    )

    assert response.status_code == 409
    assert not StripeEvent.objects.exists()
