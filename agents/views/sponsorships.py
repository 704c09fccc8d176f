"""Wallet → Sponsorships: offer to pay for another store's runs, accept an offer, pause, resume or end one.

It lives with the tools because an offer may name tools (agents → wallets, never the reverse).
"""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from agents.tools import registry
from merchants.decorators import merchant_required
from merchants.emails import email_send
from merchants.models import Membership, Merchant
from wallets import selectors
from wallets import sponsorships as service
from wallets.exceptions import SponsorshipError
from wallets.models import Sponsorship

MAX_MONTHLY_LIMIT = 10**12


class SponsorshipOfferForm(forms.Form):
    store = forms.SlugField(
        label=gettext_lazy("Store address"),
        max_length=60,
        help_text=gettext_lazy("The address of the store you will pay for, as it appears in its dashboard."),
    )
    monthly_limit = forms.IntegerField(
        label=gettext_lazy("Monthly limit (tokens)"), min_value=1, max_value=MAX_MONTHLY_LIMIT
    )
    tools = forms.MultipleChoiceField(
        label=gettext_lazy("Tools it pays for"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Leave all unticked to pay for every tool."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["tools"]).choices = [
            (tool.slug, tool.name) for tool in registry.all()
        ]


class SponsorshipLimitForm(forms.Form):
    monthly_limit = forms.IntegerField(
        label=gettext_lazy("Monthly limit (tokens)"), min_value=1, max_value=MAX_MONTHLY_LIMIT
    )


def _rows(merchant: Merchant) -> list[dict]:
    names = {tool.slug: tool.name for tool in registry.all()}
    rows = []
    for sponsorship in selectors.sponsorships_of(merchant=merchant):
        held, spent, limit = selectors.sponsorship_month_usage(sponsorship)
        rows.append(
            {
                "sponsorship": sponsorship,
                "giving": sponsorship.sponsor_id == merchant.pk,
                "live": sponsorship.status in Sponsorship.LIVE,
                "tools": ", ".join(names.get(slug, slug) for slug in sponsorship.tools)
                or gettext("every tool"),
                "used": held + spent,
                "limit": limit,
                "percent": min(100, round(100 * (held + spent) / limit)) if limit else 0,
            }
        )
    return rows


@merchant_required
def sponsorships(request):
    form = SponsorshipOfferForm()
    if request.method == "POST":
        if not request.membership.can_manage:
            raise Http404
        form = SponsorshipOfferForm(request.POST)
        if form.is_valid():
            beneficiary = Merchant.objects.filter(slug=form.cleaned_data["store"]).first()
            if beneficiary is None:
                form.add_error("store", gettext("There is no store with this address."))
            else:
                try:
                    sponsorship = service.sponsorship_create(
                        sponsor=request.merchant,
                        beneficiary=beneficiary,
                        monthly_limit=form.cleaned_data["monthly_limit"],
                        tools=form.cleaned_data["tools"],
                        known_tools=registry.slugs(),
                        created_by=request.user,
                    )
                except SponsorshipError as exc:
                    form.add_error(None, exc.message)
                else:
                    _invite(request, sponsorship)
                    messages.success(
                        request,
                        gettext("Offer sent. %(store)s's owners can accept it on their wallet page.")
                        % {"store": beneficiary.name},
                    )
                    return redirect("wallet-sponsorships")
    return render(
        request,
        "wallets/sponsorships.html",
        {"rows": _rows(request.merchant), "form": form, "can_manage": request.membership.can_manage},
    )


def _invite(request, sponsorship: Sponsorship) -> None:
    """Email the beneficiary's owners the offer, in their own language."""
    names = {tool.slug: tool.name for tool in registry.all()}
    url = request.build_absolute_uri(reverse("wallet-sponsorships"))
    owners = Membership.objects.filter(merchant=sponsorship.beneficiary, role=Membership.Role.OWNER)
    for owner in owners.select_related("user"):
        email_send(
            to=owner.user.email,
            template="sponsorship_invitation",
            context={
                "sponsor": sponsorship.sponsor.name,
                "store": sponsorship.beneficiary.name,
                "tools": ", ".join(names.get(slug, slug) for slug in sponsorship.tools)
                or gettext("every tool"),
                "limit": f"{sponsorship.monthly_limit:,}",
                "url": url,
            },
        )


# What each action may do, and who may do it: the sponsor decides how it pays, the beneficiary whether
# it accepts; either side may end it.
ACTIONS = {
    "accept": (service.sponsorship_accept, "beneficiary", gettext_lazy("Sponsorship accepted.")),
    "decline": (service.sponsorship_decline, "beneficiary", gettext_lazy("Offer declined.")),
    "pause": (service.sponsorship_pause, "sponsor", gettext_lazy("Sponsorship paused.")),
    "resume": (service.sponsorship_resume, "sponsor", gettext_lazy("Sponsorship resumed.")),
    "end": (service.sponsorship_end, "either", gettext_lazy("Sponsorship ended.")),
}


@require_POST
@merchant_required(manage=True)
def sponsorship_action(request, sponsorship_id: int, action: str):
    sponsorship = selectors.sponsorship_of(merchant=request.merchant, sponsorship_id=sponsorship_id)
    if sponsorship is None or action not in ACTIONS:
        raise Http404
    change, side, done = ACTIONS[action]
    is_sponsor = sponsorship.sponsor_id == request.merchant.pk
    if (side == "sponsor" and not is_sponsor) or (side == "beneficiary" and is_sponsor):
        raise Http404
    try:
        change(sponsorship=sponsorship)
    except SponsorshipError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, str(done))
    return redirect("wallet-sponsorships")


@require_POST
@merchant_required(manage=True)
def sponsorship_limit(request, sponsorship_id: int):
    sponsorship = selectors.sponsorship_of(merchant=request.merchant, sponsorship_id=sponsorship_id)
    if sponsorship is None or sponsorship.sponsor_id != request.merchant.pk:
        raise Http404
    form = SponsorshipLimitForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("The monthly limit must be a whole number of tokens above zero."))
    else:
        service.sponsorship_limit_change(
            sponsorship=sponsorship, monthly_limit=form.cleaned_data["monthly_limit"]
        )
        messages.success(request, gettext("Monthly limit changed."))
    return redirect("wallet-sponsorships")
