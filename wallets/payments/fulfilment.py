"""What a verified Stripe event does to the ledger: credit a paid checkout once, claw back refunds and
disputes, give back what a won dispute took.

Tokens are credited from OUR TopupPayment row: the event's metadata is cross-checked, never trusted for the
amount. Each handled event is recorded (StripeEvent) in the same transaction as its ledger effect, and every
effect also carries a unique ledger key, so a replay, a duplicate or ten concurrent deliveries move tokens
once. The payment row is locked (SELECT FOR UPDATE) while its effects are decided, so a refund and a dispute
for one payment never claw back from the same snapshot.
"""

import logging
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from merchants.actors import Actor
from wallets import services
from wallets.balance_events import wallet_spent
from wallets.models import StripeEvent, TopupPayment, Transfer
from wallets.payments.exceptions import PaymentNotFulfilled

log = logging.getLogger(__name__)
STRIPE_ACTOR = Actor.system("stripe webhook")
Status = TopupPayment.Status


def _event_record(*, event_id: str, event_type: str) -> bool:
    """Insert the event in the caller's transaction; False if it was already handled.

    A concurrent delivery of the same event waits on the unique index until the first commits, then fails
    here: the check and the claim are one statement, so there is no window between them.
    """
    try:
        with transaction.atomic():
            StripeEvent.objects.create(event_id=event_id, type=event_type)
    except IntegrityError:
        return False
    return True


def _metadata_mismatch(payment: TopupPayment, session: dict[str, Any]) -> str | None:
    """Why this session does not describe this payment, or None. Absent fields are not contradictions.

    amount_total must equal our price: we enable no tax, discounts or quantity changes, so any difference
    means the session is not the one we priced, and crediting the pack's tokens would be wrong.
    """
    metadata = session.get("metadata") or {}
    checks = [
        ("merchant", metadata.get("merchant_id"), str(payment.merchant_id)),
        ("client_reference_id", session.get("client_reference_id"), str(payment.reference)),
        ("amount_total", session.get("amount_total"), payment.amount_cents),
        ("currency", (session.get("currency") or "").lower() or None, payment.currency),
    ]
    for name, seen, ours in checks:
        if seen is not None and seen != ours:
            return f"{name} is {seen!r}, ours is {ours!r}"
    return None


def topup_fulfil(*, event_id: str, event_type: str, session: dict[str, Any]) -> str:
    """Credit a paid Checkout Session's tokens, once, whatever the number or order of its events."""
    session_id = session.get("id") or ""
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        payment = TopupPayment.objects.select_for_update().filter(checkout_session_id=session_id).first()
        if payment is None:
            # Not ours (another integration on the account) or a test event. Answer 200 so Stripe does
            # not retry for days; leave the event unrecorded so a manual resend can still be processed.
            log.warning("Stripe %s %s names unknown checkout session %r", event_type, event_id, session_id)
            transaction.set_rollback(True)
            return "unknown_session"
        if mismatch := _metadata_mismatch(payment, session):
            log.error("Stripe session %s does not match payment %s: %s", session_id, payment.pk, mismatch)
            transaction.set_rollback(True)
            return "mismatch"
        if payment.status in TopupPayment.FULFILLED:
            return "already_fulfilled"  # another event for this session (completed + async) got here first
        # A paid event after we marked the session expired or failed still credits: the money arrived.
        payment.transfer = services.topup_credit(
            wallet=services.wallet_of(merchant=payment.merchant),
            amount=payment.tokens,
            key=f"stripe:{session_id}",
            actor=STRIPE_ACTOR,
            memo=f"Top-up: {payment.tokens:,} tokens",
            reference=session_id,
        )
        payment.status = Status.PAID
        payment.payment_intent_id = session.get("payment_intent") or ""
        payment.paid_at = timezone.now()
        payment.save(update_fields=["transfer", "status", "payment_intent_id", "paid_at", "updated_at"])
    return "credited"


def topup_abandon(*, event_id: str, event_type: str, session: dict[str, Any], status: str) -> str:
    """A checkout that will never be paid (expired, or an async payment that failed): nothing to credit.

    Marking it lets the status page stop waiting and tell the merchant nothing was charged.
    """
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        payment = (
            TopupPayment.objects.select_for_update()
            .filter(checkout_session_id=session.get("id") or "")
            .first()
        )
        if payment is None or payment.status != Status.CREATED:
            return "ignored"
        payment.status = status
        payment.save(update_fields=["status", "updated_at"])
    return status


def _locked_payment(payment_intent_id: str | None) -> TopupPayment:
    payment = (
        TopupPayment.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id, status__in=TopupPayment.FULFILLED)
        .first()
        if payment_intent_id
        else None
    )
    if payment is None:
        raise PaymentNotFulfilled(f"No fulfilled top-up has payment intent {payment_intent_id!r}.")
    return payment


def _claw_to(*, payment: TopupPayment, target: int, key: str, memo: str, reference: str) -> Transfer | None:
    """Bring the payment's clawed-back total up to `target` tokens (never down, never past the top-up).

    Totals rather than per-event amounts make refunds and disputes commute: any order, any duplicates, the
    wallet loses max(refunded share, everything while disputed) exactly once (a won dispute lowers the
    total again, in `topup_dispute_closed`). A refund of a disputed charge
    (Stripe pays out twice then) takes nothing more.
    """
    delta = min(target, payment.tokens) - payment.tokens_clawed_back
    if delta <= 0 or Transfer.objects.filter(idempotency_key=key).exists():
        # A key already in the ledger would replay its transfer and move nothing: counting `delta` as
        # clawed then would leave the payment's total ahead of the ledger.
        return None
    transfer = services.clawback_debit(
        wallet=services.wallet_of(merchant=payment.merchant),
        amount=delta,
        key=key,
        actor=STRIPE_ACTOR,
        memo=memo,
        reference=reference,
    )
    payment.tokens_clawed_back += delta
    if transfer.wallet_id is not None:
        transaction.on_commit(partial(wallet_spent, wallet_id=transfer.wallet_id))
    return transfer


def _refund_target(payment: TopupPayment) -> int:
    """The tokens the refunds seen so far take back: the refunded share of the top-up, rounded up."""
    return -(-payment.tokens * payment.refunded_cents // max(payment.amount_cents, 1))


def _dispute_won_key(dispute_id: str) -> str:
    return f"stripe-dispute-won:{dispute_id}"


def topup_refund(*, event_id: str, event_type: str, charge: dict[str, Any]) -> str:
    """Claw back tokens in proportion to the charge's cumulative refund, rounded up."""
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        payment = _locked_payment(charge.get("payment_intent"))  # raises: the event record rolls back
        refunded = min(int(charge.get("amount_refunded") or 0), payment.amount_cents)
        payment.refunded_cents = max(payment.refunded_cents, refunded)
        clawed = _claw_to(
            payment=payment,
            target=_refund_target(payment),
            key=f"stripe-refund:{charge.get('id')}:{charge.get('amount_refunded')}",
            memo=f"Stripe refund of {payment.refunded_cents / 100:.2f} {payment.currency.upper()}",
            reference=str(charge.get("id") or ""),
        )
        if payment.status == Status.PAID and payment.refunded_cents >= payment.amount_cents:
            payment.status = Status.REFUNDED
        payment.save(update_fields=["refunded_cents", "tokens_clawed_back", "status", "updated_at"])
    return "clawed_back" if clawed else "nothing_to_claw"


def topup_dispute(*, event_id: str, event_type: str, dispute: dict[str, Any]) -> str:
    """A dispute takes the money at once: take back everything not already clawed back."""
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        payment = _locked_payment(dispute.get("payment_intent"))
        if Transfer.objects.filter(idempotency_key=_dispute_won_key(str(dispute.get("id") or ""))).exists():
            # Stripe sent the dispute's opening again (a new event id) after we handed back what it took.
            return "dispute_already_won"
        clawed = _claw_to(
            payment=payment,
            target=payment.tokens,
            key=f"stripe-dispute:{dispute.get('id')}",
            memo="Stripe dispute",
            reference=str(dispute.get("id") or ""),
        )
        payment.status = Status.DISPUTED
        payment.save(update_fields=["tokens_clawed_back", "status", "updated_at"])
    return "clawed_back" if clawed else "nothing_to_claw"


def topup_dispute_closed(*, event_id: str, event_type: str, dispute: dict[str, Any]) -> str:
    """A closed dispute. Won: Stripe returns the money, so the wallet gets back what the dispute took, once
    (less any refund made meanwhile: that money did go back to the buyer). Lost: the clawback stands.

    Raises PaymentNotFulfilled for a win that arrives before the dispute's opening was handled (events are
    not ordered): giving back first and clawing later would end with the tokens gone although the dispute
    was won, so Stripe is asked to deliver the win again after the opening.
    """
    dispute_id = str(dispute.get("id") or "")
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        payment = _locked_payment(dispute.get("payment_intent"))
        if dispute.get("status") != "won":
            return "dispute_lost"  # lost, or an inquiry closed without a dispute: nothing comes back
        key = _dispute_won_key(dispute_id)
        if Transfer.objects.filter(idempotency_key=key).exists():
            return "already_returned"  # the same win under another event id
        if payment.status != Status.DISPUTED:
            raise PaymentNotFulfilled(f"Dispute {dispute_id!r} was won before we handled its opening.")
        back = payment.tokens_clawed_back - _refund_target(payment)
        if back > 0:
            services.topup_credit(
                wallet=services.wallet_of(merchant=payment.merchant),
                amount=back,
                key=key,
                actor=STRIPE_ACTOR,
                memo=f"Stripe dispute won: {back:,} clawed-back tokens returned",
                reference=dispute_id,
            )
            payment.tokens_clawed_back -= back
        payment.status = Status.REFUNDED if payment.refunded_cents >= payment.amount_cents else Status.PAID
        payment.save(update_fields=["tokens_clawed_back", "status", "updated_at"])
    return "returned" if back > 0 else "nothing_to_return"
