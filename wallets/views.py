"""Dashboard wallet page: balance, the ledger statement with filters, CSV export, Stripe top-ups."""

import csv
from datetime import datetime, time

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from merchants.decorators import merchant_required
from wallets import selectors
from wallets.models import TopupPack, TopupPayment, Transfer
from wallets.payments import client as payment_client
from wallets.payments.exceptions import PaymentError

STATEMENT_PAGE_SIZE = 50


def _filtered(request):
    kinds = [k for k in request.GET.getlist("kind") if k in Transfer.Kind.values]
    transfers = selectors.transfers_of(merchant=request.merchant, kinds=kinds or None)
    since, until = parse_date(request.GET.get("since") or ""), parse_date(request.GET.get("until") or "")
    if since:
        transfers = transfers.filter(created_at__gte=timezone.make_aware(datetime.combine(since, time.min)))
    if until:
        transfers = transfers.filter(created_at__lte=timezone.make_aware(datetime.combine(until, time.max)))
    return transfers, {"kinds": kinds, "since": since, "until": until}


@merchant_required
def wallet(request):
    transfers, filters = _filtered(request)
    page = Paginator(transfers, STATEMENT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "balance": selectors.wallet_balance(merchant=request.merchant),
        "page": page,
        "filters": filters,
        "kind_choices": Transfer.Kind.choices,
        "packs": [
            (pack, f"{pack.price_cents / 100:,.2f} {pack.currency.upper()}")
            for pack in selectors.topup_packs()
        ],
        "query": _without_page(request),
        "can_buy": request.membership.can_manage and payment_client.enabled(),
        "payments_enabled": payment_client.enabled(),
    }
    return render(request, "wallets/wallet.html", context)


def _without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


class _Echo:
    def write(self, value):
        return value


@merchant_required
def statement_csv(request):
    transfers, _ = _filtered(request)  # the same filters as the page, so the export matches what was seen
    writer = csv.writer(_Echo())
    header = [
        "id",
        "created_at",
        "kind",
        "tokens",
        "balance_after",
        "held_after",
        "memo",
        "reference",
        "actor",
    ]

    def rows():
        yield writer.writerow(header)
        for t in transfers.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    t.pk,
                    t.created_at.isoformat(),
                    t.kind,
                    t.signed_amount,
                    t.balance_after,
                    t.held_after,
                    _safe(t.memo),
                    _safe(t.reference),
                    _safe(t.actor_shown),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{request.merchant.slug}-ledger.csv"'
    return response


def _safe(value: str) -> str:
    """Spreadsheets execute cells starting with = + - @; prefix them so a memo cannot run as a formula."""
    return f"'{value}" if value and value[0] in "=+-@\t\r" else value


@require_POST
@merchant_required(manage=True)  # buying spends the store's money: owners and managers only
def topup_start(request):
    pack = get_object_or_404(TopupPack, pk=request.POST.get("pack") or 0, active=True)
    # Stripe substitutes nothing here; checkout_create puts the new payment's id in place of {payment_id}.
    base = request.build_absolute_uri(reverse("wallet-topup"))
    try:
        payment = payment_client.checkout_create(
            merchant=request.merchant,
            pack=pack,
            user=request.user,
            success_url=f"{base}{{payment_id}}/",
            cancel_url=f"{base}{{payment_id}}/canceled/",
        )
    except PaymentError as exc:
        messages.error(request, str(exc))
        return redirect("wallet")
    return redirect(payment.checkout_url)


def _payment_of(request, payment_id: int) -> TopupPayment:
    # Scoped to the signed-in store: another merchant's payment id answers 404, not 403.
    return get_object_or_404(TopupPayment, pk=payment_id, merchant=request.merchant)


@merchant_required
def topup_status(request, payment_id: int):
    """Stripe's success page: "payment pending" until the webhook credits, polled by HTMX meanwhile."""
    payment = _payment_of(request, payment_id)
    template = "wallets/_topup_status.html" if request.htmx else "wallets/topup.html"
    return render(request, template, {"payment": payment})


@merchant_required
def topup_canceled(request, payment_id: int):
    _payment_of(request, payment_id)
    messages.info(request, "Checkout canceled: nothing was charged.")
    return redirect("wallet")
