"""Following an invitation link: a new person sets their password; someone with an account logs in and joins."""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from merchants import services
from merchants.exceptions import InvalidLink, MerchantError
from merchants.forms import NewPasswordForm
from merchants.middleware import SESSION_KEY
from merchants.models import User
from merchants.selectors import invitation_by_token


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_check(invitation=invitation_by_token(token=token))
    except InvalidLink as exc:
        return render(request, "registration/link_invalid.html", {"message": str(exc)}, status=400)
    signed_in = request.user.is_authenticated
    # Whether the invited address has an account is told only to whoever holds the link sent to it.
    has_account = signed_in or User.objects.filter(email__iexact=invitation.email).exists()
    form = None if has_account else NewPasswordForm(request.POST or None, email=invitation.email)
    context = {"invitation": invitation, "form": form, "has_account": has_account}
    if request.method == "POST":
        try:
            if signed_in:
                membership = services.invitation_accept(token=token, user=request.user)
            elif form is not None and form.is_valid():
                membership = services.invitation_accept(token=token, password=form.cleaned_data["password1"])
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                return render(request, "registration/invitation_accept.html", context)
        except MerchantError as exc:
            context["error"] = str(exc)
            return render(request, "registration/invitation_accept.html", context)
        request.session[SESSION_KEY] = membership.merchant_id
        messages.success(
            request,
            _("Welcome to %(store)s. You are a %(role)s.")
            % {"store": membership.merchant.name, "role": membership.get_role_display().lower()},
        )
        return redirect("home")
    return render(request, "registration/invitation_accept.html", context)
