"""A person's account page: email (verified or not, and changing it), password, and signed-in browsers."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from merchants import accounts
from merchants.exceptions import MerchantError
from merchants.forms import EmailChangeForm
from merchants.selectors import sessions_of
from merchants.views import base_url


def _render(request, *, email_form: EmailChangeForm | None = None):
    accounts.sessions_prune(user=request.user)
    context = {
        "email_form": email_form or EmailChangeForm(user=request.user),
        "sessions": sessions_of(user=request.user),
        "current_session_key": request.session.session_key,
    }
    return render(request, "merchants/account.html", context)


@login_required
@require_GET
def account(request):
    return _render(request)


@login_required
@require_POST
def email_verification_resend(request):
    if request.user.email_verified:
        messages.info(request, _("Your email address is verified already."))
    else:
        accounts.email_verification_send(user=request.user, base_url=base_url(request))
        messages.success(request, _("We sent a new link to %(email)s.") % {"email": request.user.email})
    return redirect(request.POST.get("next") if request.POST.get("next", "").startswith("/") else "account")


@require_GET
def email_verify(request, token: str):
    try:
        user = accounts.email_verify(token=token)
    except MerchantError as exc:
        return render(request, "registration/link_invalid.html", {"message": str(exc)}, status=400)
    messages.success(request, _("Thank you: %(email)s is verified.") % {"email": user.email})
    return redirect("home" if request.user.is_authenticated else "login")


@login_required
@require_POST
def email_change(request):
    form = EmailChangeForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render(request, email_form=form)
    try:
        accounts.email_change_request(
            user=request.user, new_email=form.cleaned_data["new_email"], base_url=base_url(request)
        )
    except MerchantError as exc:
        form.add_error("new_email", str(exc))
        return _render(request, email_form=form)
    messages.success(
        request,
        _("We sent a link to %(email)s. Your email changes when you open it.")
        % {"email": form.cleaned_data["new_email"]},
    )
    return redirect("account")


@require_http_methods(["GET", "POST"])
def email_change_confirm(request, token: str):
    # A GET only shows a button: mail scanners that open links must not change anyone's address.
    if request.method == "GET":
        return render(request, "registration/email_change_confirm.html", {"token": token})
    try:
        user = accounts.email_change_confirm(token=token)
    except MerchantError as exc:
        return render(request, "registration/link_invalid.html", {"message": str(exc)}, status=400)
    messages.success(request, _("Your email address is now %(email)s.") % {"email": user.email})
    return redirect("account" if request.user.is_authenticated else "login")


@login_required
@require_POST
def session_revoke(request, session_id: int):
    accounts.session_revoke(user=request.user, session_id=session_id)
    messages.success(request, _("That browser is logged out."))
    return redirect("account")
