from django import forms
from django.utils.translation import gettext_lazy as _

from merchants.models import Merchant
from widgets.models import DEFAULT_CONVERSATION_TOKEN_CAP, DEFAULT_DAILY_TOKEN_BUDGET


class WidgetForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80, initial="Chat")
    origins = forms.CharField(
        label=_("Websites that may show it"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One origin a line, like https://shop.example (scheme, host and port; no path)."),
    )
    color = forms.CharField(
        label=_("Colour"), max_length=7, initial="#2563eb", widget=forms.TextInput(attrs={"type": "color"})
    )
    language = forms.ChoiceField(label=_("Language"), choices=Merchant.Language.choices)
    greeting = forms.CharField(label=_("Greeting"), max_length=200, required=False)
    daily_token_budget = forms.IntegerField(
        label=_("Daily token budget"),
        min_value=0,
        max_value=100_000_000,
        initial=DEFAULT_DAILY_TOKEN_BUDGET,
        help_text=_(
            "When the day's conversations (UTC) have cost this much, the widget offers a person instead."
        ),
    )
    conversation_token_cap = forms.IntegerField(
        label=_("Tokens per conversation"),
        min_value=0,
        max_value=100_000_000,
        initial=DEFAULT_CONVERSATION_TOKEN_CAP,
    )

    def settings(self) -> dict:
        data = dict(self.cleaned_data)
        data["origins"] = data["origins"].split()
        return data


class ArticleForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    url = forms.URLField(label=_("Link (optional)"), max_length=500, required=False, assume_scheme="https")
    body = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 8}), max_length=100_000)


class ArticleUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV or Markdown file"),
        help_text=_(
            "CSV: a header row with title, body and optionally url. Markdown: each # heading starts an article."
        ),
    )
