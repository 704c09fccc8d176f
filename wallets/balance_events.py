"""What happens after a wallet's available balance went down: balance alerts and auto-recharge.

The ledger calls `wallet_spent` once per commit that reserved or spent a wallet's tokens (run holds,
support debits, clawbacks). It must be cheap and must never raise into the caller: the work it starts
(an email, a Stripe payment) runs in Celery tasks.
"""

from __future__ import annotations

import logging

from django.db import transaction

from wallets import alerts
from wallets.recharge import services as recharge

log = logging.getLogger(__name__)


def wallet_spent(*, wallet_id: int) -> None:
    """Check the wallet's alert thresholds and auto-recharge rule after a commit that lowered it.

    A handful of indexed reads; an email is queued (sent by a worker) and a recharge attempt inserted (its
    Stripe call made by a worker) only on a crossing. Each part in its own savepoint: a failure of one is
    logged and never reaches the run, the adjustment or the webhook that called this.
    """
    for name, check in (("alerts", alerts.balance_changed), ("auto-recharge", recharge.recharge_maybe_start)):
        try:
            with transaction.atomic():
                check(wallet_id=wallet_id)
        except Exception:
            log.exception("wallet %s: the %s check failed after a spend", wallet_id, name)
