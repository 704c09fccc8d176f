"""Dashboard forms for the tools. They only shape input; the tool's own schema validates it."""

from collections.abc import Callable

from django import forms

from merchants.models import Merchant

LANGUAGES = [("", "Store default"), *Merchant.Language.choices]


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

    product_name = forms.CharField(max_length=200, label="Product name")
    category = forms.CharField(max_length=100, required=False)
    features = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, help_text="One feature per line."
    )
    keywords = forms.CharField(max_length=1000, required=False, help_text="Comma-separated.")
    audience = forms.CharField(max_length=100, required=False)
    tone = forms.CharField(max_length=100, required=False)
    language = forms.ChoiceField(choices=LANGUAGES, required=False)
    marketplace = forms.ChoiceField(
        choices=[("generic", "Generic"), ("amazon", "Amazon"), ("shopify", "Shopify"), ("taobao", "Taobao")]
    )


class MarketingCopyForm(ToolForm):
    product_name = forms.CharField(max_length=200, required=False, label="Product name")
    brief = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)
    channel = forms.ChoiceField(
        choices=[("email", "Email"), ("social", "Social"), ("sms", "SMS"), ("ad", "Ad")]
    )
    audience = forms.CharField(max_length=100, required=False)
    tone = forms.CharField(max_length=100, required=False)
    call_to_action = forms.CharField(max_length=100, required=False, label="Call to action")
    language = forms.ChoiceField(choices=LANGUAGES, required=False)
    variants = forms.IntegerField(min_value=1, max_value=5, initial=3)


class BulkUploadForm(forms.Form):
    file = forms.FileField(label="Products CSV", help_text="Columns: product_name, category, features, ...")


TOOL_FORMS = {"listing-writer": ListingWriterForm, "marketing-copy": MarketingCopyForm}
