"""The wallet page's "Recharge automatically" and "Alerts" sections, and the forms they post."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from merchants.decorators import merchant_required
from wallets import alerts
from wallets.models import Account, BalanceAlert, RechargeAttempt
from wallets.payments import client as payment_client
from wallets.payments.exceptions import PaymentError
from wallets.recharge import services
from wallets.recharge.exceptions import RechargeNotReady
from wallets.recharge.forms import AlertForm, RechargeForm

RECENT_ATTEMPTS = 5


def wallet_sections(request) -> dict:
    """Context for templates/wallets/_recharge.html and _alerts.html, included by the wallet page."""
    wallet = Account.objects.get(merchant=request.merchant, kind=Account.Kind.WALLET)
    rule = services.settings_of(wallet=wallet)
    alert = BalanceAlert.objects.filter(wallet=wallet).first() or BalanceAlert(wallet=wallet)
    count, cents = services.month_usage(wallet_id=wallet.pk)
    return {
        "recharge": rule,
        "recharge_form": RechargeForm(
            initial={
                "enabled": rule.enabled,
                "threshold": rule.threshold,
                "pack": rule.pack_id,
                "monthly_max_count": rule.monthly_max_count,
                "monthly_max_amount": rule.monthly_max_cents / 100 if rule.monthly_max_cents else None,
            }
        ),
        "recharge_attempts": RechargeAttempt.objects.filter(wallet=wallet)[:RECENT_ATTEMPTS],
        "recharge_month_count": count,
        "recharge_month_amount": f"{cents / 100:,.2f} {(rule.pack.currency if rule.pack else 'usd').upper()}",
        "recharge_can_edit": request.membership.is_owner and payment_client.enabled(),
        "recharge_payments_enabled": payment_client.enabled(),
        "alert_form": AlertForm(
            initial={
                "email_enabled": alert.email_enabled,
                "percents": ", ".join(str(p) for p in alert.percents),
                "alert_at_zero": alert.alert_at_zero,
            }
        ),
        "alert_thresholds": alerts.thresholds(alert, basis=alerts.last_topup(wallet_id=wallet.pk)),
        "alert_can_edit": request.membership.can_manage,
    }


def _form_errors(form) -> list[str]:
    return [str(error) for errors in form.errors.values() for error in errors]


def _owner_only(request) -> None:
    # Saving a card and letting us charge it unattended is the owner's decision, not a manager's.
    if not request.membership.is_owner:
        raise PermissionDenied(_("Only an owner of this store can change auto-recharge."))


@require_POST
@merchant_required
def recharge_save(request):
    _owner_only(request)
    form = RechargeForm(request.POST)
    if not form.is_valid():
        for error in _form_errors(form):
            messages.error(request, error)
        return redirect(f"{reverse('wallet')}#recharge")
    data = form.cleaned_data
    try:
        services.settings_save(
            merchant=request.merchant,
            enabled=data["enabled"],
            threshold=data["threshold"],
            pack=data["pack"],
            monthly_max_count=data["monthly_max_count"],
            monthly_max_cents=form.monthly_max_cents,
        )
    except RechargeNotReady as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Auto-recharge is on.") if data["enabled"] else _("Auto-recharge settings saved; it is off."),
        )
    return redirect(f"{reverse('wallet')}#recharge")


@require_POST
@merchant_required
def card_setup_start(request):
    _owner_only(request)
    done = request.build_absolute_uri(reverse("wallet-recharge-card-done"))
    try:
        setup = services.card_setup_start(
            merchant=request.merchant,
            user=request.user,
            success_url=done,
            cancel_url=request.build_absolute_uri(reverse("wallet")) + "#recharge",
        )
    except PaymentError as exc:
        messages.error(request, exc.message)
        return redirect(f"{reverse('wallet')}#recharge")
    return redirect(setup.checkout_url)


@merchant_required
def card_setup_done(request):
    messages.info(request, _("Stripe is confirming your card; it shows here within a few seconds."))
    return redirect(f"{reverse('wallet')}#recharge")


@require_POST
@merchant_required
def card_remove(request):
    _owner_only(request)
    services.card_remove(merchant=request.merchant)
    messages.success(request, _("The saved card was removed and auto-recharge is off."))
    return redirect(f"{reverse('wallet')}#recharge")


@require_POST
@merchant_required(manage=True)
def alerts_save(request):
    form = AlertForm(request.POST)
    if not form.is_valid():
        for error in _form_errors(form):
            messages.error(request, error)
        return redirect(f"{reverse('wallet')}#alerts")
    alerts.alert_settings_save(
        merchant=request.merchant,
        email_enabled=form.cleaned_data["email_enabled"],
        percents=form.cleaned_data["percents"],
        alert_at_zero=form.cleaned_data["alert_at_zero"],
    )
    messages.success(request, _("Alert settings saved."))
    return redirect(f"{reverse('wallet')}#alerts")
