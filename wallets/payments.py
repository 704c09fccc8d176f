"""Stripe top-ups (DESIGN.md "Stripe top-ups"): the only module that talks to Stripe.

Tokens are credited only from a verified webhook, by `topup_fulfil`, from OUR TopupPayment row: the event's
metadata is cross-checked, never trusted for the amount. Each handled event is recorded (StripeEvent) in the
same transaction as its ledger effect, and every effect also carries a unique ledger key, so a replay, a
duplicate or ten concurrent deliveries move tokens once. The payment row is locked (SELECT FOR UPDATE) while
its effects are decided, so a refund and a dispute for one payment never claw back from the same snapshot.
No lock is held across the Stripe API call in `checkout_create`.
"""

import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from merchants.models import Merchant
from wallets import services
from wallets.actors import Actor
from wallets.exceptions import LedgerError
from wallets.models import Account, StripeEvent, TopupPack, TopupPayment, Transfer
from wallets.reconcile import Violation, register_check

log = logging.getLogger(__name__)
STRIPE_ACTOR = Actor.system("stripe webhook")
Status = TopupPayment.Status


class PaymentError(LedgerError):
    code = "payment_error"


class InvalidWebhook(PaymentError):
    """Missing or bad signature, stale timestamp, or a body that is not JSON: answer 400, change nothing."""

    code = "invalid_webhook"


class PaymentNotFulfilled(PaymentError):
    """A refund or dispute for a payment we have not fulfilled (yet): the webhook answers non-2xx."""

    code = "payment_not_fulfilled"


def _client() -> stripe.StripeClient:
    # A client per call instead of the module globals (stripe.api_key, stripe.api_base): no shared mutable
    # state between threads, and tests point STRIPE_API_BASE at a local fake with override_settings.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,
    )


def enabled() -> bool:
    """Card top-ups need a Stripe key and a webhook secret (the webhook is what credits the tokens)."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def checkout_create(
    *, merchant: Merchant, pack: TopupPack, user, success_url: str, cancel_url: str
) -> TopupPayment:
    """Start a Stripe Checkout Session for `pack`; the returned payment's `checkout_url` is where to send
    the buyer. `{payment_id}` in either URL is replaced by the new payment's id.

    Our row is inserted (and committed, outside a request transaction) before Stripe is called, so a webhook
    can never name a session we do not know; its uuid is the idempotency key, so the SDK's network retries
    create one session, not two. Call this outside a transaction: it waits on the network.
    """
    if not enabled():
        raise PaymentError("Card top-ups are not set up on this server; support can credit your wallet.")
    if not pack.active:
        raise PaymentError("This top-up pack is no longer on sale.")
    payment = TopupPayment.objects.create(
        merchant=merchant,
        pack=pack,
        tokens=pack.tokens,
        amount_cents=pack.price_cents,
        currency=pack.currency.lower(),
        created_by=user,
    )
    metadata = {
        "merchant_id": str(merchant.pk),
        "pack_id": str(pack.pk),
        "tokens": str(pack.tokens),
        "topup_payment_id": str(payment.pk),
    }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": payment.currency,
                    "unit_amount": payment.amount_cents,
                    "product_data": {"name": f"{pack.name}: {pack.tokens:,} tokens"},
                },
            }
        ],
        "metadata": metadata,
        # Refund and dispute events carry the PaymentIntent, not the session: tag it with ours as well.
        "payment_intent_data": {"metadata": metadata},
        "client_reference_id": str(payment.reference),
        "success_url": success_url.replace("{payment_id}", str(payment.pk)),
        "cancel_url": cancel_url.replace("{payment_id}", str(payment.pk)),
    }
    if user is not None and getattr(user, "email", ""):
        params["customer_email"] = user.email
    try:
        session = _client().v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"tokenhub-checkout:{payment.reference}"}
        )
    except stripe.StripeError as exc:
        log.warning("Stripe refused checkout for payment %s: %s", payment.pk, exc)
        # The buyer never got a session URL, so nothing can pay for this row. A session Stripe may have
        # created before the connection broke is unknown to us: its webhook would credit nothing.
        payment.delete()
        raise PaymentError("Stripe could not start the checkout; nothing was charged.") from exc
    payment.checkout_session_id = session.id
    payment.checkout_url = session.url or ""
    payment.save(update_fields=["checkout_session_id", "checkout_url", "updated_at"])
    return payment


def event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event as plain JSON, after checking Stripe's signature on the RAW body (tolerance 300 s)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # An empty secret would accept payloads anyone can sign (stripe 16 refuses it too; this names why).
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not set.")
    if not signature:
        raise InvalidWebhook("No Stripe-Signature header.")
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=300)
        event = json.loads(payload)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidWebhook(str(exc)) from exc
    if not isinstance(event, dict) or not event.get("id") or not isinstance(event.get("data"), dict):
        raise InvalidWebhook("Not a Stripe event.")
    return event


def event_handle(*, event: dict[str, Any]) -> str:
    """Act on a verified event; returns what happened (for the response and logs).

    Raises PaymentNotFulfilled for a refund or dispute we cannot place yet (see webhooks.py).
    """
    kind, obj = event.get("type", ""), event["data"].get("object") or {}
    if kind == "checkout.session.completed":
        if obj.get("payment_status") != "paid":
            # Async methods (bank debits) complete unpaid; async_payment_succeeded follows when they pay.
            return "not_paid"
        return topup_fulfil(event_id=event["id"], event_type=kind, session=obj)
    if kind == "checkout.session.async_payment_succeeded":
        return topup_fulfil(event_id=event["id"], event_type=kind, session=obj)
    if kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        ended = Status.EXPIRED if kind == "checkout.session.expired" else Status.FAILED
        return topup_abandon(event_id=event["id"], event_type=kind, session=obj, status=ended)
    if kind == "charge.refunded":
        return topup_refund(event_id=event["id"], event_type=kind, charge=obj)
    if kind == "charge.dispute.created":
        return topup_dispute(event_id=event["id"], event_type=kind, dispute=obj)
    return "ignored"


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
    wallet loses max(refunded share, everything if disputed) exactly once. A refund of a disputed charge
    (Stripe pays out twice then) takes nothing more.
    """
    delta = min(target, payment.tokens) - payment.tokens_clawed_back
    if delta <= 0:
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
    return transfer


def topup_refund(*, event_id: str, event_type: str, charge: dict[str, Any]) -> str:
    """Claw back tokens in proportion to the charge's cumulative refund, rounded up."""
    with transaction.atomic():
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate_event"
        payment = _locked_payment(charge.get("payment_intent"))  # raises: the event record rolls back
        refunded = min(int(charge.get("amount_refunded") or 0), payment.amount_cents)
        payment.refunded_cents = max(payment.refunded_cents, refunded)
        target = -(-payment.tokens * payment.refunded_cents // max(payment.amount_cents, 1))  # ceil
        clawed = _claw_to(
            payment=payment,
            target=target,
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


_P = TopupPayment._meta.db_table
_T = Transfer._meta.db_table
_A = Account._meta.db_table
_FULFILLED = ", ".join(f"'{status}'" for status in TopupPayment.FULFILLED)

_PAID_WITHOUT_TOPUP = f"""
SELECT p.id FROM {_P} p
  LEFT JOIN {_T} t ON t.id = p.transfer_id
  LEFT JOIN {_A} w ON w.id = t.wallet_id
 WHERE p.status IN ({_FULFILLED})
   AND (t.id IS NULL OR t.kind <> 'topup' OR t.amount <> p.tokens
        OR t.idempotency_key IS DISTINCT FROM 'stripe:' || p.checkout_session_id
        OR w.merchant_id IS DISTINCT FROM p.merchant_id)
 ORDER BY p.id
"""  # noqa: S608 (table names and statuses are ours)

_TOPUP_WITHOUT_PAYMENT = f"""
SELECT t.id FROM {_T} t
  LEFT JOIN {_P} p ON p.transfer_id = t.id AND p.status IN ({_FULFILLED})
 WHERE t.kind = 'topup' AND t.idempotency_key LIKE %s AND p.id IS NULL
 ORDER BY t.id
"""  # noqa: S608


@register_check
def check_paid_sessions_topped_up_once() -> list[Violation]:
    """Invariant 6: every paid session has exactly one top-up of its tokens, and every Stripe top-up a
    paid session (the key is unique, so "one" is "the linked transfer is the session's")."""
    with connection.cursor() as cursor:
        cursor.execute(_PAID_WITHOUT_TOPUP)
        unpaid = tuple(row[0] for row in cursor.fetchall())
        cursor.execute(_TOPUP_WITHOUT_PAYMENT, ["stripe:%"])
        orphans = tuple(row[0] for row in cursor.fetchall())
    violations = []
    if unpaid:
        violations.append(
            Violation(6, "paid_without_topup", f"{len(unpaid)} paid payment(s) lack their top-up", unpaid)
        )
    if orphans:
        violations.append(
            Violation(
                6, "topup_without_payment", f"{len(orphans)} Stripe top-up(s) lack a paid payment", orphans
            )
        )
    return violations
