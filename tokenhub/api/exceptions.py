"""The one error body of the API, and the one handler that produces it from every exception.

`{"error": {"code", "message", "details"}}`. Services raise their app's exceptions (each with a stable
`code`); DRF raises its own; this module maps both to a status and the body. Nothing else builds errors.
"""

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from agents.exceptions import AgentsError
from agents.tools.base import UnknownTool
from wallets.exceptions import InsufficientTokens

logger = logging.getLogger(__name__)

# The status each service error code answers with. A code not listed is a state conflict (409).
STATUS_BY_CODE = {
    "invalid_input": 400,
    "unknown_tool": 400,
    "unauthenticated": 401,
    "insufficient_tokens": 402,
    "budget_exceeded": 402,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "idempotency_conflict": 409,
    "run_not_cancelable": 409,
    "conversation_closed": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "internal_error": 500,
    "tool_unavailable": 503,
}


class ApiError(Exception):
    """An error the API layer itself raises (limits, budgets); services raise their own families."""

    code = "invalid_input"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details = details or {}
        super().__init__(message)


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class BudgetExceeded(ApiError):
    code = "budget_exceeded"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_json_response(code: str, message: str, details: dict[str, Any] | None = None) -> JsonResponse:
    """The error body outside DRF (middleware: Django's 404 and 500, oversized bodies)."""
    return JsonResponse(error_body(code, message, details), status=STATUS_BY_CODE[code])


def _plain(detail: Any) -> Any:
    """DRF's ErrorDetail lists and dicts as plain JSON; a one-message list becomes that message."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        items = [_plain(item) for item in detail]
        return items[0] if len(items) == 1 and isinstance(items[0], str) else items
    return str(detail)


def _first_message(details: Any, path: str = "") -> str:
    if isinstance(details, dict) and details:
        key, value = next(iter(details.items()))
        name = key if key != "non_field_errors" else ""
        return _first_message(value, f"{path}.{name}" if path and name else (name or path))
    if isinstance(details, list) and details:
        return _first_message(details[0], path)
    return f"{path}: {details}" if path else str(details)


def _validation(exc: drf.ValidationError) -> tuple[str, str, dict[str, Any]]:
    details = _plain(exc.detail)
    if not isinstance(details, dict):
        details = {"non_field_errors": details if isinstance(details, list) else [details]}
    return "invalid_input", _first_message(details), details


def _describe(exc: Exception) -> tuple[str, str, dict[str, Any]] | None:
    """(code, message, details) for an exception the API answers on purpose; None for a bug."""
    match exc:
        case InsufficientTokens():
            return exc.code, str(exc), {"required": exc.required, "available": exc.available}
        case AgentsError() | ApiError():
            return exc.code, exc.message, exc.details
        case UnknownTool():
            return "unknown_tool", exc.message, {"tool": exc.slug}
        case drf.ValidationError():
            return _validation(exc)
        case drf.UnsupportedMediaType():
            return "invalid_input", "Send the request body as JSON (Content-Type: application/json).", {}
        case drf.ParseError():
            return "invalid_input", f"The request body is not valid JSON: {exc.detail}", {}
        case drf.NotAuthenticated() | drf.AuthenticationFailed():
            return "unauthenticated", str(exc.detail), {}
        case drf.PermissionDenied() | DjangoPermissionDenied():
            return "forbidden", str(getattr(exc, "detail", "") or "You may not do this."), {}
        case drf.NotFound() | Http404():
            return "not_found", "Not found.", {}
        case drf.MethodNotAllowed():
            return "method_not_allowed", str(exc.detail), {}
        case drf.NotAcceptable():
            return "not_acceptable", str(exc.detail), {}
        case drf.Throttled():
            wait = math.ceil(exc.wait or 1)
            return "rate_limited", f"Too many requests; retry in {wait} s.", {"retry_after": wait}
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error a view raises becomes the one body.

    Unexpected exceptions return None, so Django logs them and the API middleware answers 500 in the
    same body: a bug is never dressed up as a 4xx.
    """
    # Imported here: rest_framework.views loads the parser setting, and our parser imports this module.
    from rest_framework.views import set_rollback

    described = _describe(exc)
    if described is None:
        return None
    code, message, details = described
    status = STATUS_BY_CODE.get(code, 409)
    headers = {}
    if code == "rate_limited":
        headers["Retry-After"] = str(details["retry_after"])
    if code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    set_rollback()
    return Response(error_body(code, message, details), status=status, headers=headers)
