"""The customer-service bot's part in a run's life, registered with the run engine for its tool.

The engine calls these; it never imports the bot (`agents.runs.hooks`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from agents.conversations import selectors, services
from agents.models import Run
from agents.runs import hooks
from merchants.models import Merchant

TOOL = services.TOOL
# The bot replays the conversation: at most this many turns, within this many tokens.
HISTORY_MAX_TURNS = 20
HISTORY_TOKEN_BUDGET = 3000

# (merchant, customer message) -> (label, text) sections, or None to send the store profile's knowledge
# base. Set by the app that owns the store's articles (widgets), which agents may not import.
KnowledgeSource = Callable[[Merchant, str], tuple[tuple[str, str], ...] | None]
_knowledge_source: KnowledgeSource | None = None


def knowledge_source_set(source: KnowledgeSource | None) -> None:
    global _knowledge_source
    _knowledge_source = source


class ConversationHooks:
    def history(self, *, merchant: Merchant, data: Any, before: datetime | None) -> list[dict[str, str]]:
        return selectors.conversation_history(
            merchant=merchant,
            conversation_id=getattr(data, "conversation", None),
            before=before,
            max_turns=HISTORY_MAX_TURNS,
            token_budget=HISTORY_TOKEN_BUDGET,
        )

    def knowledge(
        self, *, merchant: Merchant, data: Any, before: datetime | None
    ) -> tuple[tuple[str, str], ...] | None:
        message = getattr(data, "message", None)
        if _knowledge_source is None or not message:
            return None
        return _knowledge_source(merchant, message)

    def on_succeeded(self, *, run: Run) -> None:
        services.conversation_reply_record(run=run)

    def on_moderated(self, *, run: Run) -> None:
        # A flagged message would fail every later turn of its conversation: leave it out from now on.
        services.conversation_message_flag(run=run)


def register() -> None:
    hooks.register(TOOL, ConversationHooks())
