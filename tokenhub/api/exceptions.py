"""The one error body of the API, and the one handler that produces it from every exception.

`{"error": {"code", "message", "details"}}`. Services raise `tokenhub.errors.ApplicationError`
subclasses, each carrying its code, message, details and HTTP status; DRF raises its own. This module maps
both to the body and knows no app. Anything else is a bug: it answers 500, never a guessed 4xx.
"""

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from tokenhub.errors import ApplicationError, PayloadTooLarge, RateLimited

logger = logging.getLogger(__name__)

__all__ = ["PayloadTooLarge", "RateLimited", "error_body", "error_json_response", "exception_handler"]

# Statuses of the codes this glue produces itself (DRF's exceptions, Django's 404 and 500).
GLUE_STATUS = {
    "invalid_input": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "payload_too_large": 413,
    "rate_limited": 429,
    "internal_error": 500,
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_json_response(
    code: str, message: str, details: dict[str, Any] | None = None, *, status: int | None = None
) -> JsonResponse:
    """The error body outside DRF (middleware: Django's 404 and 500, oversized bodies)."""
    return JsonResponse(error_body(code, message, details), status=status or GLUE_STATUS[code])


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


def _validation(exc: drf.ValidationError) -> tuple[int, str, str, dict[str, Any]]:
    details = _plain(exc.detail)
    if not isinstance(details, dict):
        details = {"non_field_errors": details if isinstance(details, list) else [details]}
    return 400, "invalid_input", _first_message(details), details


def describe(exc: Exception) -> tuple[int, str, str, dict[str, Any]] | None:
    """(status, code, message, details) for an exception the API answers on purpose; None for a bug."""
    match exc:
        case ApplicationError():
            return exc.status, exc.code, exc.message, exc.details
        case drf.ValidationError():
            return _validation(exc)
        case drf.UnsupportedMediaType():
            return 400, "invalid_input", "Send the request body as JSON (Content-Type: application/json).", {}
        case drf.ParseError():
            return 400, "invalid_input", f"The request body is not valid JSON: {exc.detail}", {}
        case drf.NotAuthenticated() | drf.AuthenticationFailed():
            return 401, "unauthenticated", str(exc.detail), {}
        case drf.PermissionDenied() | DjangoPermissionDenied():
            return 403, "forbidden", str(getattr(exc, "detail", "") or "You may not do this."), {}
        case drf.NotFound() | Http404():
            return 404, "not_found", "Not found.", {}
        case drf.MethodNotAllowed():
            return 405, "method_not_allowed", str(exc.detail), {}
        case drf.NotAcceptable():
            return 406, "not_acceptable", str(exc.detail), {}
        case drf.Throttled():
            # DRF sets Throttled.wait in __init__; djangorestframework-stubs do not declare it.
            wait = math.ceil(exc.wait or 1)  # type: ignore[attr-defined]
            return 429, "rate_limited", f"Too many requests; retry in {wait} s.", {"retry_after": wait}
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error a view raises becomes the one body.

    Unexpected exceptions return None, so Django logs them and the API middleware answers 500 in the
    same body: a bug is never dressed up as a 4xx.
    """
    # Imported here: rest_framework.views loads the parser setting, and our parser imports this module.
    from rest_framework.views import set_rollback

    described = describe(exc)
    if described is None:
        return None
    status, code, message, details = described
    headers = {}
    if code == "rate_limited":
        headers["Retry-After"] = str(math.ceil(float(details.get("retry_after") or 1)))
    if code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    set_rollback()
    return Response(error_body(code, message, details), status=status, headers=headers)
