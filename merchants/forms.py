from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from merchants.i18n import time_zone_names, time_zone_or_default
from merchants.models import Merchant, User


class SignupForm(forms.Form):
    store_name = forms.CharField(max_length=120, label=_("Store name"))
    email = forms.EmailField(label=_("Email"))
    password = forms.CharField(widget=forms.PasswordInput, label=_("Password"), strip=False)
    # Filled by static/tokenhub.js from the browser (Intl); an unknown or missing zone becomes UTC.
    time_zone = forms.CharField(
        required=False, widget=forms.HiddenInput(attrs={"data-browser-time-zone": ""})
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_time_zone(self) -> str:
        return time_zone_or_default(self.cleaned_data.get("time_zone"))

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # noqa: S101 - Form.clean returns cleaned_data
        if cleaned.get("password") and cleaned.get("email"):
            try:
                password_validation.validate_password(cleaned["password"], User(email=cleaned["email"]))
            except forms.ValidationError as exc:
                # Under the password field, where the merchant types, not above the whole form.
                self.add_error("password", exc)
        return cleaned


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label=_("Email"), widget=forms.EmailInput(attrs={"autofocus": True}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That email and password do not match an account. Passwords are case-sensitive."),
    }


class PasswordResetRequestForm(PasswordResetForm):
    """Django's reset form, mailing through merchants.emails (a Celery task, HTML and text)."""

    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autofocus": True})
    )

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):  # fmt: skip
        from merchants.accounts import password_reset_url

        base_url = f"{context['protocol']}://{context['domain']}"
        from merchants.emails import email_send

        email_send(
            to=to_email,
            template="password_reset",
            context={"url": password_reset_url(user=context["user"], base_url=base_url), "email": to_email},
        )


class NewPasswordForm(forms.Form):
    """A password chosen by its owner (an invitee creating their account)."""

    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # noqa: S101 - Form.clean returns cleaned_data
        one, two = cleaned.get("password1"), cleaned.get("password2")
        if one and two and one != two:
            self.add_error("password2", _("The two passwords differ."))
        elif one:
            try:
                password_validation.validate_password(one, User(email=self.email))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class EmailChangeForm(forms.Form):
    new_email = forms.EmailField(label=_("New email"))
    password = forms.CharField(label=_("Your password"), widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_new_email(self) -> str:
        return self.cleaned_data["new_email"].strip().lower()

    def clean_password(self) -> str:
        if not self.user.check_password(self.cleaned_data["password"]):
            raise forms.ValidationError(_("That is not your current password."))
        return self.cleaned_data["password"]


class StoreProfileForm(forms.ModelForm):
    class Meta:
        model = Merchant
        fields = ["name", "brand_voice", "default_language", "knowledge_base", "time_zone"]
        labels = {"name": _("Store name")}
        widgets = {
            "time_zone": forms.Select(choices=[(name, name) for name in time_zone_names()]),
            "brand_voice": forms.Textarea(attrs={"rows": 4}),
            "knowledge_base": forms.Textarea(attrs={"rows": 10}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Left empty (or left out by an older client), the store keeps its name.
        self.fields["name"].required = False

    def clean_name(self) -> str:
        return (self.cleaned_data.get("name") or "").strip() or self.instance.name
