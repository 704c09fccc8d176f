"""Under /api/: refuse oversized bodies before any work, and answer Django's own 404 and 500 in the API's
error body (DRF's handler only sees exceptions raised inside its views)."""

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404

from tokenhub.api.exceptions import error_json_response

logger = logging.getLogger("django.request")

API_PREFIX = "/api/"
# Django's own error pages under /api/, re-answered in the API's body.
CODE_BY_STATUS = {
    400: "invalid_input",
    403: "forbidden",
    404: "not_found",
    413: "payload_too_large",
    500: "internal_error",
}
MESSAGES = {
    "invalid_input": "The request is not valid.",
    "forbidden": "You may not do this.",
    "not_found": "There is no API endpoint at this address.",
    "payload_too_large": "The request body is too large.",
    "internal_error": "Something went wrong on our side; it has been logged.",
}


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_json_response("invalid_input", "Content-Length is not a number.")
        if length > limit:
            return error_json_response(
                "payload_too_large", f"The request body is larger than {limit} bytes.", {"limit": limit}
            )
        response = self.get_response(request)
        code = CODE_BY_STATUS.get(response.status_code)
        if code and not response.get("Content-Type", "").startswith("application/json"):
            return error_json_response(code, MESSAGES[code])
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, Http404 | PermissionDenied | SuspiciousOperation | BadRequest):
            return None  # Django answers these (404/403/400) and __call__ re-answers them in our body
        logger.error(
            "Internal Server Error: %s", request.path, exc_info=exception, extra={"request": request}
        )
        return error_json_response("internal_error", "Something went wrong on our side; it has been logged.")
