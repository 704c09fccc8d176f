"""What happens after a wallet's available balance went down: balance alerts and auto-recharge.

The ledger calls `wallet_spent` once per commit that reserved or spent a wallet's tokens (support debits,
clawbacks), and run creation calls `wallet_spent_if_low` with the balance its hold left. They must be cheap
and must never raise into the caller: the work they start (an email, a Stripe payment) runs in Celery tasks.

A run's hold knows the wallet's available tokens after it, so the checks (four reads) run only when that is
below the wallet's *mark*: the highest alert threshold or recharge threshold, or always while an alert is
raised (only a check can re-arm it). The mark is cached per process for BALANCE_MARK_CACHE_SECONDS and
dropped at once here when the wallet is credited or its settings saved; another process sees a change
within that time. The checks themselves decide from the database, so a stale mark can only delay an alert
or a recharge by that long, never send one twice.
"""

from __future__ import annotations

import logging

from django.db import transaction

from wallets import alerts, caches
from wallets.models import BalanceAlert, RechargeSettings
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
                changed = check(wallet_id=wallet_id)
        except Exception:
            log.exception("wallet %s: the %s check failed after a spend", wallet_id, name)
            continue
        if name == "alerts" and changed is not None:
            caches.balance_mark_forget(wallet_id=wallet_id)  # an alert raised or re-armed moves the mark


ALWAYS = float("inf")


def balance_mark(*, wallet_id: int) -> float:
    """The available balance below which a spend of this wallet may cross something: the highest of its
    alert thresholds and its auto-recharge threshold (ALWAYS while an alert is raised)."""
    if (cached := caches.balance_mark(wallet_id=wallet_id)) is not None:
        return cached
    alert = BalanceAlert.objects.filter(wallet_id=wallet_id).first() or BalanceAlert(wallet_id=wallet_id)
    mark: float = 0
    if alert.level > 0:
        mark = ALWAYS
    else:
        for threshold in alerts.thresholds(alert, basis=alerts.last_topup(wallet_id=wallet_id)):
            # A percentage is crossed below its tokens; zero once nothing is left (below 1).
            mark = max(mark, threshold.tokens if threshold.percent is not None else 1)
        rule = RechargeSettings.objects.filter(wallet_id=wallet_id, enabled=True).only("threshold").first()
        if rule is not None:
            mark = max(mark, rule.threshold)
    caches.balance_mark_put(wallet_id=wallet_id, mark=mark)
    return mark


def wallet_spent_if_low(*, wallet_id: int, available: int) -> None:
    """`wallet_spent`, when the wallet's available tokens after a hold (`available`) are below its mark.

    The store's promotional credits count towards its alerts but not towards `available`, so a store
    drawing on them is checked as if low: the checks are never skipped when they could fire.
    """
    try:
        low = available < balance_mark(wallet_id=wallet_id)
    except Exception:
        log.exception("wallet %s: could not read its balance mark; checking it", wallet_id)
        low = True
    if low:
        wallet_spent(wallet_id=wallet_id)


def balance_settings_saved(*, instance: BalanceAlert | RechargeSettings, **_signal: object) -> None:
    """post_save of a wallet's alert or recharge settings: their thresholds make the mark."""
    caches.balance_mark_forget(wallet_id=instance.pk)
