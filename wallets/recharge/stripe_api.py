"""The Stripe calls auto-recharge makes: a Customer, a setup-mode Checkout Session, reading back the saved
card, and the off-session PaymentIntent. Nothing here touches the ledger, and no lock is held across them.
"""

from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams

from wallets.payments.client import _client


def customer_create(*, wallet_id: int, email: str, name: str) -> str:
    # Keyed by wallet: two owners pressing "Save a card" at once make one Customer (Stripe keeps keys 24 h;
    # after that the id is on our row and this is not called again).
    params: dict[str, Any] = {"name": name, "metadata": {"wallet_id": str(wallet_id)}}
    if email:
        params["email"] = email
    customer = _client().v1.customers.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": f"tokenhub-customer:{wallet_id}"},
    )
    return customer.id


def setup_session_create(
    *, customer_id: str, reference: str, currency: str, success_url: str, cancel_url: str, wallet_id: int
) -> tuple[str, str]:
    """A Checkout Session in setup mode: the owner enters a card that we may charge later, off-session."""
    params: SessionCreateParams = {
        "mode": "setup",
        "customer": customer_id,
        "currency": currency,
        "client_reference_id": reference,
        "metadata": {"wallet_id": str(wallet_id), "recharge_card_setup": reference},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    session = _client().v1.checkout.sessions.create(
        params=params, options={"idempotency_key": f"tokenhub-card-setup:{reference}"}
    )
    return session.id, session.url or ""


def saved_card(*, setup_intent_id: str) -> dict[str, str]:
    """The payment method a completed SetupIntent saved: its id, and the card's brand and last four digits."""
    intent = _client().v1.setup_intents.retrieve(setup_intent_id, params={"expand": ["payment_method"]})
    method = intent.payment_method
    if isinstance(method, str):
        method = _client().v1.payment_methods.retrieve(method)
    if method is None:
        raise ValueError(f"SetupIntent {setup_intent_id} saved no payment method.")
    card = getattr(method, "card", None)
    return {
        "payment_method_id": method.id,
        "card_brand": str(getattr(card, "brand", "") or ""),
        "card_last4": str(getattr(card, "last4", "") or ""),
        "customer_id": str(intent.customer or "") if isinstance(intent.customer, str | None) else "",
    }


def off_session_charge(
    *,
    reference: str,
    amount_cents: int,
    currency: str,
    customer_id: str,
    payment_method_id: str,
    metadata: dict,
) -> stripe.PaymentIntent:
    """Create and confirm the PaymentIntent. The attempt's uuid is the idempotency key: the SDK's retries
    and a second delivery of the task create one payment, not two."""
    return _client().v1.payment_intents.create(
        params={
            "amount": amount_cents,
            "currency": currency,
            "customer": customer_id,
            "payment_method": payment_method_id,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
            "description": f"Tokenhub auto-recharge {reference}",
        },
        options={"idempotency_key": f"tokenhub-recharge:{reference}"},
    )
