"""The errors runs raise on purpose: one family, each with a stable `code` and merchant-safe `details`.

`UnknownTool` here is both an `AgentsError` and the tool registry's own `UnknownTool`, so either `except`
catches it; the ledger's `InsufficientTokens` propagates unchanged (its code and `required`/`available` are the API's).
"""

from typing import Any

from agents.tools import base as tools_base

__all__ = [
    "AgentsError",
    "BulkFileInvalid",
    "ConversationClosed",
    "IdempotencyConflict",
    "InvalidRunInput",
    "RunNotCancelable",
    "RunNotRefundable",
    "ToolUnavailable",
    "UnknownTool",
]


class AgentsError(Exception):
    code = "agents_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details = details or {}
        super().__init__(message)


class InvalidRunInput(AgentsError):
    """The input does not fit the tool's schema. `details` maps each field path to its message."""

    code = "invalid_input"


class IdempotencyConflict(AgentsError):
    """The Idempotency-Key was already used by this merchant for a different tool or input."""

    code = "idempotency_conflict"


class UnknownTool(AgentsError, tools_base.UnknownTool):
    code = "unknown_tool"

    def __init__(self, slug: str) -> None:
        self.slug = slug
        AgentsError.__init__(self, f"There is no tool called {slug!r}.", details={"tool": slug})


class RunNotCancelable(AgentsError):
    code = "run_not_cancelable"


class RunNotRefundable(AgentsError):
    code = "run_not_refundable"


class ToolUnavailable(AgentsError):
    """The tool's model has no price row in force: nothing can be estimated, so nothing may run."""

    code = "tool_unavailable"


class BulkFileInvalid(AgentsError):
    """A bulk CSV that cannot become a batch. `details`: {"file": msg} or {"rows": {row number: {field: msg}}}."""

    code = "invalid_input"


class ConversationClosed(AgentsError):
    """The conversation was closed by staff: it takes no more messages."""

    code = "conversation_closed"
