"""The dashboard home: the composition root may read from every app."""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext

from agents import selectors as agent_selectors
from agents import tool_labels
from agents.tools import registry
from analytics import selectors as analytics_selectors
from merchants.decorators import merchant_required
from tokenhub.api.exceptions import error_json_response
from tokenhub.api.middleware import API_PREFIX, MESSAGES
from wallets import selectors as wallet_selectors

logger = logging.getLogger(__name__)

USAGE_DAYS = 14


def _weekly_usage(merchant, names: dict[str, str]) -> list[dict]:
    """The store's own usage per tool per week, with what each tool did: the reason to keep using it."""
    rows = analytics_selectors.store_usage_by_week(merchant=merchant)
    for row in rows:
        row["name"] = names.get(row["tool"], row["tool"])
    return rows


@merchant_required
def home(request):
    merchant = request.merchant
    balance = wallet_selectors.wallet_balance(merchant=merchant)
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    usage = agent_selectors.usage_by_day(merchant=merchant, days=USAGE_DAYS)
    peak = max((day["total"] for day in usage), default=0) or 1
    tools = [(tool.slug, tool_labels.tool_name(tool.slug)) for tool in registry.all()]
    for day in usage:
        day["bars"] = [
            (slug, name, day["tools"].get(slug, 0), 100 * day["tools"].get(slug, 0) / peak)
            for slug, name in tools
        ]
    context = {
        "balance": balance,
        "low_balance": balance.available < settings.LOW_BALANCE_THRESHOLD,
        "used_this_month": wallet_selectors.tokens_used_since(merchant=merchant, since=month_start),
        "usage": usage,
        "tools": tools,
        "recent_runs": agent_selectors.runs_of(merchant=merchant)[:8],
        "weekly_usage": _weekly_usage(merchant, dict(tools)),
        "recent_transfers": wallet_selectors.transfers_of(merchant=merchant)[:8],
    }
    return render(request, "home.html", context)


def _reason(exception: BaseException | None, default: str) -> str:
    """The sentence a view raised the error with, when it wrote one for the merchant; else `default`.

    Django's own 404s carry internal text (a resolver's dict, "No Run matches the given query."), so only a
    message that is a plain sentence and names no model is shown.
    """
    message = exception.args[0] if exception is not None and exception.args else None
    if isinstance(message, str) and message.endswith(".") and "matches the given query" not in message:
        return message
    return default


def _api_error(request: HttpRequest, code: str) -> HttpResponse | None:
    """Under /api/, Django's own error answered in the API's body, with no page rendered first: a page
    that cannot render (a template or static file missing) must not turn an API 404 into a 500."""
    return error_json_response(code, MESSAGES[code]) if request.path.startswith(API_PREFIX) else None


def page_not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    if (answer := _api_error(request, "not_found")) is not None:
        return answer
    reason = _reason(exception, gettext("There is no page at this address, or it belongs to another store."))
    return render(request, "404.html", {"reason": reason, "request_path": request.path}, status=404)


def permission_denied(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    if (answer := _api_error(request, "forbidden")) is not None:
        return answer
    reason = _reason(exception, gettext("Your role in this store does not allow this page."))
    return render(request, "403.html", {"reason": reason}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """The styled 500 page, with the navigation when the database still answers; plain text otherwise."""
    if (answer := _api_error(request, "internal_error")) is not None:
        return answer
    try:
        return render(request, "500.html", status=500)
    except Exception:
        logger.exception("The 500 page could not be rendered; sending plain text.")
        return HttpResponseServerError(
            gettext("Something went wrong on our side. Please try again in a minute."),
            content_type="text/plain",
        )
