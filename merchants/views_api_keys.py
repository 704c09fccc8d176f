"""The dashboard's API keys page: owners and managers create keys (shown once) and revoke them."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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
    rate_limit_per_minute = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        required=False,
        label=gettext_lazy("Requests per minute"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Built per form, not at import: in the reader's language, with the limit configured now.
        self.fields["rate_limit_per_minute"].help_text = _(
            "Optional. Leave empty for the standard limit of %(limit)s requests a minute; "
            "raise it for a bulk integration."
        ) % {"limit": f"{settings.API_RATE_LIMIT_PER_MINUTE:,}"}


class RateLimitForm(forms.Form):
    rate_limit_per_minute = forms.IntegerField(
        min_value=1, max_value=1_000_000, required=False, label=gettext_lazy("Requests per minute")
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
    context = {
        "form": form,
        "created": created,
        "keys": api_keys.api_keys_of(merchant=request.merchant),
        "default_rate_limit": settings.API_RATE_LIMIT_PER_MINUTE,
    }
    return render(request, "merchants/api_keys.html", context)


@merchant_required(manage=True)
@require_POST
def api_key_revoke(request, key_id: int):
    try:
        revoked = api_keys.api_key_revoke(merchant=request.merchant, key_id=key_id)
    except api_keys.ApiKeyNotFound:
        messages.error(request, _("That API key does not exist."))
    else:
        messages.success(
            request,
            _("Revoked %(name)s (thk_%(prefix)s…). It stops working now.")
            % {"name": revoked.name, "prefix": revoked.prefix},
        )
    return redirect("api-keys")


@merchant_required(manage=True)
@require_POST
def api_key_rate_limit(request, key_id: int):
    form = RateLimitForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a whole number of requests per minute between 1 and 1,000,000."))
        return redirect("api-keys")
    limit = form.cleaned_data["rate_limit_per_minute"]
    try:
        changed = api_keys.api_key_set_rate_limit(
            merchant=request.merchant, key_id=key_id, rate_limit_per_minute=limit
        )
    except api_keys.ApiKeyNotFound:
        messages.error(request, _("That API key does not exist."))
    else:
        shown = f"{limit:,}" if limit is not None else f"{settings.API_RATE_LIMIT_PER_MINUTE:,}"
        messages.success(
            request,
            _("%(name)s may now make %(limit)s requests a minute.") % {"name": changed.name, "limit": shown},
        )
    return redirect("api-keys")
