"""The dashboard's API keys page: owners and managers create keys (shown once) and revoke them."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from merchants import api_keys
from merchants.decorators import merchant_required
from merchants.exceptions import MerchantError


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=80, label="Name", help_text="e.g. the system that will use it.")
    monthly_token_budget = forms.IntegerField(
        min_value=1,
        required=False,
        label="Monthly token budget",
        help_text="Optional. Runs created with this key may use at most this many tokens per month (UTC).",
    )


@never_cache  # the response may carry a new key in clear: no browser or proxy may keep it
@merchant_required(manage=True)
@require_http_methods(["GET", "POST"])
def api_key_list(request):
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_keys.api_key_create(
                merchant=request.merchant, created_by=request.user, **form.cleaned_data
            )
        except MerchantError as exc:
            form.add_error(None, str(exc))
        else:
            form = ApiKeyForm()
    # The new key is rendered in this response only (no redirect, no session): it is never shown again.
    context = {"form": form, "created": created, "keys": api_keys.api_keys_of(merchant=request.merchant)}
    return render(request, "merchants/api_keys.html", context)


@merchant_required(manage=True)
@require_POST
def api_key_revoke(request, key_id: int):
    try:
        revoked = api_keys.api_key_revoke(merchant=request.merchant, key_id=key_id)
    except api_keys.ApiKeyNotFound:
        messages.error(request, "That API key does not exist.")
    else:
        messages.success(request, f"Revoked {revoked.name} (thk_{revoked.prefix}…). It stops working now.")
    return redirect("api-keys")
