"""Process-memory caches of ledger reference data that does not change per request.

Every run used to look up its model's price and its merchant's wallet: two SELECTs per run whose answers
almost never change.

- Prices: all rows of a model, future ones included, for PRICE_CACHE_SECONDS. The row in force is chosen
  from them at the moment asked, so a price entered ahead of time takes effect exactly at its
  effective_from on every process. A price saved in this process is seen at once; other processes see a
  new row within PRICE_CACHE_SECONDS (the admin refuses prices that start in the past, see PriceForm).
- Wallet ids: a merchant's wallet never moves to another row. `wallet_ref` gives an Account carrying only
  its id, kind, code and merchant; its counters are deferred, so reading one loads it fresh from the
  database (a stale balance cannot come from here). A stale id cannot corrupt the ledger either: every
  movement goes through the wallet's row, and a missing row fails the statement.

- Balance marks: per wallet, the available balance below which a spend must run the alert and
  auto-recharge checks (wallets.balance_events), for BALANCE_MARK_CACHE_SECONDS; dropped at once in this
  process when the wallet is credited or its alert or recharge settings are saved.

System account ids are cached beside the services that use them (wallets.services.system_account_id).
`caches_clear` forgets everything (after a test flush or rollback).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from wallets.models import Account, Price

CACHE_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class _Prices:
    rows: tuple[Price, ...]  # newest effective_from first
    expires: float


_lock = threading.Lock()
_prices: dict[str, _Prices] = {}
_wallets: dict[int, tuple[int, str]] = {}  # merchant id -> (wallet id, code)


def _price_rows(model: str) -> tuple[Price, ...]:
    entry = _prices.get(model)
    if entry is None or entry.expires < time.monotonic():
        rows = tuple(Price.objects.filter(model=model).order_by("-effective_from"))
        entry = _Prices(rows, time.monotonic() + settings.PRICE_CACHE_SECONDS)
        with _lock:
            _prices[model] = entry
    return entry.rows


def price_in_force(*, model: str, at: datetime | None = None) -> Price | None:
    """The price row in force for `model` at `at` (default now), from the cached rows of that model."""
    moment = at or timezone.now()
    return next((row for row in _price_rows(model) if row.effective_from <= moment), None)


def price_row(*, model: str, price_id: int) -> Price:
    """The price row `price_id` of `model` (a run's price, held at creation), from the cache when it is
    there. Raises Price.DoesNotExist for an unknown id."""
    found = next((row for row in _price_rows(model) if row.pk == price_id), None)
    return found if found is not None else Price.objects.get(pk=price_id)


def prices_forget(**_signal: Any) -> None:
    """Drop cached prices (a Price was saved or deleted in this process; also a signal receiver)."""
    with _lock:
        _prices.clear()


_WALLET_FIELDS = ("id", "kind", "code", "merchant_id")


def wallet_ref(*, merchant_id: int) -> Account | None:
    """The merchant's wallet as an Account with deferred counters, or None when it has none yet."""
    known = _wallets.get(merchant_id)
    if known is None:
        row = (
            Account.objects.filter(merchant_id=merchant_id, kind=Account.Kind.WALLET)
            .values_list("pk", "code")
            .first()
        )
        if row is None:
            return None
        known = (row[0], row[1])
        with _lock:
            if len(_wallets) >= CACHE_MAX_ENTRIES:
                _wallets.clear()
            _wallets[merchant_id] = known
    wallet_id, code = known
    values = {"id": wallet_id, "kind": Account.Kind.WALLET, "code": code, "merchant_id": merchant_id}
    # from_db marks every other field deferred: reading it later loads it from the row.
    names = [f.attname for f in Account._meta.concrete_fields if f.attname in values]
    return Account.from_db(DEFAULT_DB_ALIAS, names, [values[name] for name in names])


# wallet id -> (tokens below which a spend must run the balance checks, monotonic expiry); see
# wallets.balance_events.wallet_spent_if_low.
_marks: dict[int, tuple[float, float]] = {}


def balance_mark(*, wallet_id: int) -> float | None:
    entry = _marks.get(wallet_id)
    return entry[0] if entry is not None and entry[1] >= time.monotonic() else None


def balance_mark_put(*, wallet_id: int, mark: float) -> None:
    with _lock:
        if len(_marks) >= CACHE_MAX_ENTRIES:
            _marks.clear()
        _marks[wallet_id] = (mark, time.monotonic() + settings.BALANCE_MARK_CACHE_SECONDS)


def balance_mark_forget(*, wallet_id: int) -> None:
    _marks.pop(wallet_id, None)


def caches_clear() -> None:
    with _lock:
        _prices.clear()
        _wallets.clear()
        _marks.clear()
