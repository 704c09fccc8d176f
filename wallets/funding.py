"""Who pays for a run: its hold drawn from several funding sources, in one fixed order.

1. an active sponsorship of the store that covers the tool (the sponsor's wallet pays, up to the
   sponsorship's monthly limit);
2. the store's promotional credit blocks, soonest-expiring first;
3. the store's own wallet (paid and granted tokens).

Each part is an ordinary hold on its source's account, created in one transaction, and each is charged or
released with the run: the charge is taken from the parts in the same order (a sponsor pays first, paid
tokens last), and whatever a part does not charge is released. Every guard is the ledger's own conditional
UPDATE, so racing runs can never pass a source's balance or a sponsorship's month. Rows are locked in one
order everywhere (sponsorship month, then accounts by id), so two transactions never wait on each other in
a cycle. docs/architecture.md, "Who pays", has the rules and the reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from merchants.actors import Actor
from merchants.models import Merchant
from wallets.alerts import sponsorship_usage_changed
from wallets.exceptions import HoldAlreadyResolved, HoldExceeded, InsufficientTokens
from wallets.models import Account, Sponsorship, SponsorshipMonth, Transfer
from wallets.services import hold_create, hold_post, hold_void, wallet_of

SPONSORED = "sponsored"
PROMOTIONAL = "promotional"
PAID = "paid"

# How often a plan is made again when a racing run took a source's tokens between planning and reserving.
PLAN_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Source:
    """One place tokens can come from, with what it can give right now (read without a lock)."""

    kind: str
    account_id: int
    available: int
    expires_at: datetime | None = None
    sponsorship: Sponsorship | None = None


@dataclass(frozen=True, slots=True)
class Part:
    source: Source
    amount: int


@dataclass(frozen=True, slots=True)
class FundedHold:
    """A run's hold parts in draw order, and the wallets whose available balance they lowered (the store's
    own, and a sponsor's) for alerts and auto-recharge."""

    parts: list[Transfer]
    wallet_ids: frozenset[int]
    # Each of those wallets' available tokens after the hold (for the store's own wallet when no part drew
    # on it: as read just before), so balance checks run only when a wallet is low (wallets.balance_events).
    available: dict[int, int]


class _Raced(Exception):
    """A guard refused a part that the plan expected to fit: someone else took those tokens."""


def month_start(moment: datetime | None = None) -> date:
    """The sponsorship month a moment falls in: calendar months in UTC, the same for both stores."""
    moment = (moment or timezone.now()).astimezone(UTC)
    return moment.date().replace(day=1)


def part_key(key: str, index: int) -> str:
    """The first part keeps the caller's key (a run's hold key), so a one-source hold looks as it always did."""
    return key if index == 0 else f"{key}:{index}"


def part_index(key: str) -> int:
    """The draw index a part's key (or its resolution's, or its refund's) carries: part_key's inverse."""
    suffix = key.rsplit(":", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


_A = Account._meta.db_table
_S = Sponsorship._meta.db_table
# The store's wallet and unexpired promotional blocks, and whether it has an active sponsorship, in one
# round trip: most runs have neither promotions nor sponsors, and this is on every run's create path.
_SOURCES_SQL = f"""
SELECT id, kind, credits_posted - debits_posted - debits_pending, expires_at FROM {_A}
 WHERE merchant_id = %s AND (kind = 'wallet' OR (kind = 'promo' AND expires_at > %s))
UNION ALL
SELECT id, 'sponsorship', NULL, NULL FROM {_S} WHERE beneficiary_id = %s AND status = 'active'
"""  # noqa: S608 (table names are ours, every value is a parameter)

# Nothing draws before the store's own wallet: no unexpired promotional block with tokens left and no active
# sponsorship. Under this condition a hold can go straight to the wallet with nothing read first
# (wallet_pays_first), which is most runs.
_WALLET_PAYS_FIRST_SQL = f"""
   AND NOT EXISTS (SELECT 1 FROM {_A} WHERE merchant_id = %s AND kind = 'promo' AND expires_at > %s
                      AND credits_posted - debits_posted - debits_pending > 0)
   AND NOT EXISTS (SELECT 1 FROM {_S} WHERE beneficiary_id = %s AND status = 'active')"""  # noqa: S608


def wallet_pays_first(*, merchant: Merchant) -> tuple[str, list]:
    """The condition (for hold_step's `only_if`) under which the store's wallet is the first source that
    pays (sources_for would put it first): with it, the wallet's hold needs no read of the sources."""
    return _WALLET_PAYS_FIRST_SQL, [merchant.pk, timezone.now(), merchant.pk]


def sources_for(*, merchant: Merchant, tool: str | None = None) -> list[Source]:
    """Every source that could pay for `merchant`'s run of `tool` now, in draw order."""
    with connection.cursor() as cursor:
        cursor.execute(_SOURCES_SQL, [merchant.pk, timezone.now(), merchant.pk])
        rows = cursor.fetchall()
    sources: list[Source] = []
    if any(kind == "sponsorship" for _id, kind, _left, _expires in rows):
        candidates = (
            Sponsorship.objects.filter(beneficiary=merchant, status=Sponsorship.Status.ACTIVE)
            .select_related("beneficiary")
            .order_by("created_at", "id")
        )
        for candidate in candidates:
            if tool is not None and not candidate.covers(tool):
                continue
            if (source := _sponsored_source(candidate)) is not None:
                sources.append(source)
            break  # one sponsorship pays for a run: the oldest one that covers its tool
    promos, wallet = [], None
    for account_id, kind, left, expires_at in rows:
        if kind == Account.Kind.PROMO:
            if left > 0:
                promos.append(Source(PROMOTIONAL, account_id, left, expires_at))
        elif kind == Account.Kind.WALLET:
            wallet = Source(PAID, account_id, max(left, 0))
    sources += sorted(promos, key=lambda source: (source.expires_at, source.account_id))
    if wallet is None:
        wallet = Source(PAID, wallet_of(merchant=merchant).pk, 0)
    sources.append(wallet)
    return sources


def _sponsored_source(sponsorship: Sponsorship) -> Source | None:
    sponsor_wallet = (
        Account.objects.filter(merchant_id=sponsorship.sponsor_id, kind=Account.Kind.WALLET)
        .annotate(left=F("credits_posted") - F("debits_posted") - F("debits_pending"))
        .values_list("id", "left")
        .first()
    )
    if sponsor_wallet is None:
        return None
    month = SponsorshipMonth.objects.filter(sponsorship=sponsorship, month=month_start()).first()
    remaining = month.remaining if month is not None else sponsorship.monthly_limit
    wallet_id, sponsor_left = sponsor_wallet
    return Source(SPONSORED, wallet_id, max(0, min(remaining, sponsor_left)), sponsorship=sponsorship)


def spendable(sources: Sequence[Source]) -> int:
    return sum(source.available for source in sources)


def plan(sources: Sequence[Source], amount: int) -> list[Part] | None:
    """Take `amount` from the sources in order; None when together they cannot cover it."""
    parts, left = [], amount
    for source in sources:
        if left == 0:
            break
        if (take := min(left, source.available)) > 0:
            parts.append(Part(source, take))
            left -= take
    return parts if left == 0 else None


def one_step_source(sources: Sequence[Source], amount: int) -> Source | None:
    """The source that pays all of `amount` alone when it can be held in one ledger step (the store's
    wallet or one promotional block, not a sponsorship, whose month moves too); None otherwise."""
    parts = plan(sources, amount)
    if parts is None or len(parts) != 1 or parts[0].source.kind == SPONSORED:
        return None
    return parts[0].source


def funding_hold(
    *,
    merchant: Merchant,
    tool: str | None,
    amount: int,
    key: str,
    actor: Actor,
    memo: str = "",
    reference: str = "",
    timeout: timedelta | None = None,
) -> FundedHold:
    """Reserve `amount` for a run of `merchant` across its sources, inside the caller's transaction.

    Returns the hold parts in draw order (the first carries `key`). Raises InsufficientTokens, with all the
    store could spend, when its sources together cannot cover it; nothing is reserved then.
    """
    sources: list[Source] = []
    for _attempt in range(PLAN_ATTEMPTS):
        sources = sources_for(merchant=merchant, tool=tool)
        parts = plan(sources, amount)
        if parts is None:
            break
        try:
            with transaction.atomic():
                holds = _reserve(
                    parts, wallet_id=sources[-1].account_id, key=key, actor=actor, memo=memo,
                    reference=reference, timeout=timeout,
                )  # fmt: skip
        except _Raced:
            continue
        sponsors = {part.source.account_id for part in parts if part.source.kind == SPONSORED}
        wallet_ids = frozenset({sources[-1].account_id, *sponsors})
        available = {sources[-1].account_id: sources[-1].available}
        for hold in holds:
            if (
                hold.wallet_id in wallet_ids
                and hold.balance_after is not None
                and hold.held_after is not None
            ):
                available[hold.wallet_id] = hold.balance_after - hold.held_after
        return FundedHold(holds, wallet_ids, available)
    raise InsufficientTokens(required=amount, available=spendable(sources))


_MONTH_RESERVE_SQL = f"""
UPDATE {SponsorshipMonth._meta.db_table} AS m SET held = held + %s
 WHERE m.id = %s AND m.held + m.spent + %s <= m.limit_tokens
   AND EXISTS (SELECT 1 FROM {Sponsorship._meta.db_table} s WHERE s.id = m.sponsorship_id AND s.status = 'active')
RETURNING m.held + m.spent, m.limit_tokens
"""  # noqa: S608 (table names are ours, every value is a parameter)


def sponsorship_month(sponsorship: Sponsorship, *, at: datetime | None = None) -> SponsorshipMonth:
    """This month's counters of a sponsorship, created at its current limit the first time they are needed."""
    month, _ = SponsorshipMonth.objects.get_or_create(
        sponsorship=sponsorship,
        month=month_start(at),
        defaults={"limit_tokens": sponsorship.monthly_limit},
    )
    return month


def _reserve(
    parts: list[Part],
    *,
    wallet_id: int,
    key: str,
    actor: Actor,
    memo: str,
    reference: str,
    timeout: timedelta | None,
) -> list[Transfer]:
    month_id: int | None = None
    beneficiary_id: int | None = None
    sponsored = next((part for part in parts if part.source.kind == SPONSORED), None)
    if sponsored is not None:
        assert sponsored.source.sponsorship is not None  # noqa: S101 - a sponsored source names its sponsorship
        month = sponsorship_month(sponsored.source.sponsorship)
        with connection.cursor() as cursor:
            # The month first, so the limit holds under any race: the UPDATE is its own guard.
            cursor.execute(_MONTH_RESERVE_SQL, [sponsored.amount, month.pk, sponsored.amount])
            if (row := cursor.fetchone()) is None:
                raise _Raced
        transaction.on_commit(
            partial(
                sponsorship_usage_changed,
                sponsorship_id=month.sponsorship_id,
                sponsor_merchant_id=sponsored.source.sponsorship.sponsor_id,
                used=row[0],
                limit=row[1],
                month=month.month,
                beneficiary_name=sponsored.source.sponsorship.beneficiary.name,
            )
        )
        month_id, beneficiary_id = month.pk, wallet_id
    holds: dict[int, Transfer] = {}
    # Accounts in id order: the one lock order every multi-account transaction here follows.
    for index, part in sorted(enumerate(parts), key=lambda item: item[1].source.account_id):
        is_sponsored = part.source.kind == SPONSORED
        try:
            holds[index] = hold_create(
                wallet=part.source.account_id,
                amount=part.amount,
                key=part_key(key, index),
                actor=actor,
                memo=memo,
                reference=reference,
                timeout=timeout,
                beneficiary_id=beneficiary_id if is_sponsored else None,
                sponsorship_month_id=month_id if is_sponsored else None,
            )
        except InsufficientTokens:
            raise _Raced from None
        holds[index].known_source = part.source.kind
    return [holds[index] for index in range(len(parts))]


def _lock_months(parts: Sequence[Transfer]) -> None:
    if month_ids := sorted({part.sponsorship_month_id for part in parts if part.sponsorship_month_id}):
        list(SponsorshipMonth.objects.select_for_update().filter(pk__in=month_ids).order_by("pk"))


def charge_split(parts: Sequence[Transfer], amount: int) -> list[int]:
    """What each part (in draw order) pays of `amount`: the first parts first, each at most its hold."""
    shares, left = [], amount
    for part in parts:
        share = min(left, part.amount)
        shares.append(share)
        left -= share
    return shares


def funding_post(
    *, parts: Sequence[Transfer], amount: int, key: str, actor: Actor, memo: str = ""
) -> list[Transfer]:
    """Charge `amount` across a run's hold parts (in draw order) and release the rest, all or nothing.

    Returns the resolutions in draw order; the first carries `key`. Raises what hold_post raises (HoldExpired,
    HoldAlreadyResolved, HoldExceeded) with nothing resolved.
    """
    shares = charge_split(parts, amount)
    if sum(shares) != amount:
        raise HoldExceeded(f"Cannot charge {amount} against holds of {sum(part.amount for part in parts)}.")
    resolutions: dict[int, Transfer] = {}
    with transaction.atomic():
        _lock_months(parts)
        for index, part in sorted(enumerate(parts), key=lambda item: item[1].debit_account_id):
            resolutions[index] = hold_post(
                hold=part, amount=shares[index], key=part_key(key, index), actor=actor, memo=memo
            )
    return [resolutions[index] for index in range(len(parts))]


def funding_release(*, parts: Sequence[Transfer], key: str, actor: Actor, memo: str = "") -> list[Transfer]:
    """Release every part of a run's hold under `key`, once. A part the sweeper already expired counts as
    released; a part already charged raises HoldAlreadyResolved (only a charge under our own key does that).
    """
    resolutions: dict[int, Transfer] = {}
    with transaction.atomic():
        _lock_months(parts)
        for index, part in sorted(enumerate(parts), key=lambda item: item[1].debit_account_id):
            try:
                resolutions[index] = hold_void(hold=part, key=part_key(key, index), actor=actor, memo=memo)
            except HoldAlreadyResolved:
                resolution = Transfer.objects.get(pending_id=part.pk)
                if resolution.kind == Transfer.Kind.SETTLE:
                    raise
                resolutions[index] = resolution
    return [resolutions[index] for index in range(len(parts))]


def hold_parts(*, first: Transfer, total: int, related: Sequence[str] = ()) -> list[Transfer]:
    """A run's hold parts in draw order, from its first part and the total it held: a run held from one
    source (the usual case) needs no query. `related`: select_related for the other parts."""
    if first.amount == total:
        return [first]
    others = Transfer.objects.filter(
        kind=Transfer.Kind.HOLD, idempotency_key__startswith=f"{first.idempotency_key}:"
    ).select_related(*related)
    return [first, *sorted(others, key=lambda part: part_index(part.idempotency_key))]
