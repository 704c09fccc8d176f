from django.urls import path

from wallets import views, webhooks
from wallets.recharge import views as recharge_views

urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/statement.csv", views.statement_csv, name="wallet-statement-csv"),
    path("wallet/topup/", views.topup_start, name="wallet-topup"),
    path("wallet/topup/<int:payment_id>/", views.topup_status, name="wallet-topup-status"),
    path("wallet/topup/<int:payment_id>/canceled/", views.topup_canceled, name="wallet-topup-canceled"),
    path("wallet/recharge/", recharge_views.recharge_save, name="wallet-recharge"),
    path("wallet/recharge/card/", recharge_views.card_setup_start, name="wallet-recharge-card"),
    path("wallet/recharge/card/done/", recharge_views.card_setup_done, name="wallet-recharge-card-done"),
    path("wallet/recharge/card/remove/", recharge_views.card_remove, name="wallet-recharge-card-remove"),
    path("wallet/alerts/", recharge_views.alerts_save, name="wallet-alerts"),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe-webhook"),
]
