"""Dashboard forms for the tools. They only shape input; the tool's own schema validates it."""

from collections.abc import Callable

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merchants.models import Merchant

LANGUAGES = [("", _("Store default")), *Merchant.Language.choices]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace("\r", "").split("\n") if line.strip()]


def _commas(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ToolForm(forms.Form):
    list_fields: dict[str, Callable[[str], list[str]]] = {}

    def to_input(self) -> dict:
        data = {}
        for name, value in self.cleaned_data.items():
            if name in self.list_fields:
                value = self.list_fields[name](value or "")
            if value in ("", None, []):
                continue
            data[name] = value
        return data


class ListingWriterForm(ToolForm):
    list_fields = {"features": _lines, "keywords": _commas}

    product_name = forms.CharField(max_length=200, label=_("Product name"))
    category = forms.CharField(max_length=100, required=False, label=_("Category"))
    features = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label=_("Features"),
        help_text=_("One feature per line."),
    )
    keywords = forms.CharField(
        max_length=1000, required=False, label=_("Keywords"), help_text=_("Separate them with commas.")
    )
    audience = forms.CharField(max_length=100, required=False, label=_("Audience"))
    tone = forms.CharField(max_length=100, required=False, label=_("Tone"))
    language = forms.ChoiceField(choices=LANGUAGES, required=False, label=_("Language"))
    marketplace = forms.ChoiceField(
        label=_("Marketplace"),
        choices=[
            ("generic", _("Any marketplace")),
            ("amazon", _("Amazon")),
            ("shopify", _("Shopify")),
            ("taobao", _("Taobao")),
        ],
    )


class MarketingCopyForm(ToolForm):
    product_name = forms.CharField(max_length=200, required=False, label=_("Product name"))
    brief = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000, label=_("Brief")
    )
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[
            ("email", pgettext_lazy("marketing channel", "Email")),
            ("social", _("Social media")),
            ("sms", _("SMS")),
            ("ad", _("Ad")),
        ],
    )
    audience = forms.CharField(max_length=100, required=False, label=_("Audience"))
    tone = forms.CharField(max_length=100, required=False, label=_("Tone"))
    call_to_action = forms.CharField(max_length=100, required=False, label=_("Call to action"))
    language = forms.ChoiceField(choices=LANGUAGES, required=False, label=_("Language"))
    variants = forms.IntegerField(min_value=1, max_value=5, initial=3, label=_("Variants"))


class BulkUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Products CSV"), help_text=_("Columns: product_name, category, features, ...")
    )


TOOL_FORMS = {"listing-writer": ListingWriterForm, "marketing-copy": MarketingCopyForm}
