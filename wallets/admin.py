"""The ledger in admin: read-only for everyone, superusers included; money moves only through services.

Support adjusts a balance with the "Adjust balance" form on a wallet, which calls the same service as
`grant_tokens`; adjustments above the approval threshold wait for a second staff member.
"""

from datetime import UTC, datetime, time
from typing import cast

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from merchants.actors import Actor
from merchants.admin import merchant_admin_extend
from merchants.models import Merchant, User
from wallets import adjustments, services
from wallets.exceptions import LedgerError
from wallets.forms import AdjustmentForm, PriceForm, PromotionGrantForm
from wallets.models import (
    Account,
    AdjustmentRequest,
    Price,
    Sponsorship,
    SponsorshipMonth,
    StripeEvent,
    TopupPack,
    TopupPayment,
    Transfer,
)

MERCHANT_SEARCH = ["merchant__slug", "merchant__name", "merchant__memberships__user__email"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable with the view permission; nobody adds, changes or deletes, not even a superuser."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "merchant_slug", "balance_shown", "held", "available_shown", "in_debt"]
    list_filter = ["kind", "in_debt"]
    search_fields = [*MERCHANT_SEARCH, "=code"]
    list_select_related = ["merchant"]
    fields = [
        "kind",
        "code",
        "merchant",
        "credits_posted",
        "debits_posted",
        "debits_pending",
        "available",
        "in_debt",
        "created_at",
        "ledger_links",
    ]
    readonly_fields = ["available", "ledger_links"]

    @admin.display(ordering="merchant__slug", description=_("merchant"))
    def merchant_slug(self, account: Account) -> str:
        return cast(Merchant, account.merchant).slug if account.merchant_id else "—"

    # System accounts carry no counters (no row is hot for every merchant): their balances are sums of
    # their transfers, which reconcile_ledger checks. Showing 0 for them would be a lie.
    @admin.display(description=_("balance"))
    def balance_shown(self, account: Account) -> str:
        return f"{account.balance:,}" if account.kind in Account.MERCHANT_KINDS else "—"

    @admin.display(description=_("held"))
    def held(self, account: Account) -> str:
        return f"{account.debits_pending:,}" if account.kind in Account.MERCHANT_KINDS else "—"

    @admin.display(description=_("available"))
    def available_shown(self, account: Account) -> str:
        return f"{account.available:,}" if account.kind in Account.MERCHANT_KINDS else "—"

    @admin.display(description=_("links"))
    def ledger_links(self, account: Account) -> str:
        transfers = reverse("admin:wallets_transfer_changelist") + f"?wallet__id__exact={account.pk}"
        if account.kind != Account.Kind.WALLET:
            return "Balance is the sum of its transfers (checked by reconcile_ledger)."
        adjust = reverse("admin:wallets_account_adjust", args=[account.pk])
        promote = reverse("admin:wallets_account_promote", args=[account.pk])
        return format_html(
            '<a href="{}">Transfers</a> · <a href="{}">Adjust balance</a> · <a href="{}">Grant promotional credits</a>',
            transfers,
            adjust,
            promote,
        )

    def get_urls(self):
        adjust = self.admin_site.admin_view(self.adjust_view)
        promote = self.admin_site.admin_view(self.promote_view)
        return [
            path("<int:account_id>/adjust/", adjust, name="wallets_account_adjust"),
            path("<int:account_id>/promote/", promote, name="wallets_account_promote"),
            *super().get_urls(),
        ]

    def promote_view(self, request: HttpRequest, account_id: int) -> HttpResponse:
        # Campaign credits skip the four-eyes queue, so only staff who may approve adjustments grant them.
        if not request.user.has_perm(adjustments.APPROVE_PERMISSION):
            raise PermissionDenied
        wallet = get_object_or_404(
            Account.objects.select_related("merchant"), pk=account_id, kind=Account.Kind.WALLET
        )
        form = PromotionGrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            expires_at = datetime.combine(form.cleaned_data["expires_on"], time.max, tzinfo=UTC)
            try:
                grant = services.promo_grant(
                    merchant=cast(Merchant, wallet.merchant),
                    amount=form.cleaned_data["amount"],
                    expires_at=expires_at,
                    key=form.cleaned_data["key"],
                    actor=Actor.staff(cast(User, request.user)),
                    memo=form.cleaned_data["reason"],
                )
            except LedgerError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Granted {grant.amount:,} promotional tokens until {expires_at:%Y-%m-%d} (transfer {grant.pk}).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:wallets_account_change", args=[wallet.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Grant promotional credits: {wallet}",
            "wallet": wallet,
            "form": form,
        }
        return TemplateResponse(request, "admin/wallets/account/promote.html", context)

    def adjust_view(self, request: HttpRequest, account_id: int) -> HttpResponse:
        if not request.user.has_perm(adjustments.REQUEST_PERMISSION):
            raise PermissionDenied
        wallet = get_object_or_404(Account, pk=account_id, kind=Account.Kind.WALLET)
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = adjustments.adjustment_submit(
                    wallet=wallet,
                    # admin_view only lets an authenticated staff member in, never AnonymousUser.
                    staff=cast(User, request.user),
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    ticket_reference=form.cleaned_data["ticket_reference"],
                    key=form.cleaned_data["key"],
                )
            except LedgerError as exc:
                form.add_error(None, str(exc))
            else:
                if isinstance(outcome, AdjustmentRequest):
                    self.message_user(
                        request,
                        f"{outcome.amount:+,} tokens is above the approval threshold: request "
                        f"{outcome.pk} waits for a second staff member.",
                        messages.WARNING,
                    )
                    url = reverse("admin:wallets_adjustmentrequest_change", args=[outcome.pk])
                else:
                    self.message_user(
                        request,
                        f"Posted transfer {outcome.pk}; balance is now {outcome.balance_after:,}.",
                        messages.SUCCESS,
                    )
                    url = reverse("admin:wallets_account_change", args=[wallet.pk])
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Adjust balance: {wallet}",
            "wallet": wallet,
            "form": form,
            "threshold": settings.ADJUSTMENT_APPROVAL_THRESHOLD,
        }
        return TemplateResponse(request, "admin/wallets/account/adjust.html", context)


def _tokens(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _merchant_figures(merchant: Merchant) -> list[tuple[str, str]]:
    wallet = Account.objects.filter(merchant=merchant, kind=Account.Kind.WALLET).first()
    if wallet is None:
        return []
    pending = AdjustmentRequest.objects.filter(wallet=wallet, status=AdjustmentRequest.Status.PENDING).count()
    return [
        ("Balance", _tokens(wallet.balance)),
        ("Held by runs", _tokens(wallet.debits_pending)),
        ("Available", _tokens(wallet.available)),
        ("In debt", "yes" if wallet.in_debt else "no"),
        ("Adjustments waiting", str(pending)),
    ]


def _merchant_links(merchant: Merchant) -> list[tuple[str, str]]:
    wallet = Account.objects.filter(merchant=merchant, kind=Account.Kind.WALLET).only("pk").first()
    if wallet is None:
        return []
    return [
        ("Wallet", reverse("admin:wallets_account_change", args=[wallet.pk])),
        ("Ledger", reverse("admin:wallets_transfer_changelist") + f"?wallet__id__exact={wallet.pk}"),
        ("Adjust balance", reverse("admin:wallets_account_adjust", args=[wallet.pk])),
        ("Grant promotional credits", reverse("admin:wallets_account_promote", args=[wallet.pk])),
        (
            "Adjustment requests",
            reverse("admin:wallets_adjustmentrequest_changelist") + f"?wallet__id__exact={wallet.pk}",
        ),
    ]


merchant_admin_extend(figures=_merchant_figures, links=_merchant_links)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    # Fits 1280 px: the idempotency key and memo are on each row's own page.
    list_display = [
        "id",
        "created_at",
        "kind",
        "merchant",
        "amount_shown",
        "balance_shown",
        "held_shown",
        "actor",
    ]
    list_filter = ["kind", "actor_kind", "created_at"]
    search_fields = [
        "wallet__merchant__slug",
        "wallet__merchant__name",
        "wallet__merchant__memberships__user__email",
        "=idempotency_key",
        "=reference",
    ]
    list_select_related = ["wallet__merchant", "actor_user"]
    # A count over millions of rows on every page view would be the slowest thing in admin.
    show_full_result_count = False

    @admin.display(description=_("merchant"), ordering="wallet__merchant__slug")
    def merchant(self, transfer: Transfer) -> str:
        if transfer.wallet_id is None:
            return "—"
        wallet = cast(Account, transfer.wallet)
        return cast(Merchant, wallet.merchant).slug if wallet.merchant_id else str(wallet)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, transfer: Transfer) -> str:
        return _tokens(transfer.amount)

    @admin.display(description=_("balance after"), ordering="balance_after")
    def balance_shown(self, transfer: Transfer) -> str:
        return _tokens(transfer.balance_after)

    @admin.display(description=_("held after"))
    def held_shown(self, transfer: Transfer) -> str:
        return _tokens(transfer.held_after)

    @admin.display(description=_("actor"))
    def actor(self, transfer: Transfer) -> str:
        # Staff see which staff member it was; merchants only ever see "Tokenhub support".
        who = cast(User, transfer.actor_user).email if transfer.actor_user_id else transfer.actor_label
        return f"{transfer.get_actor_kind_display()}: {who}"


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """New prices are new rows; a row already in effect is history and stays as it is."""

    form = PriceForm
    list_display = ["model", "input_weight", "output_weight", "effective_from", "in_effect", "note"]
    list_filter = ["model"]

    @admin.display(boolean=True, description=_("in effect or past"))
    def in_effect(self, price: Price) -> bool:
        return price.effective_from <= timezone.now()

    def has_change_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        if obj is not None and obj.effective_from <= timezone.now():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        if obj is not None and obj.effective_from <= timezone.now():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        # Bulk delete would bypass the per-row rule above.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(TopupPack)
class TopupPackAdmin(admin.ModelAdmin):
    list_display = ["name", "tokens", "price_cents", "currency", "active", "sort_order"]
    list_editable = ["active", "sort_order"]
    list_filter = ["active"]


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(ReadOnlyAdmin):
    """Requests are opened by the Adjust balance form and decided here with the two actions."""

    list_display = [
        "id",
        "created_at",
        "merchant",
        "amount_shown",
        "status",
        "requested_by",
        "decided_by",
        "transfer_id",
    ]
    list_filter = ["status"]
    search_fields = [f"wallet__{field}" for field in MERCHANT_SEARCH]
    list_select_related = ["wallet__merchant", "requested_by", "decided_by", "transfer"]
    actions = ["approve_selected", "reject_selected"]

    @admin.display(description=_("merchant"), ordering="wallet__merchant__slug")
    def merchant(self, request: AdjustmentRequest) -> str:
        return (
            cast(Merchant, request.wallet.merchant).slug
            if request.wallet.merchant_id
            else str(request.wallet)
        )

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, request: AdjustmentRequest) -> str:
        return f"{request.amount:+,}"

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(adjustments.APPROVE_PERMISSION)

    def _decide(self, request: HttpRequest, queryset: QuerySet, decide, verb: str) -> None:
        for request_id in queryset.values_list("pk", flat=True):
            try:
                decide(request_id=request_id, approver=request.user)
            except LedgerError as exc:
                self.message_user(request, f"Request {request_id}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Request {request_id} {verb}.", messages.SUCCESS)

    @admin.action(description=_("Approve and post selected requests"), permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, adjustments.adjustment_request_approve, "approved and posted")

    @admin.action(description=_("Reject selected requests"), permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, adjustments.adjustment_request_reject, "rejected")


@admin.register(TopupPayment)
class TopupPaymentAdmin(ReadOnlyAdmin):
    """Support answers "where are my tokens?": the payment, its Stripe ids, and the ledger row it made."""

    list_display = ["created_at", "merchant", "pack", "tokens", "amount_cents", "currency", "status",
                    "tokens_clawed_back"]  # fmt: skip
    list_filter = ["status", "currency"]
    search_fields = [*MERCHANT_SEARCH, "=checkout_session_id", "=payment_intent_id"]
    list_select_related = ["merchant", "pack"]
    date_hierarchy = "created_at"


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id"]
    list_filter = ["type"]
    search_fields = ["=event_id"]


# --- Auto-recharge (wallets/recharge/): read-only, as every money record here ---------------------------
from wallets.models import RechargeAttempt, RechargeSettings  # noqa: E402 (kept with its section)

WALLET_SEARCH = [
    "wallet__merchant__slug",
    "wallet__merchant__name",
    "wallet__merchant__memberships__user__email",
]


@admin.register(RechargeSettings)
class RechargeSettingsAdmin(ReadOnlyAdmin):
    list_display = ["wallet", "enabled", "threshold", "pack", "monthly_max_count", "monthly_max_cents",
                    "card_brand", "card_last4", "consecutive_failures"]  # fmt: skip
    list_filter = ["enabled"]
    search_fields = [*WALLET_SEARCH, "=stripe_customer_id"]
    list_select_related = ["wallet__merchant", "pack"]


@admin.register(RechargeAttempt)
class RechargeAttemptAdmin(ReadOnlyAdmin):
    """Support answers "why was my card charged?": each off-session payment and the top-up it made."""

    list_display = [
        "created_at",
        "wallet",
        "tokens",
        "amount_cents",
        "currency",
        "status",
        "payment_intent_id",
    ]
    list_filter = ["status"]
    search_fields = [*WALLET_SEARCH, "=payment_intent_id", "=reference"]
    list_select_related = ["wallet__merchant"]
    date_hierarchy = "created_at"


@admin.register(Sponsorship)
class SponsorshipAdmin(ReadOnlyAdmin):
    """Read-only: the stores themselves offer, accept, pause and end sponsorships."""

    list_display = ["__str__", "status", "monthly_limit", "created_at", "accepted_at", "ended_at"]
    list_filter = ["status"]
    search_fields = ["sponsor__slug", "sponsor__name", "beneficiary__slug", "beneficiary__name"]
    list_select_related = ["sponsor", "beneficiary"]


@admin.register(SponsorshipMonth)
class SponsorshipMonthAdmin(ReadOnlyAdmin):
    list_display = ["sponsorship", "month", "limit_tokens", "held", "spent"]
    list_select_related = ["sponsorship__sponsor", "sponsorship__beneficiary"]
