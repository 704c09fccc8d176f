"""Stripe top-ups (docs/architecture.md, "The ledger and its money paths"), by concern.

- `client`: the only code that talks to Stripe (Checkout Sessions).
- `webhooks`: verifies a delivery's signature and routes each event type to fulfilment.
- `fulfilment`: what an event does to the ledger: credit a paid checkout once, claw back refunds and
  disputes, give back what a won dispute took.
- `exceptions`: the errors views and the webhook turn into answers.

Invariant 6 (every paid session has exactly one top-up) is checked in `wallets.reconcile` with the others.
"""
