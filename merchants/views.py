from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.messages.views import SuccessMessageMixin
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from merchants import services
from merchants.decorators import merchant_required
from merchants.exceptions import MerchantError
from merchants.forms import EmailAuthenticationForm, SignupForm, StoreProfileForm


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
            )
        except MerchantError as exc:
            form.add_error("email", str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to Tokenhub. Your store is ready.")
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
        messages.success(request, "Store profile saved.")
        return redirect("store-profile")
    return render(request, "merchants/store_profile.html", {"form": form})


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    """Any signed-in user; new members use it to replace the temporary password they were given."""

    template_name = "merchants/password_change.html"
    success_url = reverse_lazy("home")
    success_message = "Your password has been changed."
