"""What the provider bills us for a run: every model call's usage, summed on the run and priced.

The merchant is charged for the answer that is used (`settle.run_succeed`); the provider bills every call,
so a repaired answer's first call and the calls of runs that then failed count here too. The worker tallies
the calls of one claim in memory and adds them to the run in one UPDATE (F-expressions, so retries and
recoveries of the same run add up); on success that UPDATE commits with the charge.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from agents.llm import Completion
from agents.models import ProviderPrice, Run

logger = logging.getLogger(__name__)


def provider_price_for(*, model: str, at=None) -> ProviderPrice | None:
    """The provider price in force for `model` at `at` (default now)."""
    return (
        ProviderPrice.objects.filter(model=model, effective_from__lte=at or timezone.now())
        .order_by("-effective_from")
        .first()
    )


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


def usage_record(*, run_id: uuid.UUID | str, usage: CallUsage) -> Decimal:
    """Add the calls' usage and its provider cost to the run; returns the cost added. Priced by the
    model the run asked for (a snapshot name the answer reports bills at its family's price)."""
    if not usage.calls:
        return Decimal(0)
    model = usage.model
    price = provider_price_for(model=model)
    cost = Decimal(0)
    if price is None:
        logger.warning("No provider price for model %s; run %s recorded at zero cost.", model, run_id)
    else:
        cost = sum(
            (
                price.cost_usd(
                    input_tokens=c.input_tokens, cached_tokens=c.cached_tokens, output_tokens=c.output_tokens
                )
                for c in usage.calls
            ),
            Decimal(0),
        )
    Run.objects.filter(pk=run_id).update(
        provider_input_tokens=F("provider_input_tokens") + usage.input_tokens,
        provider_cached_tokens=F("provider_cached_tokens") + usage.cached_tokens,
        provider_output_tokens=F("provider_output_tokens") + usage.output_tokens,
        provider_cost_usd=F("provider_cost_usd") + cost,
    )
    return cost
