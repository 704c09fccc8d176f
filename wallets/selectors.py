"""Tenant-scoped reads of the ledger: each takes the merchant and sees only its wallet."""

from dataclasses import dataclass

from django.db.models import QuerySet

from merchants.models import Merchant
from wallets.models import Account, Price, TopupPack, Transfer


@dataclass(frozen=True, slots=True)
class Balance:
    balance: int
    held: int
    available: int
    in_debt: bool = False


def wallet_balance(*, merchant: Merchant) -> Balance:
    wallet = (
        Account.objects.filter(merchant=merchant)
        .only("credits_posted", "debits_posted", "debits_pending", "in_debt")
        .first()
    )
    if wallet is None:
        return Balance(0, 0, 0)
    return Balance(wallet.balance, wallet.debits_pending, wallet.available, wallet.in_debt)


def transfers_of(*, merchant: Merchant, kinds: list[str] | None = None) -> QuerySet[Transfer]:
    transfers = Transfer.objects.filter(wallet__merchant=merchant).order_by("-id")
    if kinds:
        transfers = transfers.filter(kind__in=kinds)
    return transfers


def transfer_of(*, merchant: Merchant, transfer_id: int) -> Transfer | None:
    return Transfer.objects.filter(wallet__merchant=merchant, pk=transfer_id).first()


def price_for(*, model: str, at=None) -> Price | None:
    """The price row in force for `model` at `at` (default now): the latest effective_from not after it."""
    from django.utils import timezone

    return (
        Price.objects.filter(model=model, effective_from__lte=at or timezone.now())
        .order_by("-effective_from")
        .first()
    )


def current_prices() -> dict[str, Price]:
    from django.utils import timezone

    now = timezone.now()
    prices: dict[str, Price] = {}
    for price in Price.objects.filter(effective_from__lte=now).order_by("model", "-effective_from"):
        prices.setdefault(price.model, price)
    return prices


def topup_packs() -> QuerySet[TopupPack]:
    return TopupPack.objects.filter(active=True)


def tokens_used_since(*, merchant: Merchant, since) -> int:
    """Tokens charged for AI use since `since`, net of refunds: what the merchant actually spent."""
    from django.db.models import Q, Sum

    totals = Transfer.objects.filter(wallet__merchant=merchant, created_at__gte=since).aggregate(
        charged=Sum("amount", filter=Q(kind=Transfer.Kind.SETTLE)),
        refunded=Sum("amount", filter=Q(kind=Transfer.Kind.REFUND)),
    )
    return (totals["charged"] or 0) - (totals["refunded"] or 0)
