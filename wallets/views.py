"""Dashboard wallet page: balance, the ledger statement with filters, CSV export, Stripe top-ups."""

import csv
import re
from datetime import datetime, time
from typing import cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from merchants.decorators import merchant_required
from merchants.models import Merchant
from wallets import selectors
from wallets.models import Account, Sponsorship, TopupPack, TopupPayment, Transfer
from wallets.payments import client as payment_client
from wallets.payments.exceptions import PaymentError
from wallets.recharge import views as recharge_views

STATEMENT_PAGE_SIZE = 50
ID = re.compile(r"[0-9]{1,18}")


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
        "sponsorship_offers": Sponsorship.objects.filter(
            beneficiary=request.merchant, status=Sponsorship.Status.INVITED
        ).count(),
    }
    context.update(recharge_views.wallet_sections(request))  # the auto-recharge and alerts sections
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
    # The store's zone, like the page; read now, because the rows stream after the request's zone is gone.
    zone = timezone.get_current_timezone()
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
        "source",
    ]
    merchant_id = request.merchant.pk
    sources = {"paid": gettext("Paid tokens"), "promotional": gettext("Promotional credits")}

    def source_label(t: Transfer) -> str:
        if t.source != "sponsored":
            return sources[t.source]
        sponsor, beneficiary = cast(Account, t.wallet), cast(Account, t.beneficiary)
        if sponsor.merchant_id == merchant_id:
            return gettext("You paid for %(store)s") % {"store": cast(Merchant, beneficiary.merchant).name}
        return gettext("Paid by %(store)s") % {"store": cast(Merchant, sponsor.merchant).name}

    def rows():
        # A UTF-8 byte order mark first: without it Excel reads the file as the PC's legacy code page and
        # garbles Chinese memos and names.
        yield "\ufeff" + writer.writerow(header)
        for t in transfers.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    t.pk,
                    t.created_at.astimezone(zone).isoformat(),
                    t.get_kind_display(),  # the label the statement page shows, not the stored code
                    t.signed_amount,
                    # A sponsor's balances are not this store's to see.
                    t.balance_after if t.wallet.merchant_id == merchant_id else "",
                    t.held_after if t.wallet.merchant_id == merchant_id else "",
                    _safe(t.memo),
                    _safe(t.reference),
                    _safe(t.actor_shown),
                    _safe(source_label(t)),
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
    pack_id = request.POST.get("pack", "")
    # A pack id that is not a number is no pack (the lookup would otherwise fail in the database).
    pack = get_object_or_404(TopupPack, pk=int(pack_id) if ID.fullmatch(pack_id) else 0, active=True)
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
    messages.info(request, gettext("Checkout canceled: nothing was charged."))
    return redirect("wallet")
