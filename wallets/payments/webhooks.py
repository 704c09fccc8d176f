"""A Stripe delivery: verify its signature on the raw body, then route the event to fulfilment.

The HTTP view (wallets/webhooks.py) stays thin: it calls `event_verify`, then `event_handle`, and turns
the exceptions into status codes.
"""

import json
import time
from typing import Any

import stripe
from django.conf import settings

from wallets.models import TopupPayment
from wallets.payments import fulfilment
from wallets.payments.exceptions import InvalidWebhook
from wallets.recharge import clawbacks as recharge_clawbacks
from wallets.recharge import webhooks as recharge_webhooks

# Stripe's recommended tolerance, in both directions: an old signature is a replay, and one dated far
# ahead is either a forged header or a clock we must not trust.
SIGNATURE_TOLERANCE_SECONDS = 300


def _signed_at(signature: str) -> int:
    """The `t=` timestamp of a Stripe-Signature header (`t=...,v1=...[,v1=...]`)."""
    stamps = [part.split("=", 1)[1] for part in signature.split(",") if part.strip().startswith("t=")]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        raise InvalidWebhook("Stripe-Signature has no single numeric timestamp.")
    return int(stamps[0])


def event_verify(*, payload: bytes, signature: str | None, now: float | None = None) -> dict[str, Any]:
    """The event as plain JSON, after checking Stripe's signature on the RAW body and that it was signed
    within SIGNATURE_TOLERANCE_SECONDS of now, before or after."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # An empty secret would accept payloads anyone can sign (stripe 16 refuses it too; this names why).
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not set.")
    if not signature:
        raise InvalidWebhook("No Stripe-Signature header.")
    try:
        # construct_event refuses signatures older than the tolerance but accepts any from the future
        # (stripe-python 16 compares only `timestamp < now - tolerance`): the future side is checked below.
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except (ValueError, RecursionError, stripe.SignatureVerificationError) as exc:  # deep JSON: refused too
        raise InvalidWebhook(str(exc)) from exc
    ahead = _signed_at(signature) - (time.time() if now is None else now)
    if ahead > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidWebhook(f"Signature is dated {ahead:.0f} s in the future (tolerance 300 s).")
    if not isinstance(event, dict) or not event.get("id") or not isinstance(event.get("data"), dict):
        raise InvalidWebhook("Not a Stripe event.")
    return event


def event_handle(*, event: dict[str, Any]) -> str:
    """Act on a verified event; returns what happened (for the response and logs).

    Raises PaymentNotFulfilled for a refund or dispute we cannot place yet (see wallets/webhooks.py).
    """
    kind, obj = event.get("type", ""), event["data"].get("object") or {}
    event_id = event["id"]
    if kind == "checkout.session.completed" and obj.get("mode") == "setup":
        return recharge_webhooks.card_setup_completed(event_id=event_id, event_type=kind, session=obj)
    if kind == "payment_intent.succeeded":
        return recharge_webhooks.intent_succeeded(event_id=event_id, event_type=kind, intent=obj)
    if kind == "payment_intent.payment_failed":
        return recharge_webhooks.intent_failed(event_id=event_id, event_type=kind, intent=obj)
    if kind == "checkout.session.completed":
        if obj.get("payment_status") != "paid":
            # Async methods (bank debits) complete unpaid; async_payment_succeeded follows when they pay.
            return "not_paid"
        return fulfilment.topup_fulfil(event_id=event_id, event_type=kind, session=obj)
    if kind == "checkout.session.async_payment_succeeded":
        return fulfilment.topup_fulfil(event_id=event_id, event_type=kind, session=obj)
    if kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        Status = TopupPayment.Status
        ended = Status.EXPIRED if kind == "checkout.session.expired" else Status.FAILED
        return fulfilment.topup_abandon(event_id=event_id, event_type=kind, session=obj, status=ended)
    if kind.startswith("charge.") and recharge_clawbacks.owns(obj.get("payment_intent")):
        return _recharge_clawback(event_id=event_id, kind=kind, obj=obj)
    if kind == "charge.refunded":
        return fulfilment.topup_refund(event_id=event_id, event_type=kind, charge=obj)
    if kind == "charge.dispute.created":
        return fulfilment.topup_dispute(event_id=event_id, event_type=kind, dispute=obj)
    if kind == "charge.dispute.closed":
        return fulfilment.topup_dispute_closed(event_id=event_id, event_type=kind, dispute=obj)
    return "ignored"


def _recharge_clawback(*, event_id: str, kind: str, obj: dict[str, Any]) -> str:
    """A refund or dispute of an auto-recharge's charge (wallets/recharge/clawbacks.py)."""
    if kind == "charge.refunded":
        return recharge_clawbacks.recharge_refund(event_id=event_id, event_type=kind, charge=obj)
    if kind == "charge.dispute.created":
        return recharge_clawbacks.recharge_dispute(event_id=event_id, event_type=kind, dispute=obj)
    if kind == "charge.dispute.closed":
        return recharge_clawbacks.recharge_dispute_closed(event_id=event_id, event_type=kind, dispute=obj)
    return "ignored"
