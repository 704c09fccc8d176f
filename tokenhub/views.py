"""The dashboard home: the composition root may read from every app."""

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from agents import selectors as agent_selectors
from agents.tools import registry
from merchants.decorators import merchant_required
from wallets import selectors as wallet_selectors

USAGE_DAYS = 14


@merchant_required
def home(request):
    merchant = request.merchant
    balance = wallet_selectors.wallet_balance(merchant=merchant)
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    usage = agent_selectors.usage_by_day(merchant=merchant, days=USAGE_DAYS)
    peak = max((day["total"] for day in usage), default=0) or 1
    tools = [(tool.slug, tool.name) for tool in registry.all()]
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
        "recent_transfers": wallet_selectors.transfers_of(merchant=merchant)[:8],
    }
    return render(request, "home.html", context)
