"""Balance alerts: an email and a dashboard banner when a wallet's available tokens cross a threshold, and
sponsor alerts at 80 % and 100 % of a sponsorship's month.

Thresholds are percentages of the wallet's last top-up (20 % and 5 % unless the owner chose others) and 0.
Each crossing alerts once: the BalanceAlert row's `level` (how many thresholds the balance is below) is
raised by a conditional UPDATE, so of twenty runs crossing together exactly one sends the email. The level
comes back down (re-arming the alerts) only once new credits arrived, so a hold released by a failed run
cannot make the same alert fire twice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date
from typing import cast

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.emails import email_send
from merchants.models import Membership, Merchant
from wallets.models import Account, BalanceAlert, SponsorshipAlertState, Transfer

log = logging.getLogger(__name__)

SPONSOR_PERCENTS = (80, 100)
MAX_PERCENT_THRESHOLDS = 3
# Credits that count as "the last top-up" for percentage thresholds, newest first.
_BASIS_KINDS = ("topup", "promotion", "adjustment")


@dataclass(frozen=True, slots=True)
class Threshold:
    tokens: int
    percent: int | None  # None: the zero threshold

    def crossed_by(self, available: int) -> bool:
        # Zero is crossed when nothing is left; a percentage once the balance is below it.
        return available <= 0 if self.percent is None else available < self.tokens


@dataclass(frozen=True, slots=True)
class Banner:
    available: int
    threshold: Threshold


def last_topup(*, wallet_id: int) -> int:
    """The tokens of the wallet's newest credit (a top-up, a grant or support's credit); 0 if none."""
    amount = (
        Transfer.objects.filter(wallet_id=wallet_id, credit_account_id=wallet_id, kind__in=_BASIS_KINDS)
        .order_by("-id")
        .values_list("amount", flat=True)
        .first()
    )
    return amount or 0


def thresholds(alert: BalanceAlert, *, basis: int) -> list[Threshold]:
    """The alert's thresholds in tokens, highest first. Without a top-up only zero is meaningful."""
    found = []
    if basis > 0:
        for percent in sorted({int(p) for p in alert.percents if 0 < int(p) < 100}, reverse=True):
            found.append(Threshold(tokens=math.ceil(basis * percent / 100), percent=percent))
    if alert.alert_at_zero:
        found.append(Threshold(tokens=0, percent=None))
    return found


def _alert_of(wallet_id: int) -> BalanceAlert:
    alert = BalanceAlert.objects.filter(wallet_id=wallet_id).first()
    if alert is None:
        alert, _created = BalanceAlert.objects.get_or_create(wallet_id=wallet_id)
    return alert


def alert_settings_save(
    *, merchant: Merchant, email_enabled: bool, percents: list[int], alert_at_zero: bool
) -> BalanceAlert:
    wallet = Account.objects.get(merchant=merchant, kind=Account.Kind.WALLET)
    alert = _alert_of(wallet.pk)
    alert.email_enabled = email_enabled
    alert.percents = sorted({int(p) for p in percents}, reverse=True)[:MAX_PERCENT_THRESHOLDS]
    alert.alert_at_zero = alert_at_zero
    alert.save(update_fields=["email_enabled", "percents", "alert_at_zero"])
    return alert


def store_available(wallet: Account) -> int:
    """What the store can spend of its own: its wallet and its unexpired promotional credits (a trial
    store with credits left has not run out). Sponsorships are another store's and do not count."""
    promotional = (
        Account.objects.filter(
            merchant_id=cast(int, wallet.merchant_id), kind=Account.Kind.PROMO, expires_at__gt=timezone.now()
        )
        .annotate(left=F("credits_posted") - F("debits_posted") - F("debits_pending"))
        .filter(left__gt=0)
        .aggregate(total=Sum("left"))["total"]
    )
    return wallet.available + (promotional or 0)


def balance_changed(*, wallet_id: int) -> int | None:
    """Raise or re-arm the wallet's alert level from its available tokens now; emails the owners on a new
    crossing. Returns the level it set, or None when nothing changed."""
    account = (
        Account.objects.filter(pk=wallet_id, kind=Account.Kind.WALLET).select_related("merchant").first()
    )
    if account is None or account.merchant is None:
        return None
    merchant = account.merchant
    alert = _alert_of(wallet_id)
    levels = thresholds(alert, basis=last_topup(wallet_id=wallet_id))
    available = store_available(account)
    crossed = [t for t in levels if t.crossed_by(available)]
    new = len(crossed)
    rows = BalanceAlert.objects.filter(pk=wallet_id)
    if new > alert.level:
        won = rows.filter(level__lt=new).update(
            level=new, credits_seen=account.credits_posted, alerted_at=timezone.now()
        )
        if won and alert.email_enabled:
            _email_owners(merchant, crossed[-1], available)
        return new if won else None
    if new < alert.level and account.credits_posted > alert.credits_seen:
        won = rows.filter(level__gt=new, credits_seen__lt=account.credits_posted).update(
            level=new, credits_seen=account.credits_posted
        )
        return new if won else None
    return None


def _owner_emails(merchant_id: int) -> list[str]:
    return list(
        Membership.objects.filter(merchant_id=merchant_id, role=Membership.Role.OWNER)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def _email_owners(merchant: Merchant, threshold: Threshold, available: int) -> None:
    context = {
        "store": merchant.name,
        "available": f"{max(available, 0):,}",
        "threshold": f"{threshold.tokens:,}",
        "percent": threshold.percent,
        "url": f"{settings.SITE_URL}{reverse('wallet')}",
    }
    for to in _owner_emails(merchant.pk):
        email_send(to=to, template="balance_alert", context=context)


def banner_for(*, merchant: Merchant) -> Banner | None:
    """The dashboard banner: the lowest threshold the wallet is below now (live, not the email state)."""
    wallet = Account.objects.filter(merchant=merchant, kind=Account.Kind.WALLET).first()
    if wallet is None:
        return None
    alert = BalanceAlert.objects.filter(wallet_id=wallet.pk).first() or BalanceAlert(wallet=wallet)
    available = store_available(wallet)
    crossed = [t for t in thresholds(alert, basis=last_topup(wallet_id=wallet.pk)) if t.crossed_by(available)]
    return Banner(available=available, threshold=crossed[-1]) if crossed else None


def _month_start(today: date | None = None) -> date:
    return (today or timezone.now().date()).replace(day=1)


def sponsorship_usage_changed(
    *,
    sponsorship_id: int,
    sponsor_merchant_id: int,
    used: int,
    limit: int,
    month: date | None = None,
    beneficiary_name: str = "",
) -> int | None:
    """Alert the sponsor's owners once when a sponsorship's use this month reaches 80 % and once at 100 %.

    Call it after the use changed (on commit of a hold drawn from the sponsorship is best). Never raises:
    an alert must not fail a run. Returns the level newly reached (1: 80 %, 2: 100 %), or None.
    """
    try:
        with transaction.atomic():
            if limit <= 0:
                return None
            level = sum(1 for percent in SPONSOR_PERCENTS if used * 100 >= percent * limit)
            if level == 0:
                return None
            first_day = (month or _month_start()).replace(day=1)
            SponsorshipAlertState.objects.get_or_create(sponsorship_id=sponsorship_id, month=first_day)
            won = SponsorshipAlertState.objects.filter(
                sponsorship_id=sponsorship_id, month=first_day, level__lt=level
            ).update(level=level, updated_at=timezone.now())
            if not won:
                return None
            sponsor = Merchant.objects.get(pk=sponsor_merchant_id)
            context = {
                "store": sponsor.name,
                "beneficiary": beneficiary_name or _("the store you sponsor"),
                "percent": SPONSOR_PERCENTS[level - 1],
                "used": f"{used:,}",
                "limit": f"{limit:,}",
                "url": f"{settings.SITE_URL}{reverse('wallet')}",
            }
            for to in _owner_emails(sponsor.pk):
                email_send(to=to, template="sponsorship_alert", context=context)
            return level
    except Exception:
        log.exception("sponsorship %s: the usage alert could not be checked", sponsorship_id)
        return None
