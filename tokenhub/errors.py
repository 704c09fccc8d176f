"""The one error base of the project: every error a service raises on purpose derives from it.

An error carries a stable `code` (the API's `error.code`), a `message` written for a merchant, merchant-safe
`details`, and the HTTP `status` the API answers with, on the class. The API's exception handler knows only
this class and DRF's own exceptions; an exception that is neither is a bug and answers 500.

This module imports nothing of ours: every app may raise these, none may be imported from here.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code: str = "invalid_input"
    status: int = 400
    default_message: str = "This request could not be completed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)


class InvalidInput(ApplicationError):
    """A value that does not fit: `details` maps each field to its message."""

    code = "invalid_input"
    status = 400


class NotFound(ApplicationError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class Conflict(ApplicationError):
    """The request is valid but the object's current state does not allow it."""

    code = "conflict"
    status = 409


class PayloadTooLarge(ApplicationError):
    code = "payload_too_large"
    status = 413


class RateLimited(ApplicationError):
    code = "rate_limited"
    status = 429

    def __init__(
        self, message: str | None = None, *, retry_after: float, details: dict[str, Any] | None = None
    ):
        self.retry_after = retry_after
        super().__init__(message, details={"retry_after": retry_after, **(details or {})})
