"""Template context the dashboard's navigation shows on every page."""

from typing import Any

from django.http import HttpRequest

from agents.conversations import selectors as conversation_selectors


def support_inbox(request: HttpRequest) -> dict[str, Any]:
    """How many conversations wait for a person, for the Support link's count (none when logged out)."""
    merchant = getattr(request, "merchant", None)
    if not merchant:  # a lazy object wrapping None when nobody is logged in
        return {"support_inbox_count": 0}
    count = conversation_selectors.conversations_of(merchant=merchant, status="needs_human").count()
    return {"support_inbox_count": count}
