"""How a product built on the run engine joins a run's life without the engine knowing it.

The engine is generic: it estimates, holds, calls, settles and recovers runs of any tool. A product that
needs more (the customer-service bot replays its conversation, records the reply, flags a moderated
message) registers `RunHooks` for its tool slug when its app is ready. The engine calls them; it never
imports the product, so the dependency points one way: product → engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agents.models import Run
    from merchants.models import Merchant


class RunHooks(Protocol):
    def history(self, *, merchant: Merchant, data: Any, before: datetime | None) -> list[dict[str, str]]:
        """Earlier turns the run's prompt replays ([] for none). `before`: the run's creation, or None
        while estimating. The estimate and the call build the same prompt, so the hold covers them."""

    def knowledge(
        self, *, merchant: Merchant, data: Any, before: datetime | None
    ) -> tuple[tuple[str, str], ...] | None:
        """The (label, text) knowledge sections retrieved for this input, or None to use the whole store
        profile. Must depend only on the input and the store's data, so the estimate and the call agree."""

    def on_succeeded(self, *, run: Run) -> None:
        """Inside the settling transaction, after the charge: record what the run produced."""

    def on_moderated(self, *, run: Run) -> None:
        """Inside the failing transaction: the provider's moderation refused the run's input."""


_hooks: dict[str, RunHooks] = {}


def register(tool: str, hooks: RunHooks) -> None:
    _hooks[tool] = hooks


def for_tool(tool: str) -> RunHooks | None:
    return _hooks.get(tool)
