"""The Team page: everyone sees the team; owners and managers add members, change roles and remove members."""

from typing import cast

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from merchants import services
from merchants.decorators import merchant_required
from merchants.exceptions import MerchantError
from merchants.models import Membership
from merchants.selectors import invitations_pending, team_of
from merchants.views import base_url


def _roles_for(by: Membership) -> list[tuple[str, str]]:
    """The roles `by` may hand out: only owners make owners (the service enforces it; this keeps the form honest)."""
    return [
        (value, str(label)) for value, label in Membership.Role.choices if by.is_owner or value != "owner"
    ]


class MemberAddForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Email"))
    role = forms.ChoiceField(label=gettext_lazy("Role"), initial=Membership.Role.STAFF)

    def __init__(self, *args, by: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = _roles_for(by)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, by: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = _roles_for(by)


def _may_change(by: Membership, member: Membership) -> bool:
    return by.can_manage and (by.is_owner or not member.is_owner)


def _render_team(request, *, add_form: MemberAddForm | None = None):
    by = request.membership
    rows = []
    for member in team_of(merchant=request.merchant):
        form = None
        if _may_change(by, member):
            form = MemberRoleForm(initial={"role": member.role}, by=by, auto_id=f"id_member_{member.pk}_%s")
        rows.append({"member": member, "role_form": form})
    context = {
        "rows": rows,
        "add_form": add_form or (MemberAddForm(by=by) if by.can_manage else None),
        "invitations": invitations_pending(merchant=request.merchant) if by.can_manage else [],
    }
    return render(request, "merchants/team.html", context)


@merchant_required
@require_GET
def team(request):
    return _render_team(request)


@merchant_required(manage=True)
@require_POST
def member_add(request):
    form = MemberAddForm(request.POST, by=request.membership)
    if not form.is_valid():
        return _render_team(request, add_form=form)
    try:
        invitation = services.member_add(
            merchant=request.merchant, by=request.membership, base_url=base_url(request), **form.cleaned_data
        )
    except MerchantError as exc:
        form.add_error(None, str(exc))
        return _render_team(request, add_form=form)
    # The same words whether or not the address has an account: this page never tells.
    messages.success(
        request,
        _("Invitation sent to %(email)s. The link in it works once, until %(date)s.")
        % {"email": invitation.email, "date": date_format(invitation.expires_at, "DATE_FORMAT")},
    )
    return redirect("team")


@merchant_required(manage=True)
@require_POST
def invitation_revoke(request, invitation_id: int):
    invitation = get_object_or_404(invitations_pending(merchant=request.merchant), pk=invitation_id)
    services.invitation_revoke(invitation=invitation, by=request.membership)
    messages.success(request, _("Withdrew the invitation to %(email)s.") % {"email": invitation.email})
    return redirect("team")


@merchant_required(manage=True)
@require_POST
def member_role(request, membership_id: int):
    member = get_object_or_404(team_of(merchant=request.merchant), pk=membership_id)
    form = MemberRoleForm(request.POST, by=request.membership)
    if not form.is_valid():
        # ErrorList yields message strings (its __getitem__ unwraps ValidationError); django-stubs says otherwise.
        reasons = "; ".join(form.errors["role"])  # type: ignore[arg-type]
        messages.error(request, _("Choose a role you may give: %(reasons)s") % {"reasons": reasons})
        return redirect("team")
    try:
        services.membership_set(
            merchant=request.merchant, user=member.user, role=form.cleaned_data["role"], by=request.membership
        )
    except MerchantError as exc:
        messages.error(request, str(exc))
    else:
        role = Membership.Role(form.cleaned_data["role"]).label.lower()
        messages.success(
            request, _("%(email)s is now %(role)s.") % {"email": member.user.email, "role": role}
        )
    return redirect("team")


@merchant_required(manage=True)
@require_POST
def member_remove(request, membership_id: int):
    member = get_object_or_404(team_of(merchant=request.merchant), pk=membership_id)
    try:
        services.membership_remove(membership=member, by=request.membership)
    except MerchantError as exc:
        messages.error(request, str(exc))
        return redirect("team")
    messages.success(request, _("Removed %(email)s from the team.") % {"email": member.user.email})
    # Someone who removed themselves no longer sees this store's team.
    return redirect("home" if member.user_id == request.user.pk else "team")
