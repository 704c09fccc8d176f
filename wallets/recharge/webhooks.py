"""What Stripe's verified events do for auto-recharge: save a card, credit a paid recharge once, fail one.

As for Checkout top-ups (wallets.payments.fulfilment): each handled event is recorded (StripeEvent) in the
same transaction as its effect, the tokens come from OUR RechargeAttempt row (the event is cross-checked,
never trusted for the amount), and the credit's ledger key names the attempt, so replays move tokens once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import stripe
from django.db import transaction
from django.utils import timezone

from wallets import services
from wallets.models import RechargeAttempt, RechargeCardSetup, RechargeSettings, StripeEvent
from wallets.payments.exceptions import PaymentNotFulfilled
from wallets.payments.fulfilment import STRIPE_ACTOR, _event_record
from wallets.recharge import stripe_api
from wallets.recharge.services import attempt_fail

log = logging.getLogger(__name__)
Status = RechargeAttempt.Status


def credit_key(attempt: RechargeAttempt) -> str:
    return f"stripe-recharge:{attempt.reference}"


def _locked_attempt(intent: dict[str, Any]) -> RechargeAttempt | None:
    """Ours by the PaymentIntent id we stored, or (the webhook can beat our own response from Stripe) by the
    attempt's uuid in the metadata. A Checkout top-up's PaymentIntent has neither: not ours."""
    intent_id = intent.get("id") or ""
    rows = RechargeAttempt.objects.select_for_update()
    attempt = rows.filter(payment_intent_id=intent_id).first() if intent_id else None
    if attempt is None:
        metadata = intent.get("metadata") or {}
        try:
            reference = uuid.UUID(str(metadata.get("recharge_attempt") or ""))
        except ValueError:
            return None
        attempt = rows.filter(reference=reference).first()
        if attempt is None or str(attempt.wallet_id) != str(metadata.get("wallet_id")):
            return None
        if attempt.payment_intent_id and attempt.payment_intent_id != intent_id:
            return None
    return attempt


def _mismatch(attempt: RechargeAttempt, intent: dict[str, Any]) -> str | None:
    checks = [
        ("amount", intent.get("amount"), attempt.amount_cents),
        ("currency", (intent.get("currency") or "").lower() or None, attempt.currency),
    ]
    for name, seen, ours in checks:
        if seen is not None and seen != ours:
            return f"{name} is {seen!r}, ours is {ours!r}"
    return None


def intent_succeeded(*, event_id: str, event_type: str, intent: dict[str, Any]) -> str:
    """Credit the attempt's tokens once. A payment we had marked failed (Stripe unreachable, our side gave
    up) still credits: the money arrived."""
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        attempt = _locked_attempt(intent)
        if attempt is None:
            transaction.set_rollback(True)  # a Checkout top-up's intent, or not ours: leave it unrecorded
            return "ignored"
        if mismatch := _mismatch(attempt, intent):
            log.error(
                "Stripe intent %s does not match recharge %s: %s", intent.get("id"), attempt.pk, mismatch
            )
            transaction.set_rollback(True)
            return "mismatch"
        if attempt.status == Status.SUCCEEDED:
            return "already_credited"
        attempt.transfer = services.topup_credit(
            wallet=attempt.wallet,
            amount=attempt.tokens,
            key=credit_key(attempt),
            actor=STRIPE_ACTOR,
            memo=f"Auto-recharge: {attempt.tokens:,} tokens",
            reference=str(intent.get("id") or ""),
        )
        attempt.status = Status.SUCCEEDED
        attempt.payment_intent_id = intent.get("id") or attempt.payment_intent_id
        attempt.failure_message = ""
        attempt.save(
            update_fields=["transfer", "status", "payment_intent_id", "failure_message", "updated_at"]
        )
        RechargeSettings.objects.filter(wallet_id=attempt.wallet_id).update(
            consecutive_failures=0, updated_at=timezone.now()
        )
    return "credited"


def intent_failed(*, event_id: str, event_type: str, intent: dict[str, Any]) -> str:
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        attempt = _locked_attempt(intent)
        if attempt is None:
            transaction.set_rollback(True)
            return "ignored"
        error = intent.get("last_payment_error") or {}
        message = str(error.get("message") or "The card was declined.")
        failed = attempt_fail(attempt_id=attempt.pk, message=message, payment_intent_id=intent.get("id"))
    return "failed" if failed else "already_resolved"


def card_setup_completed(*, event_id: str, event_type: str, session: dict[str, Any]) -> str:
    """A setup-mode Checkout Session completed: remember the card it saved for off-session recharges.

    Stripe is asked for the card (brand, last four) before our transaction, so no lock waits on it; if it
    cannot answer, the event is refused (PaymentNotFulfilled, a 409) and Stripe delivers it again.
    """
    setup = RechargeCardSetup.objects.filter(checkout_session_id=session.get("id") or "").first()
    if setup is None:
        log.warning("Stripe %s %s names unknown setup session %r", event_type, event_id, session.get("id"))
        return "unknown_session"
    if StripeEvent.objects.filter(event_id=event_id).exists() or setup.completed_at:
        return "duplicate_event"
    setup_intent = session.get("setup_intent")
    if isinstance(setup_intent, dict):
        setup_intent = setup_intent.get("id")
    if not setup_intent:
        return "no_setup_intent"
    try:
        card = stripe_api.saved_card(setup_intent_id=str(setup_intent))
    except (stripe.StripeError, ValueError) as exc:
        raise PaymentNotFulfilled(f"Could not read the card saved by {setup_intent}: {exc}") from exc
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        setup = RechargeCardSetup.objects.select_for_update().get(pk=setup.pk)
        if setup.completed_at:
            return "already_saved"
        rule = RechargeSettings.objects.select_for_update().get(wallet_id=setup.wallet_id)
        rule.payment_method_id = card["payment_method_id"]
        rule.card_brand = card["card_brand"][:32]
        rule.card_last4 = card["card_last4"][:4]
        if card["customer_id"] and not rule.stripe_customer_id:
            rule.stripe_customer_id = card["customer_id"]
        rule.save(
            update_fields=[
                "payment_method_id",
                "card_brand",
                "card_last4",
                "stripe_customer_id",
                "updated_at",
            ]
        )
        setup.completed_at = timezone.now()
        setup.save(update_fields=["completed_at"])
    return "card_saved"
