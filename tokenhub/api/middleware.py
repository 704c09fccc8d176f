"""Under /api/: refuse oversized bodies before any work, answer Django's own 404 and 500 in the API's error
body (DRF's handler only sees exceptions raised inside its views), and send a call made with an API key
down a short middleware chain.

A call with `Authorization: Bearer …` is authenticated by its key alone (merchants.api.authentication: a
Bearer header is accepted or refused there, never passed on to the session). The dashboard's middleware
after this one — static files, sessions, CSRF, the signed-in user, messages, htmx, the current store, the
user's language, log-in lockout — has nothing to do for it, and cost about a tenth of an API call's CPU.
Such a call goes through `API_KEY_MIDDLEWARE` instead: what every API response still needs (the security
policy headers, Accept-Language, the edge's input guard). Everything else, the dashboard's own calls to the
API included, takes the full chain.
"""

import logging
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import BadRequest, ImproperlyConfigured, PermissionDenied, SuspiciousOperation
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.module_loading import import_string

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


def carries_api_key(request: HttpRequest) -> bool:
    """Whether the request names the Bearer scheme, read as the API key authentication reads it: a key
    is then accepted or refused, and the session is never asked."""
    words = request.META.get("HTTP_AUTHORIZATION", "").split(maxsplit=1)
    return bool(words) and words[0].lower() == "bearer"


class _ChainHandler(BaseHandler):
    """Django's request handling through a middleware list of our choosing (sync middleware only, which
    all of API_KEY_MIDDLEWARE is), in the order and with the hooks `BaseHandler.load_middleware` gives."""

    def __init__(self, paths: list[str], process_exception: Callable) -> None:
        self._view_middleware: list[Callable] = []
        self._template_response_middleware: list[Callable] = []
        self._exception_middleware: list[Callable] = []
        # django-stubs leave out BaseHandler's private _get_response: resolve the URL, run the view.
        handler: Callable[[HttpRequest], Any] = convert_exception_to_response(cast(Any, self)._get_response)
        for path in reversed(paths):
            middleware = import_string(path)
            if not getattr(middleware, "sync_capable", True):
                raise ImproperlyConfigured(f"API_KEY_MIDDLEWARE: {path} cannot run synchronously.")
            instance = middleware(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        # Outermost, as ApiMiddleware is in the full chain: an error in a view answers in the API's body.
        self._exception_middleware.append(process_exception)
        self._middleware_chain = handler

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return cast(HttpResponse, self._middleware_chain(request))


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.api_key_chain = _ChainHandler(settings.API_KEY_MIDDLEWARE, self.process_exception)

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
        # Past the body limit, a call with an API key leaves the full chain (see the module docstring).
        chain = self.api_key_chain if carries_api_key(request) else self.get_response
        response = chain(request)
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
