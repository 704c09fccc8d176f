"""Forms for support staff in admin: a balance adjustment, and prices that never rewrite history."""

import re
import uuid
from datetime import timedelta

from django import forms
from django.utils import timezone

from wallets.models import Price

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_KEY = re.compile(rf"^adjust:{_UUID}$")
_PROMO_KEY = re.compile(rf"^promo-grant:{_UUID}$")


class AdjustmentForm(forms.Form):
    amount = forms.IntegerField(help_text="Tokens. Negative debits the wallet; it never goes below zero.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Written on the ledger.")
    ticket_reference = forms.CharField(max_length=120, required=False)
    # Issued with the page: submitting the same page twice (double click, browser retry) posts once.
    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("key", f"adjust:{uuid.uuid4()}")

    def clean_amount(self) -> int:
        if self.cleaned_data["amount"] == 0:
            raise forms.ValidationError("An adjustment of zero tokens changes nothing.")
        return self.cleaned_data["amount"]

    def clean_reason(self) -> str:
        if not (reason := self.cleaned_data["reason"].strip()):
            raise forms.ValidationError("A reason is required.")
        return reason

    def clean_key(self) -> str:
        if not _KEY.match(self.cleaned_data["key"]):
            raise forms.ValidationError("Reload the page: this form's key is not valid.")
        return self.cleaned_data["key"]


class PromotionGrantForm(forms.Form):
    """A campaign's promotional credits for one store, with the day they expire."""

    amount = forms.IntegerField(min_value=1, max_value=10**12, help_text="Tokens to grant.")
    expires_on = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="What is left at the end of this day (UTC) is taken back.",
    )
    reason = forms.CharField(max_length=300, help_text="The campaign or reason: written on the ledger.")
    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("key", f"promo-grant:{uuid.uuid4()}")

    def clean_expires_on(self):
        from django.utils import timezone

        if self.cleaned_data["expires_on"] <= timezone.now().date():
            raise forms.ValidationError("The expiry date must be after today.")
        return self.cleaned_data["expires_on"]

    def clean_key(self) -> str:
        if not _PROMO_KEY.match(self.cleaned_data["key"]):
            raise forms.ValidationError("Reload the page: this form's key is not valid.")
        return self.cleaned_data["key"]


class PriceForm(forms.ModelForm):
    """A new price starts now or later: runs already charged keep the row they used, and so does history."""

    # Room for the seconds between opening the form and saving it.
    SLACK = timedelta(minutes=5)

    class Meta:
        model = Price
        fields = ["model", "input_weight", "output_weight", "effective_from", "note"]

    def clean_effective_from(self):
        effective_from = self.cleaned_data["effective_from"]
        if effective_from < timezone.now() - self.SLACK:
            raise forms.ValidationError("A price cannot start in the past; add a row effective from now on.")
        return effective_from
