from django.urls import path

from wallets import views, webhooks

urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/statement.csv", views.statement_csv, name="wallet-statement-csv"),
    path("wallet/topup/", views.topup_start, name="wallet-topup"),
    path("wallet/topup/<int:payment_id>/", views.topup_status, name="wallet-topup-status"),
    path("wallet/topup/<int:payment_id>/canceled/", views.topup_canceled, name="wallet-topup-canceled"),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe-webhook"),
]
