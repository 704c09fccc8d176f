"""What the provider bills us for a run: every model call's usage, summed on the run and priced.

The merchant is charged for the answer that is used (`settle.run_succeed`); the provider bills every call,
so a repaired answer's first call and the calls of runs that then failed count here too. The worker tallies
the calls of one claim in memory and adds them to the run in one UPDATE (F-expressions, so retries and
recoveries of the same run add up); on success that UPDATE commits with the charge.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from agents.llm import Completion
from agents.models import ProviderPrice, Run

logger = logging.getLogger(__name__)


_prices_lock = threading.Lock()
_prices: dict[str, tuple[tuple[ProviderPrice, ...], float]] = {}  # model -> (rows newest first, expiry)


def provider_price_for(*, model: str, at: datetime | None = None) -> ProviderPrice | None:
    """The provider price in force for `model` at `at` (default now). A model's rows are cached for
    PRICE_CACHE_SECONDS, so settling a run reads none; the row in force is chosen at the moment asked, so a
    price entered ahead of time takes effect at its effective_from."""
    entry = _prices.get(model)
    if entry is None or entry[1] < time.monotonic():
        rows = tuple(ProviderPrice.objects.filter(model=model).order_by("-effective_from"))
        entry = (rows, time.monotonic() + settings.PRICE_CACHE_SECONDS)
        with _prices_lock:
            _prices[model] = entry
    moment = at or timezone.now()
    return next((row for row in entry[0] if row.effective_from <= moment), None)


def provider_prices_forget(**_signal: Any) -> None:
    """Drop cached provider prices (one was saved or deleted in this process; also a signal receiver)."""
    with _prices_lock:
        _prices.clear()


@dataclass
class CallUsage:
    """The model calls of one claim of a run, not yet written to it."""

    model: str  # the model the run asked for: on success the run's `model` becomes the answer's snapshot name
    calls: list[Completion] = field(default_factory=list)
    recorded: bool = False

    def add(self, completion: Completion) -> None:
        self.calls.append(completion)

    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens for c in self.calls)

    @property
    def cached_tokens(self) -> int:
        return sum(min(c.cached_tokens, c.input_tokens) for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)


def usage_cost(usage: CallUsage, *, run_id: uuid.UUID | str) -> Decimal:
    """What the provider bills for the calls, priced by the model the run asked for (a snapshot name the
    answer reports bills at its family's price)."""
    price = provider_price_for(model=usage.model)
    if price is None:
        logger.warning("No provider price for model %s; run %s recorded at zero cost.", usage.model, run_id)
        return Decimal(0)
    return sum(
        (
            price.cost_usd(
                input_tokens=c.input_tokens, cached_tokens=c.cached_tokens, output_tokens=c.output_tokens
            )
            for c in usage.calls
        ),
        Decimal(0),
    )


def usage_record(*, run_id: uuid.UUID | str, usage: CallUsage) -> Decimal:
    """Add the calls' usage and its provider cost to the run; returns the cost added."""
    if not usage.calls:
        return Decimal(0)
    cost = usage_cost(usage, run_id=run_id)
    Run.objects.filter(pk=run_id).update(
        provider_input_tokens=F("provider_input_tokens") + usage.input_tokens,
        provider_cached_tokens=F("provider_cached_tokens") + usage.cached_tokens,
        provider_output_tokens=F("provider_output_tokens") + usage.output_tokens,
        provider_cost_usd=F("provider_cost_usd") + cost,
    )
    return cost
