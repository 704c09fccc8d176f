"""The only code that talks to Stripe's API: starting a Checkout Session for a top-up pack.

Tokens are never credited here (only a verified webhook does that, see `fulfilment`). No lock is held
across the network call.
"""

import logging
from typing import cast

import stripe
from django.conf import settings
from stripe.params.checkout import SessionCreateParams

from merchants.models import Merchant
from wallets.models import TopupPack, TopupPayment
from wallets.payments.exceptions import PaymentError

log = logging.getLogger(__name__)


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
    params: SessionCreateParams = {
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
    # cast: in a condition mypy picks getattr's `bool` default overload and rejects the "" default.
    if user is not None and cast(str, getattr(user, "email", "")):
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
