"""The one rule at the edge for text no stored value may hold (tokenhub.text): NUL and lone surrogates.

Every request's path, query string and form fields (dashboard, admin, sign-up, webhooks' query) pass
through `InputGuardMiddleware` before any view sees them; a forbidden character anywhere answers 400 (the
API's error body under /api/, the dashboard's error page elsewhere), naming the field. JSON bodies under
/api/ are checked by the API's parser (tokenhub.api.parsers), which also bounds their depth, and uploaded
files by what reads them (the bulk CSV's cells), because only they know the file's format.

Refusing, not stripping: a silently changed value (a password, an email, a product name) would be a
surprise later; a clear 400 at once tells the sender what to fix.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext

from tokenhub.api.exceptions import error_json_response
from tokenhub.text import FORBIDDEN

API_PREFIX = "/api/"


def forbidden_field(request: HttpRequest) -> str | None:
    """The name of the first part of the request holding a forbidden character, else None."""
    if FORBIDDEN.search(request.path):
        return "path"
    sources: list[tuple[str, QueryDict]] = [("query", request.GET)]
    if request.method == "POST" and not request.path.startswith(API_PREFIX):
        # Only form encodings are parsed here; any other body (JSON webhooks) stays unread for its view.
        sources.append(("form", request.POST))
    for _where, values in sources:
        for key, items in values.lists():
            if FORBIDDEN.search(key):
                return key.encode("unicode_escape").decode("ascii")
            for item in items:
                if isinstance(item, str) and FORBIDDEN.search(item):
                    return key
    for key, uploads in request.FILES.lists() if request.method == "POST" else ():
        if any(FORBIDDEN.search(getattr(upload, "name", "") or "") for upload in uploads):
            return key
    return None


class InputGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = forbidden_field(request)
        if field is None:
            return self.get_response(request)
        if request.path.startswith(API_PREFIX):
            return error_json_response(
                "invalid_input",
                f"{field}: text may not contain NUL characters or unpaired surrogates.",
                {field: ["Text may not contain NUL characters or unpaired surrogates."]},
            )
        reason = gettext(
            "The form contained characters that cannot be saved (a NUL character or a broken Unicode "
            "sequence) in the field “%(field)s”. Remove them and try again."
        ) % {"field": field}
        return render(request, "400.html", {"reason": reason}, status=400)
