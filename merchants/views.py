from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.messages.views import SuccessMessageMixin
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from merchants import services
from merchants.decorators import merchant_required
from merchants.exceptions import MerchantError
from merchants.forms import EmailAuthenticationForm, PasswordResetRequestForm, SignupForm, StoreProfileForm
from merchants.i18n import chosen_language
from merchants.lockout import account_unlock


def base_url(request) -> str:
    """Where links in the emails this request sends point: the host it came to (checked by ALLOWED_HOSTS)."""
    return request.build_absolute_uri("/").rstrip("/")


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated and request.membership:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, _merchant = services.user_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                store_name=form.cleaned_data["store_name"],
                base_url=base_url(request),
                time_zone=form.cleaned_data["time_zone"],
                # A language picked with the switch before signing up is kept; otherwise the browser decides.
                language=chosen_language(request),
            )
        except MerchantError as exc:
            form.add_error("email", str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                _("Welcome to Tokenhub. Your store is ready. We sent a link to %(email)s to verify it.")
                % {"email": user.email},
            )
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


@merchant_required(manage=True)
@require_http_methods(["GET", "POST"])
def store_profile(request):
    form = StoreProfileForm(request.POST or None, instance=request.merchant)
    if request.method == "POST" and form.is_valid():
        services.store_profile_update(merchant=request.merchant, by=request.membership, **form.cleaned_data)
        messages.success(request, _("Store profile saved."))
        return redirect("store-profile")
    return render(request, "merchants/store_profile.html", {"form": form})


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    template_name = "merchants/password_change.html"
    success_url = reverse_lazy("account")
    success_message = gettext_lazy("Your password has been changed.")


class PasswordResetView(auth_views.PasswordResetView):
    """The same answer whether or not the address has an account; the mail goes out from the worker."""

    form_class = PasswordResetRequestForm
    template_name = "registration/password_reset_form.html"


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever reset the password reads the account's mail: the address is verified, and a lockout
        # (someone else's wrong guesses) ends now.
        user = form.user
        if user.email_verified_at is None:
            from django.utils import timezone

            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
        account_unlock(user=user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
