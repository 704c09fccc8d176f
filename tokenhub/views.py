"""The dashboard home: the composition root may read from every app."""

from django.conf import settings
from django.shortcuts import render

from merchants.decorators import merchant_required
from wallets import selectors as wallet_selectors


@merchant_required
def home(request):
    merchant = request.merchant
    balance = wallet_selectors.wallet_balance(merchant=merchant)
    context = {
        "balance": balance,
        "low_balance": balance.available < settings.LOW_BALANCE_THRESHOLD,
        "recent_transfers": wallet_selectors.transfers_of(merchant=merchant)[:10],
    }
    return render(request, "home.html", context)
