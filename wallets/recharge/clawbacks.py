"""Refunds and disputes of a paid auto-recharge: the same rules as for Checkout top-ups
(wallets.payments.fulfilment), on the RechargeAttempt row.

The wallet loses the refunded share of the recharge (rounded up), or everything while it is disputed, once
whatever the order or number of events; a won dispute gives back what the dispute took, less any refund.
Each effect is recorded with its event (StripeEvent) and carries its own ledger key.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from wallets import services
from wallets.balance_events import wallet_spent
from wallets.models import RechargeAttempt, Transfer
from wallets.payments.exceptions import PaymentNotFulfilled
from wallets.payments.fulfilment import STRIPE_ACTOR, _event_record

Status = RechargeAttempt.Status


def owns(payment_intent_id: str | None) -> bool:
    """Whether this PaymentIntent is an auto-recharge's (a Checkout top-up's otherwise)."""
    return (
        bool(payment_intent_id)
        and RechargeAttempt.objects.filter(payment_intent_id=payment_intent_id).exists()
    )


def _locked(payment_intent_id: str | None) -> RechargeAttempt:
    attempt = (
        RechargeAttempt.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id, status=Status.SUCCEEDED)
        .first()
    )
    if attempt is None:
        # Not credited yet (the succeeded event has not arrived): Stripe is asked to deliver this again.
        raise PaymentNotFulfilled(f"No paid recharge has payment intent {payment_intent_id!r}.")
    return attempt


def _refund_target(attempt: RechargeAttempt) -> int:
    return -(-attempt.tokens * attempt.refunded_cents // max(attempt.amount_cents, 1))


def _claw_to(
    *, attempt: RechargeAttempt, target: int, key: str, memo: str, reference: str
) -> Transfer | None:
    delta = min(target, attempt.tokens) - attempt.tokens_clawed_back
    if delta <= 0 or Transfer.objects.filter(idempotency_key=key).exists():
        return None
    transfer = services.clawback_debit(
        wallet=attempt.wallet, amount=delta, key=key, actor=STRIPE_ACTOR, memo=memo, reference=reference
    )
    attempt.tokens_clawed_back += delta
    transaction.on_commit(partial(wallet_spent, wallet_id=attempt.wallet_id))
    return transfer


def _won_key(dispute_id: str) -> str:
    return f"stripe-recharge-dispute-won:{dispute_id}"


def recharge_refund(*, event_id: str, event_type: str, charge: dict[str, Any]) -> str:
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        attempt = _locked(charge.get("payment_intent"))
        refunded = min(int(charge.get("amount_refunded") or 0), attempt.amount_cents)
        attempt.refunded_cents = max(attempt.refunded_cents, refunded)
        clawed = _claw_to(
            attempt=attempt,
            target=_refund_target(attempt),
            key=f"stripe-recharge-refund:{charge.get('id')}:{charge.get('amount_refunded')}",
            memo=f"Stripe refund of an auto-recharge: {attempt.refunded_cents / 100:.2f} {attempt.currency.upper()}",
            reference=str(charge.get("id") or ""),
        )
        attempt.save(update_fields=["refunded_cents", "tokens_clawed_back", "updated_at"])
    return "clawed_back" if clawed else "nothing_to_claw"


def recharge_dispute(*, event_id: str, event_type: str, dispute: dict[str, Any]) -> str:
    dispute_id = str(dispute.get("id") or "")
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        attempt = _locked(dispute.get("payment_intent"))
        if Transfer.objects.filter(idempotency_key=_won_key(dispute_id)).exists():
            return "dispute_already_won"
        clawed = _claw_to(
            attempt=attempt,
            target=attempt.tokens,
            key=f"stripe-recharge-dispute:{dispute_id}",
            memo="Stripe dispute of an auto-recharge",
            reference=dispute_id,
        )
        attempt.disputed = True
        attempt.save(update_fields=["tokens_clawed_back", "disputed", "updated_at"])
    return "clawed_back" if clawed else "nothing_to_claw"


def recharge_dispute_closed(*, event_id: str, event_type: str, dispute: dict[str, Any]) -> str:
    dispute_id = str(dispute.get("id") or "")
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        attempt = _locked(dispute.get("payment_intent"))
        if dispute.get("status") != "won":
            return "dispute_lost"
        key = _won_key(dispute_id)
        if Transfer.objects.filter(idempotency_key=key).exists():
            return "already_returned"
        if not attempt.disputed:
            raise PaymentNotFulfilled(f"Dispute {dispute_id!r} was won before we handled its opening.")
        back = attempt.tokens_clawed_back - _refund_target(attempt)
        if back > 0:
            services.topup_credit(
                wallet=attempt.wallet,
                amount=back,
                key=key,
                actor=STRIPE_ACTOR,
                memo=f"Stripe dispute won: {back:,} clawed-back tokens returned",
                reference=dispute_id,
            )
            attempt.tokens_clawed_back -= back
        attempt.disputed = False
        attempt.save(update_fields=["tokens_clawed_back", "disputed", "updated_at"])
    return "returned" if back > 0 else "nothing_to_return"
