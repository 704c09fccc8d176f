from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from merchants.models import Merchant


class SignupForm(forms.Form):
    store_name = forms.CharField(max_length=120, label="Store name")
    email = forms.EmailField(label="Email")
    password = forms.CharField(widget=forms.PasswordInput, label="Password", strip=False)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("email"):
            from merchants.models import User

            password_validation.validate_password(cleaned["password"], User(email=cleaned["email"]))
        return cleaned


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account. Passwords are case-sensitive.",
    }


class StoreProfileForm(forms.ModelForm):
    class Meta:
        model = Merchant
        fields = ["brand_voice", "default_language", "knowledge_base"]
        widgets = {
            "brand_voice": forms.Textarea(attrs={"rows": 4}),
            "knowledge_base": forms.Textarea(attrs={"rows": 10}),
        }
