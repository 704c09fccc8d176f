"""The errors the agents app raises on purpose, under the project's one error base.

Each carries its `code`, its HTTP `status` and a message written for a merchant; the API's handler reads
those and nothing else. This module is the bottom of `agents`: it imports no other agents module.
"""

from __future__ import annotations

from typing import Any

from tokenhub.errors import ApplicationError, Conflict, InvalidInput

__all__ = [
    "AgentsError",
    "BudgetExceeded",
    "BulkFileInvalid",
    "ConversationClosed",
    "IdempotencyConflict",
    "InvalidRunInput",
    "InvalidToolInput",
    "RunNotCancelable",
    "RunNotRefundable",
    "ToolUnavailable",
    "UnknownTool",
]


class AgentsError(ApplicationError):
    code = "agents_error"
    status = 409


class InvalidRunInput(InvalidInput):
    """The input does not fit the tool's schema. `details` maps each field path to its message."""


class InvalidToolInput(InvalidInput):
    """A tool's own validation failed. `errors` name each field: [{"field", "message"}]."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        # Each error names its field by the label a person reads ("Product name"), not its key.
        message = " ".join(
            f"{e.get('label') or e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
        )
        super().__init__(message, details={"errors": errors})

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its errors, not its message, wherever it is copied or pickled.
        return (type(self), (self.errors,))


class UnknownTool(InvalidInput):
    code = "unknown_tool"

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(
            f'There is no tool called "{slug}". GET /api/v1/tools lists the tools you can use.',
            details={"tool": slug},
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the slug: rebuilding from the message (Exception's default) doubled the sentence.
        return (type(self), (self.slug,))


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was already used by this merchant for a different tool or input."""

    code = "idempotency_conflict"


class RunNotCancelable(Conflict):
    code = "run_not_cancelable"


class RunNotRefundable(Conflict):
    code = "run_not_refundable"


class ToolUnavailable(AgentsError):
    """The tool's model has no price row in force: nothing can be estimated, so nothing may run."""

    code = "tool_unavailable"
    status = 503


class BulkFileInvalid(InvalidInput):
    """A bulk CSV that cannot become a batch. `details`: {"file": msg} or {"rows": {row number: {field: msg}}}."""


class ConversationClosed(Conflict):
    """The conversation was closed by staff: it takes no more messages."""

    code = "conversation_closed"


class BudgetExceeded(AgentsError):
    """A run would pass its API key's monthly token budget."""

    code = "budget_exceeded"
    status = 402

    def __init__(self, message: str, *, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
