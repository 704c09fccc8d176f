"""Stripe webhooks: tokens are credited once per paid session, and clawed back on refunds and disputes."""

import json
import time

import pytest
from django.test import Client

from tests.concurrency import run_in_threads
from tests.factories import MerchantFactory
from tests.wallets.fake_stripe import (
    charge_object,
    deliver,
    dispute_object,
    event,
    new_id,
    session_object,
    sign,
)
from tests.wallets.helpers import SYSTEM, key
from wallets import services
from wallets.models import StripeEvent, TopupPack, TopupPayment, Transfer
from wallets.reconcile import flagged_wallets, reconcile_ledger

TOKENS, CENTS = 1_000, 300  # a third of the price is 333.33… tokens: refunds must round up


@pytest.fixture(autouse=True)
def ledger_stays_consistent():
    """Invariants 1 to 6 hold after every scenario (a clawback below zero is flagged, not a violation)."""
    yield
    assert reconcile_ledger() == []


@pytest.fixture
def payment(db) -> TopupPayment:
    """A checkout session we created and the buyer has not paid yet (as checkout_create leaves it)."""
    pack = TopupPack.objects.create(name="Small", tokens=TOKENS, price_cents=CENTS, currency="usd")
    return TopupPayment.objects.create(
        merchant=MerchantFactory(), pack=pack, tokens=TOKENS, amount_cents=CENTS, currency="usd",
        checkout_session_id=new_id("cs"),
    )  # fmt: skip


def wallet_balance(payment: TopupPayment) -> int:
    return services.wallet_of(merchant=payment.merchant).balance


def topups(payment: TopupPayment) -> list[Transfer]:
    return list(Transfer.objects.filter(kind="topup", wallet__merchant=payment.merchant))


def paid(client, payment, **kwargs):
    response = deliver(client, event("checkout.session.completed", session_object(payment)), **kwargs)
    payment.refresh_from_db()
    return response


@pytest.mark.django_db
def test_a_completed_paid_session_credits_exactly_the_packs_tokens(client, payment):
    response = paid(client, payment)

    assert response.status_code == 200
    assert response.json()["outcome"] == "credited"
    assert wallet_balance(payment) == TOKENS
    assert payment.status == "paid"
    assert payment.payment_intent_id == f"pi_for_{payment.checkout_session_id}"
    [topup] = topups(payment)
    assert (topup.idempotency_key, topup.amount, payment.transfer) == (
        f"stripe:{payment.checkout_session_id}",
        TOKENS,
        topup,
    )
    assert StripeEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_same_event_delivered_twice_credits_once(client, payment):
    completed = event("checkout.session.completed", session_object(payment))

    first, second = deliver(client, completed), deliver(client, completed)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["outcome"] == "duplicate_event"
    assert wallet_balance(payment) == TOKENS
    assert len(topups(payment)) == 1


@pytest.mark.django_db
def test_a_different_event_for_the_same_session_credits_once(client, payment):
    paid(client, payment)
    again = deliver(client, event("checkout.session.async_payment_succeeded", session_object(payment)))

    assert again.status_code == 200
    assert again.json()["outcome"] == "already_fulfilled"
    assert wallet_balance(payment) == TOKENS
    assert StripeEvent.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_event_id", [True, False], ids=["same-event", "distinct-events"])
def test_ten_concurrent_deliveries_credit_once(payment, same_event_id):
    completed = event("checkout.session.completed", session_object(payment))

    def deliver_one(index: int):
        payload = completed if same_event_id else {**completed, "id": f"{completed['id']}_{index}"}
        return deliver(Client(), payload).status_code

    results = run_in_threads(10, deliver_one)

    assert results == [200] * 10
    assert wallet_balance(payment) == TOKENS
    assert len(topups(payment)) == 1
    assert StripeEvent.objects.count() == (1 if same_event_id else 10)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature",
    [
        "",
        "t=1,v1=deadbeef",
        sign(b"another body"),
        sign(b"{}", secret="whsec_someone_elses"),
    ],
    ids=["missing", "garbage", "other-body", "other-secret"],
)
def test_a_bad_signature_is_rejected_and_changes_nothing(client, payment, signature):
    response = paid(client, payment, signature=signature)

    assert response.status_code == 400
    assert payment.status == "created"
    assert wallet_balance(payment) == 0
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_without_a_configured_webhook_secret_every_delivery_is_rejected(client, payment, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = event("checkout.session.completed", session_object(payment))

    # Signed with the empty secret, which anyone could do: it must not pass.
    response = deliver(client, payload, signature=sign(json.dumps(payload).encode(), secret=""))

    assert response.status_code == 400
    assert wallet_balance(payment) == 0


@pytest.mark.django_db
def test_a_body_changed_after_signing_is_rejected(client, payment):
    body = json.dumps(event("checkout.session.completed", session_object(payment))).encode()
    header = sign(body)

    response = client.post(
        "/webhooks/stripe/", data=body + b" ", content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )

    assert response.status_code == 400
    assert wallet_balance(payment) == 0


@pytest.mark.django_db
def test_a_stale_timestamp_is_rejected(client, payment):
    response = paid(client, payment, timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert wallet_balance(payment) == 0


@pytest.mark.django_db
def test_an_unpaid_completed_session_credits_nothing_until_async_payment_succeeds(client, payment):
    unpaid = deliver(
        client, event("checkout.session.completed", session_object(payment, payment_status="unpaid"))
    )
    assert unpaid.status_code == 200
    assert wallet_balance(payment) == 0

    later = deliver(client, event("checkout.session.async_payment_succeeded", session_object(payment)))

    assert later.json()["outcome"] == "credited"
    assert wallet_balance(payment) == TOKENS


@pytest.mark.django_db
def test_an_unknown_session_is_acknowledged_but_credits_nothing(client, payment):
    stranger = {**session_object(payment), "id": "cs_test_not_ours", "client_reference_id": None}

    response = deliver(client, event("checkout.session.completed", stranger))

    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_session"
    assert not Transfer.objects.filter(kind="topup").exists()
    assert not StripeEvent.objects.exists()  # unrecorded, so a resend after a fix can still be processed


@pytest.mark.django_db
def test_a_session_whose_metadata_names_another_merchant_credits_nothing(client, payment):
    session = session_object(payment)
    session["metadata"]["merchant_id"] = str(MerchantFactory().pk)
    session["metadata"]["tokens"] = "999999999"

    response = deliver(client, event("checkout.session.completed", session))

    assert response.json()["outcome"] == "mismatch"
    assert not Transfer.objects.filter(kind="topup").exists()


@pytest.mark.django_db
def test_other_event_types_are_acknowledged_and_ignored(client, payment):
    response = deliver(client, event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert wallet_balance(payment) == 0


def refund(client, payment, amount_refunded: int, **kwargs):
    response = deliver(
        client, event("charge.refunded", charge_object(payment, amount_refunded=amount_refunded)), **kwargs
    )
    payment.refresh_from_db()
    return response


@pytest.mark.django_db
def test_a_full_refund_claws_back_every_token_even_below_zero_and_flags_the_wallet(client, payment):
    paid(client, payment)
    wallet = services.wallet_of(merchant=payment.merchant)
    hold = services.hold_create(wallet=wallet, amount=600, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=hold, amount=600, key=key("settle"), actor=SYSTEM)

    response = refund(client, payment, CENTS)

    wallet.refresh_from_db()
    assert response.json()["outcome"] == "clawed_back"
    assert (wallet.balance, wallet.in_debt) == (-600, True)
    assert (payment.status, payment.tokens_clawed_back) == ("refunded", TOKENS)
    assert flagged_wallets() == [(wallet.pk, -600)]  # reported for support, not a violation


@pytest.mark.django_db
def test_partial_refunds_claw_back_proportionally_rounded_up_once_per_level(client, payment):
    paid(client, payment)
    first = event("charge.refunded", charge_object(payment, amount_refunded=100))

    deliver(client, first)
    deliver(client, first)
    assert wallet_balance(payment) == TOKENS - 334  # ceil(1000 * 100 / 300)

    refund(client, payment, 200)  # cumulative: two thirds refunded
    assert wallet_balance(payment) == TOKENS - 667
    refund(client, payment, 100)  # a late, older level (another event id) takes nothing more
    assert wallet_balance(payment) == TOKENS - 667
    assert (payment.status, payment.refunded_cents, payment.tokens_clawed_back) == ("paid", 200, 667)

    refund(client, payment, CENTS)
    assert wallet_balance(payment) == 0
    assert payment.status == "refunded"
    keys = sorted(Transfer.objects.filter(kind="clawback").values_list("idempotency_key", flat=True))
    charge = f"ch_for_{payment.checkout_session_id}"
    assert keys == sorted(f"stripe-refund:{charge}:{level}" for level in (100, 200, 300))


@pytest.mark.django_db
def test_a_dispute_claws_back_the_whole_topup_and_a_later_refund_takes_nothing_more(client, payment):
    paid(client, payment)
    refund(client, payment, 100)
    dispute = event("charge.dispute.created", dispute_object(payment))

    response = deliver(client, dispute)
    deliver(client, dispute)
    refund(client, payment, CENTS)

    assert response.json()["outcome"] == "clawed_back"
    assert wallet_balance(payment) == 0
    assert (payment.status, payment.tokens_clawed_back) == ("disputed", TOKENS)
    assert (
        Transfer.objects.filter(kind="clawback", idempotency_key__startswith="stripe-dispute:").count() == 1
    )


@pytest.mark.django_db
def test_a_refund_before_fulfilment_asks_stripe_to_retry_and_the_retry_claws_back(client, payment):
    early = event("charge.refunded", charge_object(payment, amount_refunded=CENTS))

    response = deliver(client, early)
    assert response.status_code == 409
    assert not Transfer.objects.filter(kind="clawback").exists()
    assert not StripeEvent.objects.exists()

    paid(client, payment)
    retry = deliver(client, early)

    assert retry.status_code == 200
    assert wallet_balance(payment) == 0


@pytest.mark.django_db
def test_a_dispute_for_an_unknown_payment_intent_asks_stripe_to_retry(client, payment):
    stranger = {**dispute_object(payment), "payment_intent": "pi_unknown"}

    assert deliver(client, event("charge.dispute.created", stranger)).status_code == 409


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refund_levels_and_a_dispute_claw_back_the_top_up_exactly_once(payment):
    paid(Client(), payment)
    events = [
        event("charge.refunded", charge_object(payment, amount_refunded=level)) for level in (100, 200, 300)
    ]
    events += [event("charge.dispute.created", dispute_object(payment, dispute_id="dp_race"))] * 3

    results = run_in_threads(len(events), lambda index: deliver(Client(), events[index]).status_code)

    payment.refresh_from_db()
    assert results == [200] * len(events)
    assert wallet_balance(payment) == 0
    assert payment.tokens_clawed_back == TOKENS


@pytest.mark.django_db
def test_an_expired_checkout_is_marked_and_credits_nothing(client, payment):
    response = deliver(client, event("checkout.session.expired", session_object(payment)))

    payment.refresh_from_db()
    assert response.status_code == 200
    assert payment.status == "expired"
    assert wallet_balance(payment) == 0
    assert topups(payment) == []


@pytest.mark.django_db
def test_a_failed_async_payment_is_marked_and_credits_nothing(client, payment):
    deliver(client, event("checkout.session.completed", session_object(payment, payment_status="unpaid")))
    deliver(client, event("checkout.session.async_payment_failed", session_object(payment)))

    payment.refresh_from_db()
    assert payment.status == "failed"
    assert wallet_balance(payment) == 0


@pytest.mark.django_db
def test_a_paid_event_after_an_expiry_still_credits_because_the_money_arrived(client, payment):
    deliver(client, event("checkout.session.expired", session_object(payment)))

    paid(client, payment)

    assert payment.status == "paid"
    assert wallet_balance(payment) == TOKENS


@pytest.mark.django_db
def test_an_expiry_after_payment_changes_nothing(client, payment):
    paid(client, payment)

    deliver(client, event("checkout.session.expired", session_object(payment)))

    payment.refresh_from_db()
    assert payment.status == "paid"
    assert wallet_balance(payment) == TOKENS


@pytest.mark.django_db
def test_a_timestamp_dated_beyond_the_tolerance_in_the_future_is_rejected(client, payment):
    response = paid(client, payment, timestamp=int(time.time()) + 301 + 5)

    assert response.status_code == 400
    assert payment.status == "created"
    assert wallet_balance(payment) == 0
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_a_timestamp_a_little_ahead_of_our_clock_is_accepted(client, payment):
    response = paid(client, payment, timestamp=int(time.time()) + 60)  # ordinary clock skew

    assert response.status_code == 200
    assert wallet_balance(payment) == TOKENS


@pytest.mark.django_db
def test_a_header_with_two_timestamps_is_rejected(client, payment):
    body = json.dumps(event("checkout.session.completed", session_object(payment))).encode()
    now = int(time.time())
    header = f"{sign(body, timestamp=now)},t={now + 3600}"  # the first is signed; the second must not pass

    response = deliver(client, json.loads(body), signature=header)

    assert response.status_code == 400
    assert wallet_balance(payment) == 0


def dispute_closed(payment, dispute_id: str, status: str = "won") -> dict:
    return event(
        "charge.dispute.closed", {**dispute_object(payment, dispute_id=dispute_id), "status": status}
    )


@pytest.mark.django_db
def test_a_won_dispute_gives_back_the_clawed_back_tokens_once(client, payment):
    paid(client, payment)
    deliver(client, event("charge.dispute.created", dispute_object(payment, dispute_id="dp_won")))
    won = dispute_closed(payment, "dp_won")

    first = deliver(client, won)
    replay = deliver(client, won)
    resent = deliver(client, {**won, "id": new_id("evt")})  # the same win under another event id

    payment.refresh_from_db()
    assert first.json()["outcome"] == "returned"
    assert (replay.json()["outcome"], resent.json()["outcome"]) == ("duplicate_event", "already_returned")
    assert wallet_balance(payment) == TOKENS
    assert (payment.status, payment.tokens_clawed_back) == ("paid", 0)
    [returned] = Transfer.objects.filter(idempotency_key="stripe-dispute-won:dp_won")
    assert (returned.kind, returned.amount, returned.reference) == ("topup", TOKENS, "dp_won")


@pytest.mark.django_db
def test_a_won_dispute_clears_the_debt_flag_it_caused(client, payment):
    paid(client, payment)
    wallet = services.wallet_of(merchant=payment.merchant)
    hold = services.hold_create(wallet=wallet, amount=600, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=hold, amount=600, key=key("settle"), actor=SYSTEM)
    deliver(client, event("charge.dispute.created", dispute_object(payment, dispute_id="dp_debt")))
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.in_debt) == (-600, True)

    deliver(client, dispute_closed(payment, "dp_debt"))

    wallet.refresh_from_db()
    assert (wallet.balance, wallet.in_debt) == (TOKENS - 600, False)


@pytest.mark.django_db
def test_a_won_dispute_keeps_back_what_refunds_took(client, payment):
    paid(client, payment)
    refund(client, payment, 100)  # 334 tokens
    deliver(client, event("charge.dispute.created", dispute_object(payment, dispute_id="dp_part")))
    refund(client, payment, 200)  # during the dispute: the buyer got this money back as well

    response = deliver(client, dispute_closed(payment, "dp_part"))

    payment.refresh_from_db()
    assert response.json()["outcome"] == "returned"
    assert wallet_balance(payment) == TOKENS - 667  # ceil(1000 * 200 / 300) stays clawed back
    assert (payment.status, payment.tokens_clawed_back) == ("paid", 667)
    refund(client, payment, CENTS)  # and a later full refund takes the rest, once
    assert (wallet_balance(payment), payment.status) == (0, "refunded")


@pytest.mark.django_db
def test_a_lost_dispute_gives_nothing_back(client, payment):
    paid(client, payment)
    deliver(client, event("charge.dispute.created", dispute_object(payment, dispute_id="dp_lost")))

    response = deliver(client, dispute_closed(payment, "dp_lost", status="lost"))

    payment.refresh_from_db()
    assert response.json()["outcome"] == "dispute_lost"
    assert wallet_balance(payment) == 0
    assert (payment.status, payment.tokens_clawed_back) == ("disputed", TOKENS)


@pytest.mark.django_db
def test_a_win_before_the_dispute_opened_asks_stripe_to_retry_and_then_gives_back_once(client, payment):
    paid(client, payment)
    won = dispute_closed(payment, "dp_early")

    early = deliver(client, won)
    assert early.status_code == 409
    assert wallet_balance(payment) == TOKENS
    assert not StripeEvent.objects.filter(event_id=won["id"]).exists()  # so the retry is processed in full

    deliver(client, event("charge.dispute.created", dispute_object(payment, dispute_id="dp_early")))
    assert wallet_balance(payment) == 0
    retry = deliver(client, won)

    assert retry.json()["outcome"] == "returned"
    assert wallet_balance(payment) == TOKENS


@pytest.mark.django_db
def test_the_disputes_opening_sent_again_after_the_win_takes_nothing(client, payment):
    paid(client, payment)
    opened = event("charge.dispute.created", dispute_object(payment, dispute_id="dp_again"))
    deliver(client, opened)
    deliver(client, dispute_closed(payment, "dp_again"))

    response = deliver(client, {**opened, "id": new_id("evt")})

    payment.refresh_from_db()
    assert response.json()["outcome"] == "dispute_already_won"
    assert wallet_balance(payment) == TOKENS
    assert (payment.status, payment.tokens_clawed_back) == ("paid", 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_a_won_dispute_give_back_once(payment):
    paid(Client(), payment)
    deliver(Client(), event("charge.dispute.created", dispute_object(payment, dispute_id="dp_race_won")))
    won = dispute_closed(payment, "dp_race_won")
    events = [won] * 3 + [{**won, "id": new_id("evt")} for _ in range(3)]

    results = run_in_threads(len(events), lambda index: deliver(Client(), events[index]).status_code)

    payment.refresh_from_db()
    assert results == [200] * len(events)
    assert wallet_balance(payment) == TOKENS
    assert Transfer.objects.filter(idempotency_key="stripe-dispute-won:dp_race_won").count() == 1
    assert payment.tokens_clawed_back == 0
