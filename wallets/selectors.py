"""Tenant-scoped reads of the ledger: each takes the merchant and sees only its wallet."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from merchants.models import Merchant
from wallets.funding import month_start
from wallets.models import Account, Price, Sponsorship, SponsorshipMonth, TopupPack, Transfer


@dataclass(frozen=True, slots=True)
class PromoBlock:
    tokens: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Balance:
    """What a store has of its own: its wallet (paid and granted tokens) and its unexpired promotional
    credits. Sponsorships are counted apart (`sponsored_available`), since they are another store's."""

    balance: int
    held: int
    available: int
    in_debt: bool = False
    paid_available: int = 0
    promotional_available: int = 0
    promotional: tuple[PromoBlock, ...] = ()
    sponsored_available: int = 0


def wallet_balance(*, merchant: Merchant, with_sponsorships: bool = True) -> Balance:
    now = timezone.now()
    accounts = list(
        Account.objects.filter(merchant=merchant)
        .filter(Q(kind=Account.Kind.WALLET) | Q(kind=Account.Kind.PROMO, expires_at__gt=now))
        .only("kind", "credits_posted", "debits_posted", "debits_pending", "in_debt", "expires_at")
        .order_by("expires_at", "id")
    )
    wallet = next((account for account in accounts if account.kind == Account.Kind.WALLET), None)
    promos = [account for account in accounts if account.kind == Account.Kind.PROMO and account.available > 0]
    promotional = sum(block.available for block in promos)
    sponsored = 0
    if with_sponsorships:
        sponsored = sponsored_available(merchant=merchant)
    paid = wallet.available if wallet else 0
    return Balance(
        balance=sum(account.balance for account in accounts),
        held=sum(account.debits_pending for account in accounts),
        available=paid + promotional,
        in_debt=bool(wallet and wallet.in_debt),
        paid_available=paid,
        promotional_available=promotional,
        promotional=tuple(PromoBlock(block.available, block.expires_at) for block in promos),  # type: ignore[arg-type]
        sponsored_available=sponsored,
    )


def _statement_of(merchant: Merchant) -> Q:
    # The store's own accounts (wallet and promotional blocks), and a sponsor's transfers for its runs:
    # two index scans on (wallet, id) and (beneficiary, id) rather than a join per row.
    accounts = Account.objects.filter(merchant=merchant).values("pk")
    return Q(wallet_id__in=accounts) | Q(beneficiary_id__in=accounts)


def transfers_of(*, merchant: Merchant, kinds: list[str] | None = None) -> QuerySet[Transfer]:
    transfers = (
        Transfer.objects.filter(_statement_of(merchant))
        .select_related("wallet", "beneficiary__merchant", "wallet__merchant")
        .order_by("-id")
    )
    if kinds:
        transfers = transfers.filter(kind__in=kinds)
    return transfers


def transfer_of(*, merchant: Merchant, transfer_id: int) -> Transfer | None:
    return Transfer.objects.filter(_statement_of(merchant), pk=transfer_id).first()


def price_for(*, model: str, at=None) -> Price | None:
    """The price row in force for `model` at `at` (default now): the latest effective_from not after it."""
    from django.utils import timezone

    if at is None:  # the hot path (every run's estimate): from the cached rows, effective dates included
        from wallets.caches import price_in_force

        return price_in_force(model=model)
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


@dataclass(frozen=True, slots=True)
class FundingPart:
    """One source of a run's hold: what it reserved and what it was charged (0 until the run is charged)."""

    source: str
    held: int
    charged: int
    sponsor: str = ""


def funding_of(*, first_hold: Transfer, total: int) -> list[FundingPart]:
    """Who pays a run, part by part in draw order. A one-source run costs no query when its first hold was
    loaded with `select_related("hold__wallet", "hold__resolution")`-style joins."""
    from wallets.funding import hold_parts

    parts = hold_parts(first=first_hold, total=total, related=("wallet__merchant", "resolution"))
    funding = []
    for part in parts:
        # A hold just created has no resolution yet: don't ask the database for one.
        resolution = (
            getattr(part, "resolution", None) if getattr(part, "known_source", None) is None else None
        )
        charged = (
            resolution.amount if resolution is not None and resolution.kind == Transfer.Kind.SETTLE else 0
        )
        sponsor = ""
        if part.sponsorship_month_id is not None and part.wallet is not None and part.wallet.merchant:
            sponsor = part.wallet.merchant.name
        funding.append(FundingPart(part.source, part.amount, charged, sponsor))
    return funding


# --- Sponsorships (wallets.sponsorships writes them) ---


def sponsorship_month_usage(sponsorship: Sponsorship) -> tuple[int, int, int]:
    """(held, spent, limit) of this month, without creating the month's row."""
    month = SponsorshipMonth.objects.filter(sponsorship=sponsorship, month=month_start()).first()
    if month is None:
        return 0, 0, sponsorship.monthly_limit
    return month.held, month.spent, month.limit_tokens


def sponsored_available(*, merchant: Merchant, tool: str | None = None) -> int:
    """Tokens `merchant` can still spend from sponsorships this month: the first active sponsorship (that
    covers `tool`, if given) — what is left of its month, and no more than its sponsor's wallet holds."""
    for sponsorship in Sponsorship.objects.filter(
        beneficiary=merchant, status=Sponsorship.Status.ACTIVE
    ).order_by("created_at", "id"):
        if tool is not None and not sponsorship.covers(tool):
            continue
        held, spent, limit = sponsorship_month_usage(sponsorship)
        wallet = Account.objects.filter(merchant_id=sponsorship.sponsor_id, kind=Account.Kind.WALLET).first()
        return max(0, min(limit - held - spent, wallet.available if wallet else 0))
    return 0


def sponsorships_of(*, merchant: Merchant):
    """Sponsorships this store gives or receives, live first."""
    return (
        Sponsorship.objects.filter(Q(sponsor=merchant) | Q(beneficiary=merchant))
        .select_related("sponsor", "beneficiary")
        .order_by("-created_at", "-id")
    )


def sponsorship_of(*, merchant: Merchant, sponsorship_id) -> Sponsorship | None:
    """One sponsorship this store is a party to; another store's id finds nothing."""
    try:
        return sponsorships_of(merchant=merchant).filter(pk=int(sponsorship_id)).first()
    except (TypeError, ValueError):
        return None
