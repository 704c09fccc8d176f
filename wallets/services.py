"""Every write to the ledger.

Each movement is one short transaction that touches one wallet row with a conditional UPDATE ... RETURNING
(no read-then-write window, no SELECT FOR UPDATE round trip) and inserts one immutable transfer. The
transfer's unique idempotency key is its cause: replaying a cause returns the first transfer and moves
nothing. Nothing here calls the network, so no lock is ever held across a model or Stripe call.
"""

import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypedDict, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from merchants.actors import Actor
from merchants.models import Merchant
from wallets import caches
from wallets.exceptions import (
    HoldAlreadyResolved,
    HoldExceeded,
    HoldExpired,
    IdempotencyKeyReused,
    InsufficientTokens,
    InvalidAmount,
    LedgerError,
)
from wallets.models import Account, SponsorshipMonth, Transfer

Kind = Transfer.Kind


class Counters(NamedTuple):
    credits_posted: int
    debits_posted: int
    debits_pending: int

    @property
    def balance(self) -> int:
        return self.credits_posted - self.debits_posted


_COUNTERS_TEMPLATE = f"""
UPDATE {Account._meta.db_table}
   SET credits_posted = credits_posted + %s,
       debits_posted = debits_posted + %s,
       debits_pending = debits_pending + %s,
       in_debt = (%s OR in_debt) AND (credits_posted + %s) - (debits_posted + %s) - (debits_pending + %s) < 0
 WHERE id = {{target}} AND kind IN ('wallet', 'promo')
   AND credits_posted - debits_posted - debits_pending >= %s
   AND (%s OR expires_at IS NULL OR expires_at > %s){{gate}}
RETURNING credits_posted, debits_posted, debits_pending, id
"""  # noqa: S608 (the table name is ours, every value is a parameter)
_COUNTERS_SQL = _COUNTERS_TEMPLATE.format(target="%s", gate="")
# A merchant's own wallet, found inside the statement (the target's parameter is the merchant's id).
_WALLET_OF_MERCHANT = f"(SELECT id FROM {Account._meta.db_table} WHERE merchant_id = %s AND kind = 'wallet')"  # noqa: S608


_NO_GUARD = -(2**63) + 1


def _counter_params(
    account_id: int, *, credit: int, debit: int, pending: int, need: int, allow_debt: bool
) -> list:
    # Only a new hold (a reservation that needs tokens) is refused by an expired promotional block;
    # releases, charges of earlier holds and the expiry itself still land on it.
    reserving = pending > 0 and need > 0
    return [
        credit, debit, pending, allow_debt, credit, debit, pending, account_id, need,
        not reserving, timezone.now(),
    ]  # fmt: skip


def _move(
    wallet_id: int,
    *,
    credit: int = 0,
    debit: int = 0,
    pending: int = 0,
    need: int = _NO_GUARD,
    allow_debt: bool = False,
) -> Counters | None:
    """Apply counter deltas to one wallet if `need` tokens are available; None when they are not.

    The guard and the change are one statement, so two concurrent debits can never both pass a check
    that only one of them fits (one-api #2440). Credits and releases pass no `need`, so they land even on
    a wallet in debt. With `allow_debt` (clawbacks only) the wallet may go below zero, flagged `in_debt`.
    """
    params = _counter_params(
        wallet_id, credit=credit, debit=debit, pending=pending, need=need, allow_debt=allow_debt
    )
    with connection.cursor() as cursor:
        cursor.execute(_COUNTERS_SQL, params)
        row = cursor.fetchone()
    return Counters(*row[:3]) if row else None


_T = Transfer._meta.db_table
_TRANSFER_COLUMNS = (
    "kind", "debit_account_id", "credit_account_id", "wallet_id", "amount", "pending_id", "idempotency_key",
    "timeout_at", "actor_kind", "actor_user_id", "actor_label", "memo", "reference", "created_at",
    "beneficiary_id", "sponsorship_month_id",
)  # fmt: skip
# The counter change and the transfer as one statement: atomic on its own (no BEGIN/COMMIT round trips in
# autocommit), and when the guard refuses, `moved` is empty, nothing is inserted and no row comes back.
# A duplicate key or a second resolution fails the whole statement, so the counter change never lands.
_MOVE_AND_INSERT_SQL = f"""
WITH moved AS ({_COUNTERS_SQL.strip()})
INSERT INTO {_T} ({", ".join(_TRANSFER_COLUMNS)}, balance_after, held_after)
SELECT {", ".join(["%s"] * len(_TRANSFER_COLUMNS))}, credits_posted - debits_posted, debits_pending FROM moved
RETURNING id, balance_after, held_after
"""  # noqa: S608 (table and column names are ours, every value is a parameter)


def _apply(
    *,
    wallet_id: int,
    credit: int = 0,
    debit: int = 0,
    pending: int = 0,
    need: int = _NO_GUARD,
    allow_debt: bool = False,
    transfer: Transfer,
) -> Transfer | None:
    """Apply counter deltas to the wallet and insert `transfer` (unsaved) atomically; None if refused.

    Raises IntegrityError when the key or the hold's resolution already exists; nothing has moved then.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            counters = _move(
                wallet_id, credit=credit, debit=debit, pending=pending, need=need, allow_debt=allow_debt
            )
            if counters is None:
                return None
            transfer.balance_after, transfer.held_after = counters.balance, counters.debits_pending
            transfer.save(force_insert=True)
            return transfer
    params = _counter_params(
        wallet_id, credit=credit, debit=debit, pending=pending, need=need, allow_debt=allow_debt
    )
    params += [getattr(transfer, column) for column in _TRANSFER_COLUMNS]
    # Inside a caller's transaction a failed statement would poison it: isolate it in a savepoint.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(_MOVE_AND_INSERT_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    transfer.pk, transfer.balance_after, transfer.held_after = row
    transfer._state.adding, transfer._state.db = False, connection.alias
    return transfer


class _Deltas(TypedDict, total=False):
    """The counter changes `_apply` takes as keywords."""

    credit: int
    debit: int
    need: int
    allow_debt: bool


def _new(
    *,
    kind: str,
    debit_id: int,
    credit_id: int,
    wallet_id: int,
    amount: int,
    key: str,
    actor: Actor,
    memo: str = "",
    reference: str = "",
    pending: Transfer | None = None,
    timeout_at: datetime | None = None,
    beneficiary_id: int | None = None,
    sponsorship_month_id: int | None = None,
) -> Transfer:
    return Transfer(
        kind=kind, debit_account_id=debit_id, credit_account_id=credit_id, wallet_id=wallet_id, amount=amount,
        pending=pending, idempotency_key=key, timeout_at=timeout_at, actor_kind=actor.kind,
        actor_user_id=actor.user_id, actor_label=actor.label[:200], memo=memo[:500], reference=reference[:255],
        created_at=timezone.now(), beneficiary_id=beneficiary_id, sponsorship_month_id=sponsorship_month_id,
    )  # fmt: skip


def wallet_of(*, merchant: Merchant) -> Account:
    if (cached := caches.wallet_ref(merchant_id=merchant.pk)) is not None:  # id cached, counters load lazily
        return cached
    wallet, _ = Account.objects.get_or_create(
        merchant=merchant, kind=Account.Kind.WALLET, defaults={"code": f"wallet:{merchant.pk}"}
    )
    return wallet


def system_account(kind: str) -> Account:
    account, _ = Account.objects.get_or_create(code=kind, defaults={"kind": kind})
    return account


# System account ids never change in a running system, so every movement need not look them up (a
# round trip per transfer). A stale id cannot corrupt the ledger: the foreign key fails the transaction.
# The cache is dropped after every migrate or test flush (bootstrap.reference_data_ensure) and on error.
_system_ids: dict[str, int] = {}


def system_account_id(kind: str) -> int:
    if (account_id := _system_ids.get(kind)) is None:
        account_id = _system_ids[kind] = system_account(kind).pk
    return account_id


def system_accounts_forget() -> None:
    _system_ids.clear()


def wallet_available(*, wallet_id: int) -> int:
    account = Account.objects.only("credits_posted", "debits_posted", "debits_pending").get(pk=wallet_id)
    return account.available


def _replay(
    key: str, *, kind: str | set[str], wallet_id: int | None, pending_id: int | None = None
) -> Transfer | None:
    existing = Transfer.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    kinds = {kind} if isinstance(kind, str) else kind
    if existing.kind not in kinds or existing.wallet_id != wallet_id or existing.pending_id != pending_id:
        raise IdempotencyKeyReused(
            f"Key {key!r} already names {existing.kind} {existing.pk}, not this movement."
        )
    return existing


def _replay_or_refuse(key: str, *, kind: str, wallet_id: int, amount: int) -> Transfer:
    """The guard refused. If this cause was already applied (a replay, or a concurrent one that took the
    tokens we would have needed while we waited on its row lock), answer with it, else InsufficientTokens."""
    if (existing := _replay(key, kind=kind, wallet_id=wallet_id)) is not None:
        return existing
    raise InsufficientTokens(required=amount, available=wallet_available(wallet_id=wallet_id))


def _require_positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(f"Amount must be a positive whole number of tokens, not {amount!r}.")


def _post_with_system(
    *,
    wallet: Account,
    system_kind: str,
    amount: int,
    kind: str,
    key: str,
    actor: Actor,
    memo: str,
    reference: str,
    to_wallet: bool,
    allow_debt: bool = False,
) -> Transfer:
    """A posted transfer between a wallet and a system account, in either direction."""
    _require_positive(amount)
    # No look-up of the key first: replays are rare, and the unique key (or, for a debit, the refused
    # guard) finds them; the common path is one statement.
    system_id = system_account_id(system_kind)
    debit_id, credit_id = (system_id, wallet.pk) if to_wallet else (wallet.pk, system_id)
    new = _new(
        kind=kind, debit_id=debit_id, credit_id=credit_id, wallet_id=wallet.pk, amount=amount, key=key,
        actor=actor, memo=memo, reference=reference,
    )  # fmt: skip
    deltas: _Deltas
    if to_wallet:
        deltas = {"credit": amount}
    else:
        deltas = {"debit": amount, "need": _NO_GUARD if allow_debt else amount, "allow_debt": allow_debt}
    try:
        transfer = _apply(wallet_id=wallet.pk, transfer=new, **deltas)
    except IntegrityError:
        # A replay of the same cause (earlier, or concurrent and committed first) holds the unique key.
        if (existing := _replay(key, kind=kind, wallet_id=wallet.pk)) is not None:
            return existing
        system_accounts_forget()
        raise
    if transfer is None and to_wallet:
        raise LedgerError(f"Account {wallet.pk} is not a merchant wallet.")
    if to_wallet:
        caches.balance_mark_forget(wallet_id=wallet.pk)  # a credit moves the alert thresholds with it
    return transfer or _replay_or_refuse(key, kind=kind, wallet_id=wallet.pk, amount=amount)


def topup_credit(
    *, wallet: Account, amount: int, key: str, actor: Actor, memo: str = "", reference: str = ""
) -> Transfer:
    """Bought tokens: issuance → wallet. `key` is the payment's cause, e.g. `stripe:<checkout id>`."""
    return _post_with_system(
        wallet=wallet,
        system_kind=Account.Kind.ISSUANCE,
        amount=amount,
        kind=Kind.TOPUP,
        key=key,
        actor=actor,
        memo=memo,
        reference=reference,
        to_wallet=True,
    )


def promotion_credit(
    *, wallet: Account, amount: int, key: str, actor: Actor, memo: str = "", reference: str = ""
) -> Transfer:
    return _post_with_system(
        wallet=wallet,
        system_kind=Account.Kind.PROMOTIONS,
        amount=amount,
        kind=Kind.PROMOTION,
        key=key,
        actor=actor,
        memo=memo,
        reference=reference,
        to_wallet=True,
    )


def refund_credit(
    *, wallet: Account, amount: int, key: str, actor: Actor, memo: str = "", reference: str = ""
) -> Transfer:
    """Give back tokens a run consumed: consumption → wallet. The caller bounds `amount` by the charge."""
    return _post_with_system(
        wallet=wallet,
        system_kind=Account.Kind.CONSUMPTION,
        amount=amount,
        kind=Kind.REFUND,
        key=key,
        actor=actor,
        memo=memo,
        reference=reference,
        to_wallet=True,
    )


def clawback_debit(
    *, wallet: Account, amount: int, key: str, actor: Actor, memo: str = "", reference: str = ""
) -> Transfer:
    """Take back refunded or disputed tokens: the one movement allowed to push a wallet below zero."""
    return _post_with_system(
        wallet=wallet,
        system_kind=Account.Kind.ISSUANCE,
        amount=amount,
        kind=Kind.CLAWBACK,
        key=key,
        actor=actor,
        memo=memo,
        reference=reference,
        to_wallet=False,
        allow_debt=True,
    )


def adjustment_create(
    *, wallet: Account, amount: int, reason: str, actor: Actor, reference: str = "", key: str | None = None
) -> Transfer:
    """A support adjustment: positive credits, negative debits (never below zero). A reason is required."""
    if not reason or not reason.strip():
        raise InvalidAmount("A reason is required for every balance adjustment.")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise InvalidAmount(f"An adjustment must be a non-zero whole number of tokens, not {amount!r}.")
    return _post_with_system(
        wallet=wallet,
        system_kind=Account.Kind.SUPPORT,
        amount=abs(amount),
        kind=Kind.ADJUSTMENT,
        key=key or f"adjust:{uuid.uuid4()}",
        actor=actor,
        memo=reason.strip(),
        reference=reference,
        to_wallet=amount > 0,
    )


def _hold_transfer(
    *,
    account_id: int | None,
    amount: int,
    key: str,
    actor: Actor,
    memo: str,
    reference: str,
    timeout: timedelta | None,
    beneficiary_id: int | None = None,
    sponsorship_month_id: int | None = None,
) -> Transfer:
    """A new hold on `account_id` (unsaved; None: the statement that inserts it finds the account), timing
    out after `timeout` (default HOLD_TIMEOUT)."""
    timeout_at = timezone.now() + (settings.HOLD_TIMEOUT if timeout is None else timeout)
    account = cast(int, account_id)  # None stays None until LedgerStep.saved fills it in from the row
    return _new(
        kind=Kind.HOLD, debit_id=account, credit_id=system_account_id(Account.Kind.CONSUMPTION),
        wallet_id=account, amount=amount, key=key, actor=actor, memo=memo, timeout_at=timeout_at,
        reference=reference, beneficiary_id=beneficiary_id, sponsorship_month_id=sponsorship_month_id,
    )  # fmt: skip


def _resolution_transfer(
    *, hold: Transfer, kind: str, amount: int, key: str, actor: Actor, memo: str
) -> Transfer:
    """A new post, void or expiry of `hold` (unsaved), against the hold's own accounts."""
    assert hold.wallet_id is not None  # noqa: S101 - hold_create always places a hold against a wallet
    return _new(
        kind=kind, debit_id=hold.debit_account_id, credit_id=hold.credit_account_id, wallet_id=hold.wallet_id,
        amount=amount, key=key, actor=actor, memo=memo, reference=hold.reference, pending=hold,
        beneficiary_id=hold.beneficiary_id, sponsorship_month_id=hold.sponsorship_month_id,
    )  # fmt: skip


def hold_create(
    *,
    wallet: Account | int,
    amount: int,
    key: str,
    actor: Actor,
    timeout: timedelta | None = None,
    memo: str = "",
    reference: str = "",
    beneficiary_id: int | None = None,
    sponsorship_month_id: int | None = None,
) -> Transfer:
    """Reserve `amount` tokens of `wallet` (a merchant's wallet or one of its promotional blocks).
    Replaying `key` returns the first hold and reserves nothing more.

    Raises InsufficientTokens (with required and available) when the account cannot cover it. A sponsored
    part (`sponsorship_month_id`) must already have been counted against its month (wallets.funding).
    """
    _require_positive(amount)
    account_id = wallet if isinstance(wallet, int) else wallet.pk
    new = _hold_transfer(
        account_id=account_id, amount=amount, key=key, actor=actor, memo=memo, reference=reference,
        timeout=timeout, beneficiary_id=beneficiary_id, sponsorship_month_id=sponsorship_month_id,
    )  # fmt: skip
    try:
        hold = _apply(wallet_id=account_id, pending=amount, need=amount, transfer=new)
    except IntegrityError:
        if (existing := _replay(key, kind=Kind.HOLD, wallet_id=account_id)) is not None:
            return existing
        system_accounts_forget()
        raise
    return hold or _replay_or_refuse(key, kind=Kind.HOLD, wallet_id=account_id, amount=amount)


def _charge_check(hold: Transfer, amount: int) -> None:
    if hold.kind != Kind.HOLD:
        raise HoldExceeded(f"Transfer {hold.pk} is a {hold.kind}, not a hold.")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0 or amount > hold.amount:
        raise HoldExceeded(f"Cannot charge {amount!r} against a hold of {hold.amount}.")


def hold_post(*, hold: Transfer, amount: int, key: str, actor: Actor, memo: str = "") -> Transfer:
    """Charge `amount` (at most the hold) and release the rest, once.

    A charge of 0 releases the whole hold (a transfer's amount is always positive). Raises HoldExceeded,
    HoldExpired, or HoldAlreadyResolved when another post, void or expiry got there first.
    """
    _charge_check(hold, amount)
    if amount == 0:
        return hold_void(hold=hold, key=key, actor=actor, memo=memo)
    if hold.timeout_at is not None and hold.timeout_at <= timezone.now():
        # Replaying a post that landed before the timeout still answers with that post.
        replay = _replay(key, kind={Kind.SETTLE, Kind.VOID}, wallet_id=hold.wallet_id, pending_id=hold.pk)
        if replay is not None:
            return replay
        raise HoldExpired(f"Hold {hold.pk} expired at {hold.timeout_at:%Y-%m-%d %H:%M:%S}.")
    return _resolve(hold=hold, kind=Kind.SETTLE, amount=amount, key=key, actor=actor, memo=memo)


def hold_void(*, hold: Transfer, key: str, actor: Actor, memo: str = "", kind: str = Kind.VOID) -> Transfer:
    """Release the whole hold, once. `kind` is EXPIRE when the sweeper does it."""
    if hold.kind != Kind.HOLD:
        raise HoldExceeded(f"Transfer {hold.pk} is a {hold.kind}, not a hold.")
    return _resolve(hold=hold, kind=kind, amount=hold.amount, key=key, actor=actor, memo=memo)


_SPONSORSHIP_MONTH_RESOLVE_SQL = f"""
UPDATE {SponsorshipMonth._meta.db_table} SET held = held - %s, spent = spent + %s WHERE id = %s
"""  # noqa: S608 (the table name is ours, every value is a parameter)


def _resolve(*, hold: Transfer, kind: str, amount: int, key: str, actor: Actor, memo: str) -> Transfer:
    assert hold.wallet_id is not None  # noqa: S101 - hold_create always places a hold against a wallet
    new = _resolution_transfer(hold=hold, kind=kind, amount=amount, key=key, actor=actor, memo=memo)
    posted = amount if kind == Kind.SETTLE else 0
    try:
        if hold.sponsorship_month_id is None:
            # Serialises on the wallet row; a second resolution (or a replay) then fails the unique
            # `pending` or key, or the counters' CHECK, and its counter change never lands.
            transfer = _apply(wallet_id=hold.wallet_id, debit=posted, pending=-hold.amount, transfer=new)
        else:
            # A sponsored part also moves its month from held to spent. The month row is locked before the
            # sponsor's wallet, the order hold creation takes them in (wallets.funding), so no deadlock.
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        _SPONSORSHIP_MONTH_RESOLVE_SQL, [hold.amount, posted, hold.sponsorship_month_id]
                    )
                transfer = _apply(wallet_id=hold.wallet_id, debit=posted, pending=-hold.amount, transfer=new)
    except IntegrityError:
        # Either this key resolved the hold before (a replay: return it) or another resolution did (refuse).
        # A post of 0 is stored as a void, so a settle key may name either.
        kinds: set[str] = {Kind.SETTLE, Kind.VOID} if kind == Kind.SETTLE else {kind}
        if (existing := _replay(key, kind=kinds, wallet_id=hold.wallet_id, pending_id=hold.pk)) is not None:
            return existing
        resolution = Transfer.objects.filter(pending=hold).first()
        if resolution is not None:
            raise HoldAlreadyResolved(hold_id=hold.pk, resolution_kind=resolution.kind) from None
        raise
    if transfer is None:
        raise LedgerError(f"Wallet {hold.wallet_id} of hold {hold.pk} does not exist.")
    return transfer


@dataclass(frozen=True, slots=True)
class LedgerStep:
    """One ledger movement as two common table expressions, for a caller that makes it one statement with
    its own row: a run's insert with its hold, a run's settlement with its charge (agents.runs).

    `<name>_counters` applies the account's counter deltas under the same guard as every other movement, and
    `<name>` inserts the transfer from the row it returns, yielding (id, balance_after, held_after,
    wallet_id). When the guard refuses, or the statement's `gate` CTE (if named) returns no row, or the
    step's own condition does not hold, `<name>` is empty and nothing moves; a duplicate key or a second
    resolution fails the whole statement. PostgreSQL only.
    """

    name: str
    sql: str
    params: list
    transfer: Transfer

    def saved(self, row: Sequence[Any]) -> Transfer:
        """The transfer, as inserted, from `<name>`'s returned (id, balance_after, held_after[, wallet_id])."""
        transfer = self.transfer
        transfer.pk, transfer.balance_after, transfer.held_after = row[:3]
        if len(row) > 3 and transfer.wallet_id is None:  # a hold on a wallet the statement found itself
            transfer.wallet_id = transfer.debit_account_id = row[3]
        transfer._state.adding, transfer._state.db = False, connection.alias
        return transfer


def _step(
    name: str,
    *,
    gate: str | None,
    counters: list,
    transfer: Transfer,
    target: str = "%s",
    condition: tuple[str, list] = ("", []),
) -> LedgerStep:
    gated = f" AND EXISTS (SELECT 1 FROM {gate})" if gate else ""  # noqa: S608 (a CTE name of ours)
    condition_sql, condition_params = condition
    guarded = _COUNTERS_TEMPLATE.format(target=target, gate=gated + condition_sql).strip()
    # The account the counters moved is the transfer's wallet (and a hold's debit account): taken from the
    # row, so a step whose target the statement finds (a merchant's wallet) needs no read before it.
    from_row = {"wallet_id", "debit_account_id"} if transfer.kind == Kind.HOLD else {"wallet_id"}
    values = [f"{name}_counters.id" if c in from_row else "%s" for c in _TRANSFER_COLUMNS]
    # Table, column and CTE names are ours; every value is a parameter.
    sql = (
        f"{name}_counters AS ({guarded}), {name} AS (INSERT INTO {_T} ({', '.join(_TRANSFER_COLUMNS)}, "  # noqa: S608
        f"balance_after, held_after) SELECT {', '.join(values)}, "
        f"credits_posted - debits_posted, debits_pending FROM {name}_counters "
        "RETURNING id, balance_after, held_after, wallet_id)"
    )
    params = (
        counters + condition_params + [getattr(transfer, c) for c in _TRANSFER_COLUMNS if c not in from_row]
    )
    return LedgerStep(name, sql, params, transfer)


def hold_step(
    *,
    account_id: int | None = None,
    wallet_of_merchant: int | None = None,
    only_if: tuple[str, list] = ("", []),
    amount: int,
    key: str,
    actor: Actor,
    memo: str = "",
    reference: str = "",
    timeout: timedelta | None = None,
) -> LedgerStep:
    """hold_create as a LedgerStep named `hold`: reserve `amount` of one merchant account (its wallet or a
    promotional block; a sponsored part needs its month counted first, so it goes through wallets.funding).

    The account is `account_id`, or the wallet of the merchant `wallet_of_merchant`, found by the statement
    itself. `only_if` is a further condition (`" AND ..."`, with its parameters) the hold moves under.
    """
    _require_positive(amount)
    if (account_id is None) == (wallet_of_merchant is None):
        raise ValueError("hold_step takes one of account_id and wallet_of_merchant.")
    new = _hold_transfer(
        account_id=account_id, amount=amount, key=key, actor=actor, memo=memo, reference=reference,
        timeout=timeout,
    )  # fmt: skip
    target_id = cast(int, account_id if account_id is not None else wallet_of_merchant)
    counters = _counter_params(target_id, credit=0, debit=0, pending=amount, need=amount, allow_debt=False)
    target = "%s" if account_id is not None else _WALLET_OF_MERCHANT
    return _step("hold", gate=None, counters=counters, transfer=new, target=target, condition=only_if)


def post_step(
    *, hold: Transfer, amount: int, key: str, actor: Actor, memo: str = "", gate: str
) -> LedgerStep | None:
    """hold_post as a LedgerStep named `resolved` that moves only if the caller's `gate` CTE returns a row.
    None when the post cannot be one step (a sponsored part moves its month too; an expired hold must fail
    instead): the caller then goes through hold_post, which answers those cases. Raises HoldExceeded as
    hold_post does."""
    _charge_check(hold, amount)
    if hold.sponsorship_month_id is not None or hold.timeout_at is None or hold.timeout_at <= timezone.now():
        return None
    # A charge of 0 is stored as a release of the whole hold, as hold_post does.
    kind, recorded = (Kind.SETTLE, amount) if amount else (Kind.VOID, hold.amount)
    new = _resolution_transfer(hold=hold, kind=kind, amount=recorded, key=key, actor=actor, memo=memo)
    counters = _counter_params(
        cast(int, new.wallet_id),
        credit=0,
        debit=amount,
        pending=-hold.amount,
        need=_NO_GUARD,
        allow_debt=False,
    )
    return _step("resolved", gate=gate, counters=counters, transfer=new)


def holds_expire(*, now: datetime | None = None, batch: int = 500, lookback: timedelta | None = None) -> int:
    """Void every hold past its timeout (invariant 4). Returns how many this call expired.

    Only holds that timed out within `lookback` (HOLD_EXPIRY_LOOKBACK) are scanned, so the sweep reads a
    bounded slice of the timeout index however long the ledger's history grows. The sweep runs every
    minute; a hold older than the window means beat was down for that long, and reconcile_ledger names it.
    """
    now = now or timezone.now()
    since = now - (settings.HOLD_EXPIRY_LOOKBACK if lookback is None else lookback)
    expired = list(
        Transfer.objects.filter(
            kind=Kind.HOLD, timeout_at__lte=now, timeout_at__gt=since, resolution__isnull=True
        ).order_by("timeout_at")[:batch]
    )
    count = 0
    actor = Actor.system("hold expiry sweep")
    for hold in expired:
        try:
            hold_void(
                hold=hold, key=f"hold:{hold.pk}:expire", actor=actor, memo="Hold expired", kind=Kind.EXPIRE
            )
        except HoldAlreadyResolved:
            continue  # a post or void won the race, which is what we wanted anyway
        count += 1
    return count


PROMO_CODE_MAX = 160  # Account.code's max_length


def promo_grant(
    *,
    merchant: Merchant,
    amount: int,
    expires_at: datetime,
    key: str,
    actor: Actor,
    memo: str = "",
    reference: str = "",
) -> Transfer:
    """Promotional credits: a new block of `amount` tokens (promotions → block) that runs draw before
    paid tokens and that expires at `expires_at`. Replaying `key` returns the first grant, once."""
    _require_positive(amount)
    if expires_at <= timezone.now():
        raise InvalidAmount("Promotional credits need an expiry date in the future.")
    code = f"promo:{key}"
    if len(code) > PROMO_CODE_MAX:
        code = f"promo:{uuid.uuid5(uuid.NAMESPACE_URL, key)}"
    block, _ = Account.objects.get_or_create(
        code=code, defaults={"kind": Account.Kind.PROMO, "merchant": merchant, "expires_at": expires_at}
    )
    if block.kind != Account.Kind.PROMO or block.merchant_id != merchant.pk:
        raise IdempotencyKeyReused(f"Key {key!r} already names another account's credits.")
    return _post_with_system(
        wallet=block,
        system_kind=Account.Kind.PROMOTIONS,
        amount=amount,
        kind=Kind.PROMOTION,
        key=key,
        actor=actor,
        memo=memo,
        reference=reference,
        to_wallet=True,
    )


def promos_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Move what is left of every expired promotional block back to the promotions account, as a transfer.

    Tokens still held by a run on an expired block stay until the run ends; a later sweep takes what its
    release gives back. The key names the block's state, so two sweeps at once expire it once.
    """
    now = now or timezone.now()
    blocks = list(
        Account.objects.filter(kind=Account.Kind.PROMO, expires_at__lte=now)
        .annotate(left=F("credits_posted") - F("debits_posted") - F("debits_pending"))
        .filter(left__gt=0)
        .order_by("expires_at", "id")[:batch]
    )
    actor = Actor.system("promotional credit expiry")
    count = 0
    for block in blocks:
        try:
            _post_with_system(
                wallet=block,
                system_kind=Account.Kind.PROMOTIONS,
                amount=block.available,
                kind=Kind.PROMO_EXPIRE,
                key=f"promo:{block.pk}:expire:{block.debits_posted}:{block.debits_pending}",
                actor=actor,
                memo=f"Promotional credits expired on {block.expires_at:%Y-%m-%d}",
                reference="",
                to_wallet=False,
            )
        except InsufficientTokens:
            continue  # a run's release or a concurrent sweep changed the block: the next sweep takes it
        count += 1
    return count
