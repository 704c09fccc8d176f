from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from wallets.alerts import MAX_PERCENT_THRESHOLDS
from wallets.models import TopupPack


class RechargeForm(forms.Form):
    enabled = forms.BooleanField(label=_("Recharge automatically"), required=False)
    threshold = forms.IntegerField(label=_("When available tokens fall below"), min_value=0, max_value=10**15)
    pack = forms.ModelChoiceField(
        label=_("Buy"),
        queryset=TopupPack.objects.filter(active=True),
        required=False,
        empty_label=_("Choose a pack"),
    )
    monthly_max_count = forms.IntegerField(
        label=_("At most this many recharges a month"), min_value=1, max_value=1000, required=False
    )
    monthly_max_amount = forms.DecimalField(
        label=_("At most this much a month"), min_value=Decimal("0.01"), max_digits=9, decimal_places=2,
        required=False,
    )  # fmt: skip

    def clean(self):
        data = super().clean() or {}
        if data.get("enabled") and not data.get("pack"):
            self.add_error("pack", _("Choose what one recharge buys."))
        if data.get("enabled") and not data.get("monthly_max_count") and not data.get("monthly_max_amount"):
            # An uncapped off-session charge could empty a card on a runaway batch: one cap is required.
            self.add_error("monthly_max_count", _("Set a monthly limit: a number of recharges or an amount."))
        return data

    @property
    def monthly_max_cents(self) -> int | None:
        amount = self.cleaned_data.get("monthly_max_amount")
        return int(amount * 100) if amount is not None else None


class AlertForm(forms.Form):
    email_enabled = forms.BooleanField(label=_("Email the owners"), required=False)
    percents = forms.CharField(
        label=_("Alert below these percentages of the last top-up"),
        required=False,
        help_text=_("Up to three whole numbers between 1 and 99, separated by commas, e.g. 20, 5."),
    )
    alert_at_zero = forms.BooleanField(label=_("Alert when the wallet runs out"), required=False)

    def clean_percents(self) -> list[int]:
        raw = [part.strip() for part in (self.cleaned_data.get("percents") or "").split(",") if part.strip()]
        try:
            values = sorted({int(part) for part in raw}, reverse=True)
        except ValueError:
            raise forms.ValidationError(_("Use whole numbers separated by commas, e.g. 20, 5.")) from None
        if any(not 0 < value < 100 for value in values):
            raise forms.ValidationError(_("Each percentage must be between 1 and 99."))
        if len(values) > MAX_PERCENT_THRESHOLDS:
            raise forms.ValidationError(_("Use at most three percentages."))
        return values
