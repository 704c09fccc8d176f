"""CORS for the visitor API (/widget/v1/), decided per request from the widgets' allowed origins.

A preflight (OPTIONS) cannot say which widget it is for (browsers send header names, not values), so it is
allowed for an origin that any active widget lists; the real request is then checked against its own
widget (`widgets.api.widget_of_request`), and only a verified origin gets `Access-Control-Allow-Origin`.
No cookies are involved (no Allow-Credentials): a visitor is known by the token the script keeps.
Bodies above WIDGET_MAX_BODY_BYTES are refused before any work, and Django's own errors under the prefix
answer in the API's error body.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpResponse

from tokenhub.api.exceptions import error_json_response
from widgets.api import ORIGIN_META
from widgets.models import Widget

PREFIX = "/widget/v1/"
WIDGET_MAX_BODY_BYTES = 16 * 1024
ALLOW_HEADERS = "Authorization, Content-Type, X-Widget-Key, Idempotency-Key"
_STATUS_CODES = {
    400: "invalid_input",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    500: "internal_error",
}
_MESSAGES = {
    "invalid_input": "The request is not valid.",
    "forbidden": "You may not do this.",
    "not_found": "There is nothing at this address.",
    "method_not_allowed": "This method is not allowed here.",
    "internal_error": "Something went wrong on our side; it has been logged.",
}


def origin_listed(origin: str) -> bool:
    """Whether any active widget allows `origin`."""
    active = Widget.objects.filter(revoked_at__isnull=True)
    if connection.vendor == "postgresql":
        return active.filter(allowed_origins__contains=[origin]).exists()
    return any(origin in origins for origins in active.values_list("allowed_origins", flat=True))


class WidgetCorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        origin = request.headers.get("Origin", "")
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            if origin and origin_listed(origin):
                response["Access-Control-Allow-Origin"] = origin
                response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response["Access-Control-Max-Age"] = "600"
            response["Vary"] = "Origin"
            return response
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = WIDGET_MAX_BODY_BYTES + 1
        if length > WIDGET_MAX_BODY_BYTES:
            response = error_json_response(
                "payload_too_large",
                f"The request body is larger than {WIDGET_MAX_BODY_BYTES} bytes.",
                {"limit": WIDGET_MAX_BODY_BYTES},
            )
        else:
            response = self.get_response(request)
            code = _STATUS_CODES.get(response.status_code)
            if code and not response.get("Content-Type", "").startswith(
                ("application/json", "text/event-stream")
            ):
                response = error_json_response(code, _MESSAGES[code], status=response.status_code)
        if origin and request.META.get(ORIGIN_META) == origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "Retry-After"
        response["Vary"] = "Origin"
        return response
